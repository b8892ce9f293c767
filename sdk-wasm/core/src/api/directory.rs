//! Point-navi's directory: municipalities, partners, shops, their services, products,
//! online services, and the free-word search.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

api_type! {
    /// A municipality taking part.
    pub struct Municipality {
        /// Id used everywhere in the API.
        pub id: i64,
        /// JIS prefecture code, two digits.
        pub prefecture_code: String,
        /// Prefecture name.
        pub prefecture: String,
        /// Name.
        pub name: String,
        /// `prefecture` or `municipality`.
        pub kind: String,
        /// Issuer account.
        pub treasury_account: i64,
        /// Expired-points account.
        pub breakage_account: i64,
    }
}

api_type! {
    /// A partner company.
    pub struct Partner {
        /// Id used everywhere in the API.
        pub id: i64,
        /// Japanese name.
        pub name: String,
        /// English name.
        pub name_en: String,
        /// Partner's point kind (miles, card points...).
        pub point_kind: String,
        /// `id_linkage`, `coupon_paper_mail`, `coupon_email` or `coupon_url`.
        pub exchange_method: String,
        /// Clearing account.
        pub clearing_account: i64,
    }
}

api_type! {
    /// A shop, facility or online store accepting one municipality's points.
    pub struct Shop {
        /// Id used everywhere in the API.
        pub id: i64,
        /// Name.
        pub name: String,
        /// The municipality whose points it accepts.
        pub municipality: i64,
        /// Receivable account.
        pub receivable_account: i64,
        /// The online service (online shop, crowdfunding) it belongs to, if any.
        pub online_service: Option<i64>,
    }
}

api_type! {
    /// What a municipality has set up (`GET /v1/directory`): where its points and the card work.
    pub struct MunicipalityServices {
        /// The municipality.
        pub municipality: i64,
        /// The My Number Card works as a library card.
        pub library: bool,
        /// Its points buy its products at the online shop (めいぶつチョイス).
        pub meibutsu_choice: bool,
        /// Its points are taken at shops and facilities.
        pub shops: bool,
        /// When the services start, as the municipality announced.
        pub note: String,
    }
}

api_type! {
    /// A product of the online shop, bought with its municipality's points.
    pub struct Product {
        /// Id.
        pub id: i64,
        /// The municipality whose product (and points) it is.
        pub municipality: i64,
        /// Name.
        pub name: String,
        /// Price in yen, shipping included.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub price_yen: Decimal,
        /// `recommended` or `popular`.
        pub section: String,
    }
}

api_type! {
    /// An online shop or crowdfunding site that takes points by a member ID the resident links.
    pub struct OnlineService {
        /// Id.
        pub id: i64,
        /// Japanese name.
        pub name: String,
        /// English name.
        pub name_en: String,
        /// `online_shop` or `crowdfunding`.
        pub kind: String,
    }
}

api_type! {
    /// Point-navi's directory (`GET /v1/directory`, public).
    #[derive(Default)]
    pub struct Directory {
        /// Municipalities with at least one service set up.
        pub services: Vec<MunicipalityServices>,
        /// The online shop's products.
        pub products: Vec<Product>,
        /// Online services residents can link.
        pub online_services: Vec<OnlineService>,
    }
}

api_type! {
    /// Free-word search over municipalities, shops and products (`GET /v1/search?q=`).
    pub struct SearchResults {
        /// The words searched for, as the server read them.
        pub query: String,
        /// Municipalities whose name or prefecture matches.
        pub municipalities: Vec<Municipality>,
        /// Shops, facilities and online stores whose name or municipality matches.
        pub shops: Vec<Shop>,
        /// Products whose name or municipality matches.
        pub products: Vec<Product>,
    }
}

/// The most results of one kind a search returns.
pub const SEARCH_LIMIT: usize = 50;

/// The longest search query, in characters.
pub const SEARCH_QUERY_MAX: usize = 64;
