//! The resident web app: point-navi's top page, the search for usable points, MyKey ID
//! creation with the card, and my page.
//! Yew in the browser, talking to the server's `/v1` API with the session cookie, and reaching
//! the card through the SDK's bridges (`mykey_sdk::card`).

mod api;
mod components;
mod i18n;
mod pages;
mod router;

use i18n::{t, Lang, T};
use router::{Route, BASE};
use wasm_bindgen::prelude::*;
use yew::prelude::*;
use yew_router::prelude::*;

#[cfg(test)]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// What every page gets: the language.
#[derive(Clone, PartialEq)]
pub struct Ctx {
    /// The language shown.
    pub lang: Lang,
}

impl Ctx {
    /// A text in the current language.
    pub fn t(&self, key: T) -> &'static str {
        t(self.lang, key)
    }
}

/// Text sizes of point-navi's 大 / 中 / 小 switch, as the root font size.
const SIZES: [(T, &str); 3] = [(T::size_large, "118.75%"), (T::size_medium, "100%"), (T::size_small, "87.5%")];

/// The header's link to a page, marked as the current one when it is.
#[derive(Properties, PartialEq)]
struct NavLinkProps {
    to: Route,
    label: T,
}

#[function_component(NavLink)]
fn nav_link(p: &NavLinkProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let current = use_route::<Route>();
    let here = match (current, p.to) {
        (Some(Route::MyPage | Route::MyPageSub), Route::MyPage) => true,
        (Some(r), to) => r == to,
        (None, _) => false,
    };
    html! {
        <Link<Route> to={p.to}>
            <span aria-current={here.then_some("page")}>{ ctx.t(p.label) }</span>
        </Link<Route>>
    }
}

#[function_component(App)]
fn app() -> Html {
    let lang = use_state(|| Lang::Ja);
    let size = use_state(|| 1usize);
    {
        let (lang, size) = (*lang, *size);
        use_effect_with((lang, size), move |_| {
            if let Some(root) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element()) {
                let _ = root.set_attribute("lang", lang.code());
                // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
                if let Some(root) = wasm_bindgen::JsCast::dyn_ref::<web_sys::HtmlElement>(&root) {
                    let _ = root.style().set_property("font-size", SIZES[size].1);
                }
            }
        });
    }
    let ctx = Ctx { lang: *lang };
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
    html! {
        <ContextProvider<Ctx> context={ctx.clone()}>
            <BrowserRouter basename={BASE}>
                <a class="skip" href="#main">{ ctx.t(T::skip) }</a>
                <header>
                    <p class="site">{ ctx.t(T::site_name) }</p>
                    <nav aria-label={ctx.t(T::site_name)}>
                        <NavLink to={Route::Top} label={T::nav_top} />
                        <NavLink to={Route::Search} label={T::nav_search} />
                        <NavLink to={Route::Create} label={T::nav_create} />
                        <NavLink to={Route::MyPage} label={T::nav_mypage} />
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
                <main id="main"><Switch<Route> render={router::switch} /></main>
            </BrowserRouter>
        </ContextProvider<Ctx>>
    }
}

/// Starts the app in the page's body, in place of the first screen `index.html` shows while
/// the app loads.
#[wasm_bindgen(start)]
pub fn start() {
    if let Some(shell) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.get_element_by_id("shell")) {
        shell.remove();
    }
    yew::Renderer::<App>::new().render();
}
