//! The resident web app: point-navi's top page, the search for usable points, MyKey ID
//! creation with the card, and my page.
//! Yew in the browser, talking to the server's `/v1` API with the session cookie, and reaching
//! the card through the SDK's bridges (`mykey_sdk::card`).

mod api;
mod card;
mod create;
mod i18n;
mod mypage;
mod search;
mod top;

use i18n::{t, Lang, T};
use wasm_bindgen::prelude::*;
use yew::prelude::*;

/// Where the app is served.
pub const BASE: &str = "/app";

/// The pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Point-navi top.
    Top,
    /// Search usable points (map and free words).
    Search,
    /// MyKey ID creation.
    Create,
    /// My page.
    MyPage,
}

impl Route {
    fn path(self) -> String {
        match self {
            Route::Top => format!("{BASE}/"),
            Route::Search => format!("{BASE}/search"),
            Route::Create => format!("{BASE}/create"),
            Route::MyPage => format!("{BASE}/mypage"),
        }
    }

    fn from_path(path: &str) -> Route {
        match path.trim_start_matches(BASE).trim_end_matches('/') {
            "/search" => Route::Search,
            "/create" => Route::Create,
            "/mypage" => Route::MyPage,
            _ => Route::Top,
        }
    }
}

/// What every page gets: the language and a way to move to another page.
#[derive(Clone, PartialEq)]
pub struct Ctx {
    /// The language shown.
    pub lang: Lang,
    /// Goes to a page (and records it in the browser's history).
    pub go: Callback<Route>,
}

impl Ctx {
    /// A text in the current language.
    pub fn t(&self, key: T) -> &'static str {
        t(self.lang, key)
    }
}

fn current_path() -> String {
    web_sys::window().and_then(|w| w.location().pathname().ok()).unwrap_or_default()
}

/// Text sizes of point-navi's 大 / 中 / 小 switch, as the root font size.
const SIZES: [(T, &str); 3] = [(T::size_large, "118.75%"), (T::size_medium, "100%"), (T::size_small, "87.5%")];

#[function_component(App)]
fn app() -> Html {
    let route = use_state(|| Route::from_path(&current_path()));
    let lang = use_state(|| Lang::Ja);
    let size = use_state(|| 1usize);
    {
        let route = route.clone();
        use_effect_with((), move |_| {
            // The browser's back and forward buttons.
            let on_pop = Closure::<dyn Fn()>::new(move || route.set(Route::from_path(&current_path())));
            let window = web_sys::window().expect("a window");
            window.set_onpopstate(Some(on_pop.as_ref().unchecked_ref()));
            move || drop(on_pop)
        });
    }
    {
        let (lang, size) = (*lang, *size);
        use_effect_with((lang, size), move |_| {
            if let Some(root) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element()) {
                let _ = root.set_attribute("lang", lang.code());
                let _ = root.set_attribute("style", &format!("font-size: {}", SIZES[size].1));
            }
        });
    }
    let go = {
        let route = route.clone();
        Callback::from(move |r: Route| {
            if let Some(h) = web_sys::window().and_then(|w| w.history().ok()) {
                let _ = h.push_state_with_url(&JsValue::NULL, "", Some(&r.path()));
            }
            route.set(r);
        })
    };
    let ctx = Ctx { lang: *lang, go: go.clone() };
    let link = |r: Route, label: T| {
        let go = go.clone();
        let current = (*route == r).then_some("page");
        html! {
            <a href={r.path()} aria-current={current}
               onclick={Callback::from(move |e: MouseEvent| { e.prevent_default(); go.emit(r); })}>
                { ctx.t(label) }
            </a>
        }
    };
    let lang_button = |l: Lang, label: &'static str| {
        let lang = lang.clone();
        html! {
            <button type="button" aria-pressed={(*lang == l).to_string()} onclick={Callback::from(move |_| lang.set(l))}>
                { label }
            </button>
        }
    };
    let size_buttons = SIZES.iter().enumerate().map(|(i, (label, _))| {
        let size = size.clone();
        html! {
            <button type="button" aria-pressed={(*size == i).to_string()} onclick={Callback::from(move |_| size.set(i))}>
                { ctx.t(*label) }
            </button>
        }
    });
    let page = match *route {
        Route::Top => html! { <top::Top /> },
        Route::Search => html! { <search::Search /> },
        Route::Create => html! { <create::Create /> },
        Route::MyPage => html! { <mypage::MyPage /> },
    };
    html! {
        <ContextProvider<Ctx> context={ctx.clone()}>
            <a class="skip" href="#main">{ ctx.t(T::skip) }</a>
            <header>
                <p class="site">{ ctx.t(T::site_name) }</p>
                <nav aria-label={ctx.t(T::site_name)}>
                    { link(Route::Top, T::nav_top) }
                    { link(Route::Search, T::nav_search) }
                    { link(Route::Create, T::nav_create) }
                    { link(Route::MyPage, T::nav_mypage) }
                </nav>
                <div class="switches">
                    <div role="group" aria-label={ctx.t(T::language)}>
                        { lang_button(Lang::Ja, "日本語") }
                        { lang_button(Lang::En, "English") }
                    </div>
                    <div role="group" aria-label={ctx.t(T::text_size)}>
                        <span aria-hidden="true">{ ctx.t(T::text_size) }</span>
                        { for size_buttons }
                    </div>
                </div>
            </header>
            <main id="main">{ page }</main>
        </ContextProvider<Ctx>>
    }
}

/// Starts the app in the page's body.
#[wasm_bindgen(start)]
pub fn start() {
    yew::Renderer::<App>::new().render();
}
