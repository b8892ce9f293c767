//! Demo data from the repository's `data/` (compiled in): the 228 council members, the 12
//! partners, the services each municipality started, the online shop's products, demo shops,
//! online stores and residents with some history, and one API key per role.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use mykey_core::api::{ConversionRequest, GrantRequest, MunicipalityServices, PaymentRequest};
use mykey_core::text::Memo;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{create_key, Role};
use crate::engine::{Change, ChangeResult, Engine, Request};
use crate::services::catalog::Catalog;

/// The demo's data files, by name.
const FILES: [(&str, &str); 4] = [
    (COUNCIL, include_str!("../../data/council-members-2017-09-20.csv")),
    (PARTNERS, include_str!("../../data/partners-2017.csv")),
    (SERVICES, include_str!("../../data/services-started-2017-09-20.csv")),
    (PRODUCTS, include_str!("../../data/meibutsu-products.csv")),
];
const COUNCIL: &str = "council-members-2017-09-20.csv";
const PARTNERS: &str = "partners-2017.csv";
const SERVICES: &str = "services-started-2017-09-20.csv";
const PRODUCTS: &str = "meibutsu-products.csv";

/// Where the demo reads its data: the copy compiled into the binary, or a folder holding
/// files of the same names (`demo --data-dir`).
#[derive(Clone, Debug, Default)]
pub enum DemoData {
    /// The repository's `data/` as it was built.
    #[default]
    Embedded,
    /// A folder with the same files.
    Dir(PathBuf),
}

impl DemoData {
    fn read<T: for<'de> Deserialize<'de>>(&self, name: &str) -> anyhow::Result<Vec<T>> {
        let text: std::borrow::Cow<'static, str> = match self {
            DemoData::Embedded => FILES.iter().find(|f| f.0 == name).expect("every demo file is embedded").1.into(),
            DemoData::Dir(dir) => {
                let path = dir.join(name);
                std::fs::read_to_string(&path).with_context(|| format!("opening {}", path.display()))?.into()
            }
        };
        let mut r = csv::Reader::from_reader(text.as_bytes());
        r.deserialize().map(|row| row.with_context(|| format!("reading {name}"))).collect()
    }
}

#[derive(Deserialize)]
struct CouncilRow {
    prefecture_code: String,
    prefecture: String,
    name: String,
    kind: String,
}

#[derive(Deserialize)]
struct PartnerRow {
    partner: String,
    partner_en: String,
    point_kind: String,
    exchange_method: String,
}

#[derive(Deserialize)]
struct ServiceRow {
    prefecture: String,
    municipality: String,
    library: String,
    meibutsu_choice: String,
    shops: String,
    note: String,
}

#[derive(Deserialize)]
struct ProductRow {
    prefecture: String,
    municipality: String,
    product: String,
    price_yen_incl_shipping: Decimal,
    section: String,
}

/// The demo's keys, printed and written next to the database.
#[derive(Debug, Serialize, Deserialize)]
pub struct DemoKeys {
    /// Operator key.
    pub operator: String,
    /// Key of the municipality `municipality`.
    pub municipality: String,
    /// Key of the partner `partner`.
    pub partner: String,
    /// Key of the partner `coupon_partner`.
    pub coupon_partner: String,
    /// Store key of `shop`.
    pub store: String,
    /// Session key of `resident`.
    pub resident: String,
    /// Store key of `online_store`, 前橋市's store at the online shop めいぶつチョイス.
    pub online_store: String,
    /// Ids the keys act for.
    pub ids: DemoIds,
}

/// Which entities the demo keys act for.
#[derive(Debug, Serialize, Deserialize)]
pub struct DemoIds {
    /// 前橋市.
    pub municipality: i64,
    /// JAL (ID linkage).
    pub partner: i64,
    /// 三井住友カード (coupon codes by URL).
    pub coupon_partner: i64,
    /// A shop in 前橋市.
    pub shop: i64,
    /// A resident of 前橋市.
    pub resident: i64,
    /// 前橋市's store at めいぶつチョイス.
    pub online_store: i64,
    /// めいぶつチョイス.
    pub online_shop: i64,
    /// セキュリテ (crowdfunding).
    pub crowdfunding: i64,
}

fn id(r: ChangeResult) -> i64 {
    match r {
        ChangeResult::Id(i) => i,
        other => panic!("expected an id, got {other:?}"),
    }
}

/// Loads the demo data unless the ledger already has municipalities.
pub async fn seed(engine: &Engine, data: &DemoData) -> anyhow::Result<Option<DemoKeys>> {
    if !engine.tables().await.map_err(|p| anyhow::anyhow!("{}", p.detail))?.municipalities().await?.is_empty() {
        return Ok(None);
    }
    let council: Vec<CouncilRow> = data.read(COUNCIL)?;
    if council.len() != 228 {
        bail!("expected the 228 council members, found {}", council.len());
    }
    let mut by_name: HashMap<(String, String), i64> = HashMap::new();
    for (i, row) in council.iter().enumerate() {
        let mid = i as i64 + 1;
        engine
            .apply(Change::Municipality {
                id: mid,
                prefecture_code: row.prefecture_code.clone(),
                prefecture: row.prefecture.clone(),
                name: row.name.clone(),
                kind: row.kind.clone(),
            })
            .await
            .map_err(|p| anyhow::anyhow!("{}", p.detail))?;
        by_name.insert((row.prefecture.clone(), row.name.clone()), mid);
    }
    let mut partner_ids = Vec::new();
    let mut coupon_partner = None;
    for row in data.read::<PartnerRow>(PARTNERS)? {
        let by_url = row.exchange_method == "coupon_url";
        let r = engine
            .apply(Change::Partner {
                name: row.partner,
                name_en: row.partner_en,
                point_kind: row.point_kind,
                exchange_method: row.exchange_method,
            })
            .await
            .map_err(|p| anyhow::anyhow!("{}", p.detail))?;
        let pid = id(r);
        if by_url && coupon_partner.is_none() {
            coupon_partner = Some(pid);
        }
        partner_ids.push(pid);
    }
    let catalog = Catalog::new(engine);
    let online_shop = catalog.add_online_service("めいぶつチョイス", "Meibutsu Choice", "online_shop").await?;
    let crowdfunding = catalog.add_online_service("セキュリテ", "Securite", "crowdfunding").await?;
    let mut first_shop: HashMap<i64, i64> = HashMap::new();
    let mut online_stores: HashMap<i64, i64> = HashMap::new();
    for row in data.read::<ServiceRow>(SERVICES)? {
        let name = if row.municipality.is_empty() { row.prefecture.clone() } else { row.municipality.clone() };
        let Some(&mid) = by_name.get(&(row.prefecture.clone(), name.clone())) else { continue };
        catalog
            .set_services(&MunicipalityServices {
                municipality: mid,
                library: row.library == "yes",
                meibutsu_choice: row.meibutsu_choice == "yes",
                shops: row.shops == "yes",
                note: row.note.clone(),
            })
            .await?;
        let mut names = Vec::new();
        if row.shops == "yes" {
            names.push((format!("{name} 中央商店街 青果店"), 0));
            names.push((format!("{name} 市民ミュージアム"), 0));
        }
        if row.meibutsu_choice == "yes" {
            names.push((format!("めいぶつチョイス（{name}）"), online_shop));
        }
        if row.shops == "yes" && row.meibutsu_choice == "yes" {
            names.push((format!("セキュリテ {name}応援ファンド"), crowdfunding));
        }
        for (shop, online) in names {
            let sid = id(engine
                .apply(Change::Shop { name: shop, municipality: mid })
                .await
                .map_err(|p| anyhow::anyhow!("{}", p.detail))?);
            if online != 0 {
                catalog.set_shop_online_service(sid, online).await?;
                if online == online_shop {
                    online_stores.insert(mid, sid);
                }
            } else {
                first_shop.entry(mid).or_insert(sid);
            }
        }
    }
    for row in data.read::<ProductRow>(PRODUCTS)? {
        let mid = *by_name
            .get(&(row.prefecture.clone(), row.municipality.clone()))
            .with_context(|| format!("{} {} is not a council member", row.prefecture, row.municipality))?;
        catalog.add_product(mid, &row.product, row.price_yen_incl_shipping, &row.section).await?;
    }
    let maebashi = *by_name.get(&("群馬県".into(), "前橋市".into())).context("前橋市 is a council member")?;
    let shop = *first_shop.get(&maebashi).context("前橋市 has demo shops")?;
    let online_store = *online_stores.get(&maebashi).context("前橋市 is at めいぶつチョイス")?;
    let jal = partner_ids[0];
    let coupon_partner = coupon_partner.context("a partner converts with coupon URLs")?;

    let residents = match engine
        .apply(Change::Residents { home: maebashi, count: 5 })
        .await
        .map_err(|p| anyhow::anyhow!("{}", p.detail))?
    {
        ChangeResult::Residents(r) => r,
        other => bail!("unexpected {other:?}"),
    };
    for (i, r) in residents.iter().enumerate() {
        let grant = GrantRequest {
            id: Uuid::new_v4(),
            resident: r.resident,
            municipality: maebashi,
            event: None,
            amount: Decimal::from(200 + 100 * i as i64),
            expires_at: None,
            memo: Some(Memo::parse("清掃ボランティア参加 / clean-up volunteering").expect("a constant memo")),
        };
        check(engine.execute(Request::Grant(grant), "demo").await)?;
        let conversion = ConversionRequest {
            id: Uuid::new_v4(),
            partner: jal,
            resident: r.resident,
            partner_points: Decimal::from(1000),
            rate: Decimal::new(5, 1),
            memo: Some(Memo::parse("JAL mileage").expect("a constant memo")),
        };
        check(engine.execute(Request::Conversion(conversion), "demo").await)?;
    }
    let payment = PaymentRequest {
        id: Uuid::new_v4(),
        resident: residents[0].resident,
        municipality: maebashi,
        event: None,
        shop,
        amount: Decimal::from(120),
        memo: Some(Memo::parse("野菜").expect("a constant memo")),
    };
    check(engine.execute(Request::Payment(payment), "demo").await)?;

    let store = engine.store();
    Ok(Some(DemoKeys {
        operator: create_key(store, Role::Operator, 0, "demo operator").await?,
        municipality: create_key(store, Role::Municipality, maebashi, "demo 前橋市").await?,
        partner: create_key(store, Role::Partner, jal, "demo JAL").await?,
        coupon_partner: create_key(store, Role::Partner, coupon_partner, "demo coupon partner").await?,
        store: create_key(store, Role::Store, shop, "demo store").await?,
        resident: create_key(store, Role::Resident, residents[0].resident, "demo resident").await?,
        online_store: create_key(store, Role::Store, online_store, "demo めいぶつチョイス 前橋市").await?,
        ids: DemoIds {
            municipality: maebashi,
            partner: jal,
            coupon_partner,
            shop,
            resident: residents[0].resident,
            online_store,
            online_shop,
            crowdfunding,
        },
    }))
}

fn check(a: crate::engine::Executed) -> anyhow::Result<()> {
    if let Err(e) = a {
        bail!("demo request refused: {e}");
    }
    Ok(())
}
