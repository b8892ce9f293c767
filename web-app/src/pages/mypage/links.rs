//! Linked IDs: partner service IDs and online-shop member IDs; facilities' patron numbers.

use mykey_core::api::{OnlineService, Partner};
use mykey_core::identity::{PatronLink, ServiceLink, ServiceLinkRequest};
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
    links: &[ServiceLink],
    partners: &[Partner],
    online: &[OnlineService],
    target: &UseStateHandle<String>,
    service_id: &UseStateHandle<String>,
    msg: &Msg,
) -> Html {
    let linkage: Vec<&Partner> = partners.iter().filter(|p| p.exchange_method == "id_linkage").collect();
    let name_of = |l: &ServiceLink| -> String {
        let name = match (l.partner, l.online_service) {
            (Some(p), _) => partners.iter().find(|x| x.id == p).map(|x| x.name.as_str()),
            (None, Some(o)) => online.iter().find(|x| x.id == o).map(|x| x.name.as_str()),
            (None, None) => None,
        };
        name.unwrap_or_default().to_owned()
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
            let (partner, online_service) = match target.split_once(':').map(|(k, id)| (k, id.parse::<i64>())) {
                Some(("p", Ok(id))) => (Some(id), None),
                Some(("o", Ok(id))) => (None, Some(id)),
                _ => return msg.set(Some((false, ctx.t(T::choose).to_owned()))),
            };
            let body = ServiceLinkRequest { partner, online_service, service_id: service_id.trim().to_owned() };
            if service_id.trim().is_empty() {
                return msg.set(Some((false, ctx.t(T::required).to_owned())));
            }
            let (ctx, state, msg, service_id) = (ctx.clone(), state.clone(), msg.clone(), service_id.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<ServiceLink>("/v1/me/service-links", &body).await {
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
    let option = |prefix: &str, id: i64, name: &str| {
        let value = format!("{prefix}:{id}");
        html! { <option value={value.clone()} selected={**target == value}>{ name.to_owned() }</option> }
    };
    html! {
        <section aria-labelledby="links-title">
            <h2 id="links-title">{ ctx.t(T::links_title) }</h2>
            <p>{ ctx.t(T::links_hint) }</p>
            <ul id="links">
                { for links.iter().map(|l| {
                    let id = l.id.to_string();
                    let service = l.service_id.as_str();
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
                            { for linkage.iter().map(|p| option("p", p.id, &p.name)) }
                        </optgroup>
                        <optgroup label={ctx.t(T::link_online)}>
                            { for online.iter().map(|o| option("o", o.id, &o.name)) }
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
            let _ = api::post::<serde_json::Value>(&path, &serde_json::json!({})).await;
            state.set(load().await);
        });
    })
}

/// One card: the facilities whose counters find the resident's patron number from the card;
/// linking happens at the facility (card and PIN), cutting a link here.
fn patrons_section(ctx: &Ctx, state: &UseStateHandle<State>, list: &[PatronLink]) -> Html {
    let unlink = |id: String| revoke_then_reload(state, format!("/v1/me/patron-links/{id}/revoke"));
    html! {
        <section aria-labelledby="patrons-title">
            <h2 id="patrons-title">{ ctx.t(T::patrons_title) }</h2>
            <p>{ ctx.t(T::patrons_hint) }</p>
            if list.is_empty() {
                <p class="muted">{ ctx.t(T::patrons_none) }</p>
            } else {
                <ul id="patrons">
                    { for list.iter().map(|l| {
                        let (service, number) = (l.service.as_str(), l.patron_number.as_str());
                        let label = format!("{} {service} {number}", ctx.t(T::unlink));
                        html! {
                            <li>
                                { service }{ "：" }{ number }{ " " }
                                <button type="button" aria-label={label} onclick={unlink(l.id.to_string())}>
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
