//! The app's addresses (under [`BASE`]), one page component per route; my page has its own
//! routes for its sub-pages.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::pages;

/// Where the app is served; the router's basename.
pub const BASE: &str = "/app";

/// The pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Routable)]
pub enum Route {
    /// Point-navi top.
    #[at("/")]
    Top,
    /// Search usable points (map and free words).
    #[at("/search")]
    Search,
    /// MyKey ID creation.
    #[at("/create")]
    Create,
    /// My page, on its balances.
    #[at("/mypage")]
    MyPage,
    /// My page's other sub-pages ([`MyRoute`]).
    #[at("/mypage/*")]
    MyPageSub,
    /// A shop's counter terminal.
    #[at("/terminal")]
    Terminal,
    /// Checking a receipt's log record (the text after `#`).
    #[at("/receipt")]
    Receipt,
    /// Any other address: point-navi top.
    #[not_found]
    #[at("/404")]
    NotFound,
}

/// My page's sub-pages, each with its own address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Routable)]
pub enum MyRoute {
    /// Balances, the next points to expire, when reserved points move home.
    #[at("/mypage")]
    Balances,
    /// The points history, filtered by kind and period.
    #[at("/mypage/history")]
    History,
    /// Coupon codes and assigning reserved points.
    #[at("/mypage/coupons")]
    Coupons,
    /// Partner and online-service IDs, facility patron numbers.
    #[at("/mypage/links")]
    Links,
    /// E-mail, notices and the password.
    #[at("/mypage/settings")]
    Settings,
    /// The MyKey ID and the card: change, re-bind, revoke, usage history.
    #[at("/mypage/id")]
    CardAndId,
    /// Another address under my page.
    #[not_found]
    #[at("/mypage/404")]
    NotFound,
}

impl MyRoute {
    /// The sub-pages in the order my page's navigation lists them.
    pub const ALL: [MyRoute; 6] =
        [MyRoute::Balances, MyRoute::History, MyRoute::Coupons, MyRoute::Links, MyRoute::Settings, MyRoute::CardAndId];
}

/// The page for a route.
pub fn switch(route: Route) -> Html {
    match route {
        Route::Top | Route::NotFound => html! { <pages::top::Top /> },
        Route::Search => html! { <pages::search::Search /> },
        Route::Create => html! { <pages::create::Create /> },
        Route::MyPage | Route::MyPageSub => html! { <pages::mypage::MyPage /> },
        Route::Terminal => html! { <pages::terminal::Terminal /> },
        Route::Receipt => html! { <pages::receipt::Receipt /> },
    }
}
