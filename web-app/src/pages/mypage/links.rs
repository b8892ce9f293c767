//! Linked IDs: partner service IDs and online-shop member IDs; facilities' patron numbers.

use serde_json::{json, Value};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use super::{load, message, Msg, State};
use crate::api;
use crate::i18n::T;
use crate::Ctx;

/// The linked IDs sub-page.
#[function_component(Links)]
pub fn links(p: &super::SubProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let link_target = use_state(String::new);
    let link_id = use_state(String::new);
    let link_msg = use_state(|| None::<(bool, String)>);
    let State::In(loaded) = &*p.state else { return html! {} };
    html! {
        <>
            { links_form(&ctx, &p.state, &loaded.links, &loaded.partners, &loaded.online, &link_target, &link_id, &link_msg) }
            { patrons_section(&ctx, &p.state, &loaded.patrons) }
        </>
    }
}

/// Service links: partners' member numbers (ID linkage: points come in) and online services'
/// member IDs (points are spent there); link and unlink.
#[allow(clippy::too_many_arguments)]
fn links_form(
    ctx: &Ctx,
    state: &UseStateHandle<State>,
    links: &Value,
    partners: &Value,
    online: &Value,
    target: &UseStateHandle<String>,
    service_id: &UseStateHandle<String>,
    msg: &Msg,
) -> Html {
    let linkage: Vec<Value> =
        partners.as_array().into_iter().flatten().filter(|p| p["exchange_method"] == "id_linkage").cloned().collect();
    let online: Vec<Value> = online.as_array().cloned().unwrap_or_default();
    let find = |list: &[Value], id: &Value| -> String {
        list.iter().find(|x| x["id"] == *id).and_then(|x| x["name"].as_str()).unwrap_or_default().to_owned()
    };
    let name_of = |l: &Value| {
        if l["partner"].is_null() {
            find(&online, &l["online_service"])
        } else {
            find(partners.as_array().map(Vec::as_slice).unwrap_or_default(), &l["partner"])
        }
    };
    let onchange = {
        let target = target.clone();
        Callback::from(move |e: Event| target.set(e.target_unchecked_into::<HtmlSelectElement>().value()))
    };
    let oninput = {
        let service_id = service_id.clone();
        Callback::from(move |e: InputEvent| service_id.set(e.target_unchecked_into::<HtmlInputElement>().value()))
    };
    let onsubmit = {
        let (ctx, state, target, service_id, msg) =
            (ctx.clone(), state.clone(), target.clone(), service_id.clone(), msg.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            // "p:3" is partner 3, "o:1" online service 1.
            let body = match target.split_once(':').map(|(k, id)| (k, id.parse::<i64>())) {
                Some(("p", Ok(id))) => json!({ "partner": id, "service_id": service_id.trim() }),
                Some(("o", Ok(id))) => json!({ "online_service": id, "service_id": service_id.trim() }),
                _ => return msg.set(Some((false, ctx.t(T::choose).to_owned()))),
            };
            if service_id.trim().is_empty() {
                return msg.set(Some((false, ctx.t(T::required).to_owned())));
            }
            let (ctx, state, msg, service_id) = (ctx.clone(), state.clone(), msg.clone(), service_id.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<Value>("/v1/me/service-links", &body).await {
                    Ok(_) => {
                        msg.set(Some((true, ctx.t(T::linked).to_owned())));
                        service_id.set(String::new());
                        state.set(load().await);
                    }
                    Err(f) if f.slug == "service-id-taken" => {
                        msg.set(Some((false, ctx.t(T::err_service_taken).to_owned())))
                    }
                    Err(f) if f.slug == "invalid-request" => {
                        msg.set(Some((false, ctx.t(T::err_service_id).to_owned())))
                    }
                    Err(_) => msg.set(Some((false, ctx.t(T::server_error).to_owned()))),
                }
            });
        })
    };
    let unlink = |id: String| revoke_then_reload(state, format!("/v1/me/service-links/{id}/revoke"));
    let option = |prefix: &str, x: &Value| {
        let value = format!("{prefix}:{}", x["id"]);
        html! { <option value={value.clone()} selected={**target == value}>{ x["name"].as_str().unwrap_or_default() }</option> }
    };
    html! {
        <section aria-labelledby="links-title">
            <h2 id="links-title">{ ctx.t(T::links_title) }</h2>
            <p>{ ctx.t(T::links_hint) }</p>
            <ul id="links">
                { for links.as_array().into_iter().flatten().map(|l| {
                    let id = l["id"].as_str().unwrap_or_default().to_owned();
                    let service = l["service_id"].as_str().unwrap_or_default();
                    let label = format!("{} {} {service}", ctx.t(T::unlink), name_of(l));
                    html! {
                        <li>
                            { name_of(l) }{ "：" }{ service }{ " " }
                            <button type="button" aria-label={label} onclick={unlink(id)}>{ ctx.t(T::unlink) }</button>
                        </li>
                    }
                }) }
            </ul>
            <form onsubmit={onsubmit}>
                <div class="field">
                    <label for="link-partner">{ ctx.t(T::link_service) }</label>
                    <select id="link-partner" onchange={onchange}>
                        <option value="" selected={target.is_empty()}>{ ctx.t(T::choose) }</option>
                        <optgroup label={ctx.t(T::link_partners)}>
                            { for linkage.iter().map(|p| option("p", p)) }
                        </optgroup>
                        <optgroup label={ctx.t(T::link_online)}>
                            { for online.iter().map(|o| option("o", o)) }
                        </optgroup>
                    </select>
                </div>
                <div class="field">
                    <label for="link-service-id">{ ctx.t(T::service_id) }</label>
                    <input id="link-service-id" type="text" autocomplete="off" value={(**service_id).clone()} oninput={oninput}
                        aria-describedby="link-msg" />
                </div>
                <button type="submit">{ ctx.t(T::link) }</button>
            </form>
            { message(msg, "link-msg") }
        </section>
    }
}

/// A button's action: revoke what `path` names, then show my page again.
fn revoke_then_reload(state: &UseStateHandle<State>, path: String) -> Callback<MouseEvent> {
    let state = state.clone();
    Callback::from(move |_| {
        let (state, path) = (state.clone(), path.clone());
        wasm_bindgen_futures::spawn_local(async move {
            let _ = api::post::<Value>(&path, &json!({})).await;
            state.set(load().await);
        });
    })
}

/// One card: the facilities whose counters find the resident's patron number from the card;
/// linking happens at the facility (card and PIN), cutting a link here.
fn patrons_section(ctx: &Ctx, state: &UseStateHandle<State>, patrons: &Value) -> Html {
    let unlink = |id: String| revoke_then_reload(state, format!("/v1/me/patron-links/{id}/revoke"));
    let list: Vec<Value> = patrons.as_array().cloned().unwrap_or_default();
    html! {
        <section aria-labelledby="patrons-title">
            <h2 id="patrons-title">{ ctx.t(T::patrons_title) }</h2>
            <p>{ ctx.t(T::patrons_hint) }</p>
            if list.is_empty() {
                <p class="muted">{ ctx.t(T::patrons_none) }</p>
            } else {
                <ul id="patrons">
                    { for list.iter().map(|l| {
                        let service = l["service"].as_str().unwrap_or_default();
                        let number = l["patron_number"].as_str().unwrap_or_default();
                        let label = format!("{} {service} {number}", ctx.t(T::unlink));
                        html! {
                            <li>
                                { service }{ "：" }{ number }{ " " }
                                <button type="button" aria-label={label} onclick={unlink(l["id"].as_str().unwrap_or_default().to_owned())}>
                                    { ctx.t(T::unlink) }
                                </button>
                            </li>
                        }
                    }) }
                </ul>
            }
        </section>
    }
}
