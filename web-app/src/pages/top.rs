//! Point-navi's top page: what municipal points are, the four steps, recommended points
//! (usable in shops / online), the municipalities that have set points up, libraries where
//! the card works, the council's member list, FAQ and contact.

use yew::prelude::*;

use mykey_core::api::MunicipalityServices;
use yew_router::prelude::*;

use crate::api::directory::{by_prefecture, use_directory, use_municipalities};
use crate::i18n::T;
use crate::router::Route;
use crate::Ctx;

#[function_component(Top)]
pub fn top() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let list = use_municipalities();
    let directory = use_directory();
    {
        // A performance mark when the page is usable (the list is in), for the first-page
        // benchmark (tests/src/bin/web-bench.rs).
        let loaded = matches!(&*list, Some(Ok(_)));
        use_effect_with(loaded, move |loaded| {
            if *loaded {
                if let Some(p) = web_sys::window().and_then(|w| w.performance()) {
                    let _ = p.mark("mykey-usable");
                }
            }
        });
    }
    let navigator = use_navigator().expect("inside the router");
    let start = {
        let navigator = navigator.clone();
        Callback::from(move |_| navigator.push(&Route::Create))
    };
    let search = Callback::from(move |_| navigator.push(&Route::Search));
    let ms = match &*list {
        Some(Ok(l)) => l.clone(),
        _ => Vec::new(),
    };
    let dir = directory.as_ref().and_then(|r| r.as_ref().ok()).cloned().unwrap_or_default();
    let name_of = |id: i64| ms.iter().find(|m| m.id == id).map(|m| m.name.clone()).unwrap_or_default();
    let full_name =
        |id: i64| ms.iter().find(|m| m.id == id).map(|m| format!("{} {}", m.prefecture, m.name)).unwrap_or_default();
    let points_list = |pick: fn(&MunicipalityServices) -> bool| -> Html {
        html! {
            <ul>{ for dir.services.iter().filter(|s| pick(s)).map(|s| html! {
                <li>{ format!("{}{}", name_of(s.municipality), ctx.t(T::points_suffix)) }</li>
            }) }</ul>
        }
    };
    let municipalities = match &*list {
        None => html! { <p role="status">{ ctx.t(T::loading) }</p> },
        Some(Err(_)) => html! { <p role="alert">{ ctx.t(T::load_failed) }</p> },
        Some(Ok(list)) => html! {
            <dl class="municipalities">
                { for by_prefecture(list).into_iter().map(|((_, pref), ms)| html! {
                    <>
                        <dt>{ pref }</dt>
                        <dd>{ ms.iter().map(|m| m.name.clone()).collect::<Vec<_>>().join("、") }</dd>
                    </>
                }) }
            </dl>
        },
    };
    let faq = [(T::faq_q1, T::faq_a1), (T::faq_q2, T::faq_a2), (T::faq_q3, T::faq_a3), (T::faq_q4, T::faq_a4)];
    html! {
        <>
            <h1>{ ctx.t(T::site_name) }</h1>
            <section aria-labelledby="what">
                <h2 id="what">{ ctx.t(T::what_title) }</h2>
                <p>{ ctx.t(T::what_body) }</p>
            </section>
            <section aria-labelledby="steps">
                <h2 id="steps">{ ctx.t(T::steps_title) }</h2>
                <ol class="steps">
                    <li>{ ctx.t(T::step1) }</li>
                    <li>{ ctx.t(T::step2) }</li>
                    <li>{ ctx.t(T::step3) }</li>
                    <li>{ ctx.t(T::step4) }</li>
                </ol>
                <button type="button" class="primary" onclick={start}>{ ctx.t(T::start) }</button>
            </section>
            <section aria-labelledby="recommended">
                <h2 id="recommended">{ ctx.t(T::recommended_title) }</h2>
                <div class="columns">
                    <div id="usable-shops">
                        <h3>{ ctx.t(T::usable_shops) }</h3>
                        { points_list(|s| s.shops) }
                    </div>
                    <div id="usable-online">
                        <h3>{ ctx.t(T::usable_online) }</h3>
                        { points_list(|s| s.meibutsu_choice) }
                    </div>
                </div>
                <button type="button" onclick={search}>{ ctx.t(T::to_search) }</button>
            </section>
            <section aria-labelledby="set-up">
                <h2 id="set-up">{ ctx.t(T::set_up_title) }</h2>
                <ul class="set-up">
                    { for dir.services.iter().map(|s| html! { <li>{ full_name(s.municipality) }</li> }) }
                </ul>
            </section>
            <section aria-labelledby="libraries">
                <h2 id="libraries">{ ctx.t(T::libraries_title) }</h2>
                <p>{ ctx.t(T::libraries_body) }</p>
                <ul id="library-list">
                    { for dir.services.iter().filter(|s| s.library).map(|s| html! {
                        <li>{ full_name(s.municipality) }</li>
                    }) }
                </ul>
            </section>
            <section aria-labelledby="municipalities">
                <h2 id="municipalities">{ ctx.t(T::municipalities_title) }</h2>
                { municipalities }
            </section>
            <section aria-labelledby="faq">
                <h2 id="faq">{ ctx.t(T::faq_title) }</h2>
                { for faq.iter().map(|(q, a)| html! {
                    <details><summary>{ ctx.t(*q) }</summary><p>{ ctx.t(*a) }</p></details>
                }) }
            </section>
            <section aria-labelledby="contact">
                <h2 id="contact">{ ctx.t(T::contact_title) }</h2>
                <p>{ ctx.t(T::contact_body) }</p>
            </section>
        </>
    }
}
