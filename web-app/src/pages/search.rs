//! "Search usable points": a clickable tile map of Japan's 47 prefectures (drawn here, one
//! square per prefecture placed roughly where it lies), the municipalities, shops and products
//! of the chosen prefecture, and free-word search over all of them (`/v1/search`).

use std::cell::Cell;
use std::rc::Rc;

use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::api;
use crate::api::directory::use_directory;
use crate::i18n::T;
use crate::Ctx;
use mykey_core::api::{Directory, Municipality, Product, SearchResults};

/// JIS code, short name and tile (column, row) of each prefecture: north-east at the top
/// right, Kyushu bottom left, Okinawa alone in the corner.
const TILES: [(&str, &str, u8, u8); 47] = [
    ("01", "北海道", 11, 0),
    ("02", "青森", 12, 1),
    ("03", "岩手", 12, 2),
    ("04", "宮城", 12, 3),
    ("05", "秋田", 11, 2),
    ("06", "山形", 11, 3),
    ("07", "福島", 12, 4),
    ("08", "茨城", 12, 6),
    ("09", "栃木", 12, 5),
    ("10", "群馬", 11, 5),
    ("11", "埼玉", 11, 6),
    ("12", "千葉", 12, 7),
    ("13", "東京", 11, 7),
    ("14", "神奈川", 11, 8),
    ("15", "新潟", 11, 4),
    ("16", "富山", 10, 4),
    ("17", "石川", 9, 4),
    ("18", "福井", 8, 5),
    ("19", "山梨", 10, 6),
    ("20", "長野", 10, 5),
    ("21", "岐阜", 9, 5),
    ("22", "静岡", 10, 7),
    ("23", "愛知", 9, 6),
    ("24", "三重", 9, 7),
    ("25", "滋賀", 8, 6),
    ("26", "京都", 7, 6),
    ("27", "大阪", 7, 7),
    ("28", "兵庫", 6, 6),
    ("29", "奈良", 8, 7),
    ("30", "和歌山", 7, 8),
    ("31", "鳥取", 5, 5),
    ("32", "島根", 4, 5),
    ("33", "岡山", 5, 6),
    ("34", "広島", 4, 6),
    ("35", "山口", 3, 6),
    ("36", "徳島", 5, 9),
    ("37", "香川", 5, 8),
    ("38", "愛媛", 4, 8),
    ("39", "高知", 4, 9),
    ("40", "福岡", 2, 7),
    ("41", "佐賀", 1, 7),
    ("42", "長崎", 0, 7),
    ("43", "熊本", 1, 8),
    ("44", "大分", 2, 8),
    ("45", "宮崎", 2, 9),
    ("46", "鹿児島", 1, 9),
    ("47", "沖縄", 0, 10),
];

const CELL: u32 = 48;
const GAP: u32 = 4;

fn query_param(name: &str) -> Option<String> {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|s| web_sys::UrlSearchParams::new_with_str(&s).ok())
        .and_then(|p| p.get(name))
        .filter(|v| !v.is_empty())
}

fn encode(q: &str) -> String {
    String::from(js_sys::encode_uri_component(q))
}

/// Records the page's state in the address, so it can be shared and reloaded.
fn set_address(param: &str, value: &str) {
    let url = format!("{}/search?{param}={}", crate::BASE, encode(value));
    if let Some(h) = web_sys::window().and_then(|w| w.history().ok()) {
        let _ = h.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    }
}

#[function_component(Search)]
pub fn search() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let directory = use_directory();
    let municipalities = crate::api::directory::use_municipalities();
    let prefecture = use_state(|| query_param("pref"));
    let query = use_state(|| query_param("q").unwrap_or_default());
    let results = use_state(|| None::<Result<SearchResults, api::Failure>>);
    // Only the answer to the latest query is shown (answers may arrive out of order).
    let latest = use_memo((), |_| Rc::new(Cell::new(0u32)));
    let run = {
        let (results, latest) = (results.clone(), latest.clone());
        Callback::from(move |q: String| {
            let turn = latest.get().wrapping_add(1);
            latest.set(turn);
            if q.trim().is_empty() {
                results.set(None);
                return;
            }
            let (results, latest) = (results.clone(), latest.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let answer = api::get::<SearchResults>(&format!("/v1/search?q={}", encode(&q))).await;
                if latest.get() == turn {
                    results.set(Some(answer));
                }
            });
        })
    };
    {
        let (run, query) = (run.clone(), (*query).clone());
        use_effect_with((), move |_| {
            if !query.is_empty() {
                run.emit(query);
            }
        });
    }
    let oninput = {
        let (query, run) = (query.clone(), run.clone());
        Callback::from(move |e: InputEvent| {
            let q = e.target_unchecked_into::<HtmlInputElement>().value();
            set_address("q", &q);
            query.set(q.clone());
            run.emit(q);
        })
    };
    let onsubmit = Callback::from(|e: SubmitEvent| e.prevent_default());
    let choose = {
        let prefecture = prefecture.clone();
        Callback::from(move |code: String| {
            set_address("pref", &code);
            prefecture.set(Some(code));
        })
    };
    let list = municipalities.as_ref().and_then(|r| r.as_ref().ok()).cloned().unwrap_or_default();
    let dir = directory.as_ref().and_then(|r| r.as_ref().ok()).cloned().unwrap_or_default();
    html! {
        <>
            <h1>{ ctx.t(T::search_title) }</h1>
            <section aria-labelledby="map-title">
                <h2 id="map-title">{ ctx.t(T::map_title) }</h2>
                <p>{ ctx.t(T::map_hint) }</p>
                { map(&ctx, &list, &dir, prefecture.as_deref(), &choose) }
                { prefecture_select(&ctx, prefecture.as_deref(), &choose) }
                { prefecture_panel(&ctx, &list, &dir, prefecture.as_deref()) }
            </section>
            <section aria-labelledby="free-title">
                <h2 id="free-title">{ ctx.t(T::free_title) }</h2>
                <form role="search" onsubmit={onsubmit} class="field">
                    <label for="free-word">{ ctx.t(T::free_label) }</label>
                    <input id="free-word" type="search" autocomplete="off" maxlength="64" value={(*query).clone()}
                        oninput={oninput} aria-describedby="free-hint" />
                    <p id="free-hint" class="muted">{ ctx.t(T::free_hint) }</p>
                </form>
                { results_view(&ctx, &list, results.as_ref()) }
            </section>
        </>
    }
}

/// The tile map: each prefecture a link; those whose points are set up stand out.
fn map(ctx: &Ctx, list: &[Municipality], dir: &Directory, chosen: Option<&str>, choose: &Callback<String>) -> Html {
    let set_up = |code: &str| {
        dir.services.iter().any(|s| list.iter().any(|m| m.id == s.municipality && m.prefecture_code == code))
    };
    let width = 13 * CELL + 12 * GAP;
    let height = 11 * CELL + 10 * GAP;
    html! {
        <svg class="japan" viewBox={format!("0 0 {width} {height}")} role="group" aria-labelledby="map-title">
            { for TILES.iter().map(|&(code, name, col, row)| {
                let (x, y) = (u32::from(col) * (CELL + GAP), u32::from(row) * (CELL + GAP));
                // Hokkaido is two tiles wide, as it is large.
                let w = if code == "01" { 2 * CELL + GAP } else { CELL };
                let class = classes!("tile", set_up(code).then_some("set-up"), (chosen == Some(code)).then_some("chosen"));
                let label = if set_up(code) { format!("{name} {}", ctx.t(T::map_set_up)) } else { name.to_owned() };
                let onclick = {
                    let (choose, code) = (choose.clone(), code.to_owned());
                    Callback::from(move |e: MouseEvent| { e.prevent_default(); choose.emit(code.clone()); })
                };
                html! {
                    <a href={format!("{}/search?pref={code}", crate::BASE)} class={class} aria-label={label}
                        aria-current={(chosen == Some(code)).then_some("true")} data-pref={code} onclick={onclick}>
                        <rect x={x.to_string()} y={y.to_string()} width={w.to_string()} height={CELL.to_string()} rx="6" />
                        <text x={(x + w / 2).to_string()} y={(y + CELL / 2 + 5).to_string()} text-anchor="middle"
                            font-size={if name.chars().count() > 2 && code != "01" { "11" } else { "14" }}>{ name }</text>
                    </a>
                }
            }) }
        </svg>
    }
}

/// The same choice as a list, for small screens and screen readers.
fn prefecture_select(ctx: &Ctx, chosen: Option<&str>, choose: &Callback<String>) -> Html {
    let onchange = {
        let choose = choose.clone();
        Callback::from(move |e: Event| {
            let code = e.target_unchecked_into::<web_sys::HtmlSelectElement>().value();
            if !code.is_empty() {
                choose.emit(code);
            }
        })
    };
    html! {
        <div class="field">
            <label for="prefecture-select">{ ctx.t(T::map_select) }</label>
            <select id="prefecture-select" onchange={onchange}>
                <option value="" selected={chosen.is_none()}>{ ctx.t(T::choose) }</option>
                { for TILES.iter().map(|&(code, name, _, _)| html! {
                    <option value={code} selected={chosen == Some(code)}>{ name }</option>
                }) }
            </select>
        </div>
    }
}

/// The chosen prefecture's municipalities taking part and what each has set up.
fn prefecture_panel(ctx: &Ctx, list: &[Municipality], dir: &Directory, chosen: Option<&str>) -> Html {
    let Some(code) = chosen else { return html! {} };
    let members: Vec<&Municipality> = list.iter().filter(|m| m.prefecture_code == code).collect();
    let name = TILES.iter().find(|t| t.0 == code).map(|t| t.1).unwrap_or(code);
    let pref_name = members.first().map(|m| m.prefecture.clone()).unwrap_or_else(|| name.to_owned());
    html! {
        <div id="prefecture" aria-live="polite">
            <h3>{ pref_name }</h3>
            if members.is_empty() {
                <p>{ ctx.t(T::map_none) }</p>
            } else {
                <ul class="services">
                    { for members.iter().map(|m| {
                        let services = dir.services.iter().find(|s| s.municipality == m.id);
                        let badges: Vec<&str> = services.map(|s| {
                            [(s.shops, ctx.t(T::svc_shops)), (s.meibutsu_choice, ctx.t(T::svc_online)), (s.library, ctx.t(T::svc_library))]
                                .into_iter().filter(|(on, _)| *on).map(|(_, t)| t).collect()
                        }).unwrap_or_default();
                        let products: Vec<&Product> = dir.products.iter().filter(|p| p.municipality == m.id).collect();
                        html! {
                            <li>
                                <strong>{ m.name.clone() }</strong>
                                if badges.is_empty() {
                                    { " " }<span class="muted">{ ctx.t(T::svc_preparing) }</span>
                                } else {
                                    { " " }{ for badges.iter().map(|b| html! { <span class="badge">{ *b }</span> }) }
                                }
                                if !products.is_empty() {
                                    <ul>{ for products.iter().map(|p| html! { <li>{ format!("{} {}円", p.name, p.price_yen) }</li> }) }</ul>
                                }
                            </li>
                        }
                    }) }
                </ul>
            }
        </div>
    }
}

fn results_view(ctx: &Ctx, list: &[Municipality], results: Option<&Result<SearchResults, api::Failure>>) -> Html {
    let place = |id: i64| list.iter().find(|m| m.id == id).map(|m| format!("（{} {}）", m.prefecture, m.name));
    match results {
        None => html! { <div id="search-results" aria-live="polite"></div> },
        Some(Err(f)) if f.slug == "invalid-request" => html! {
            <div id="search-results" aria-live="polite"><p class="error" role="alert">{ ctx.t(T::free_invalid) }</p></div>
        },
        Some(Err(_)) => html! {
            <div id="search-results" aria-live="polite"><p class="error" role="alert">{ ctx.t(T::server_error) }</p></div>
        },
        Some(Ok(r)) => {
            let total = r.municipalities.len() + r.shops.len() + r.products.len();
            html! {
                <div id="search-results" aria-live="polite" data-query={r.query.clone()}>
                    <p>{ format!("{}{total}", ctx.t(T::free_count)) }</p>
                    if !r.municipalities.is_empty() {
                        <h3>{ ctx.t(T::free_municipalities) }</h3>
                        <ul>{ for r.municipalities.iter().map(|m| html! { <li>{ format!("{} {}", m.prefecture, m.name) }</li> }) }</ul>
                    }
                    if !r.shops.is_empty() {
                        <h3>{ ctx.t(T::free_shops) }</h3>
                        <ul>{ for r.shops.iter().map(|s| html! { <li>{ s.name.clone() }{ place(s.municipality).unwrap_or_default() }</li> }) }</ul>
                    }
                    if !r.products.is_empty() {
                        <h3>{ ctx.t(T::free_products) }</h3>
                        <ul>{ for r.products.iter().map(|p| html! {
                            <li>{ format!("{} {}円", p.name, p.price_yen) }{ place(p.municipality).unwrap_or_default() }</li>
                        }) }</ul>
                    }
                </div>
            }
        }
    }
}
