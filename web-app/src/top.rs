//! Point-navi's top page: what municipal points are, the four steps, and the municipalities
//! that have set them up (from the server), by prefecture.

use std::collections::BTreeMap;

use serde::Deserialize;
use yew::prelude::*;

use crate::api;
use crate::i18n::T;
use crate::{Ctx, Route};

/// A municipality as `/v1/municipalities` lists it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Municipality {
    /// Id.
    pub id: i64,
    /// JIS prefecture code.
    pub prefecture_code: String,
    /// Prefecture.
    pub prefecture: String,
    /// Name.
    pub name: String,
}

/// Loads the municipalities once.
#[hook]
pub fn use_municipalities() -> UseStateHandle<Option<Result<Vec<Municipality>, api::Failure>>> {
    let list = use_state(|| None);
    {
        let list = list.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                list.set(Some(api::get::<Vec<Municipality>>("/v1/municipalities").await));
            });
        });
    }
    list
}

/// Groups by prefecture, in JIS order.
pub fn by_prefecture(list: &[Municipality]) -> BTreeMap<(String, String), Vec<Municipality>> {
    let mut m: BTreeMap<(String, String), Vec<Municipality>> = BTreeMap::new();
    for x in list {
        m.entry((x.prefecture_code.clone(), x.prefecture.clone())).or_default().push(x.clone());
    }
    m
}

#[function_component(Top)]
pub fn top() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let list = use_municipalities();
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
    let start = {
        let go = ctx.go.clone();
        Callback::from(move |_| go.emit(Route::Create))
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
            <section aria-labelledby="municipalities">
                <h2 id="municipalities">{ ctx.t(T::municipalities_title) }</h2>
                { municipalities }
            </section>
        </>
    }
}
