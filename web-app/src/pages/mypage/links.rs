//! Linked IDs: partner service IDs and online-shop member IDs; facilities' patron numbers.

use mykey_core::api::{MandateState, OnlineService, Partner, ResidentMandate};
use mykey_core::identity::{PatronLink, Revocation, ServiceLink};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::{load, message, Msg, State};
use crate::api;
use crate::i18n::T;
use crate::Ctx;

/// The linked IDs sub-page.
#[function_component(Links)]
pub fn links(p: &super::SubProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let password = use_state(String::new);
    let link_msg = use_state(|| None::<(bool, String)>);
    let State::In(loaded) = &*p.state else { return html! {} };
    html! {
        <>
            { links_list(&ctx, &p.state, &loaded.links, &loaded.partners, &loaded.online, &password, &link_msg) }
            { mandates_section(&ctx, &p.state, &loaded.mandates) }
            { patrons_section(&ctx, &p.state, &loaded.patrons) }
        </>
    }
}

/// Service links: partners' member numbers (ID linkage: points come in) and online services'
/// member IDs (points are spent there). They are made on the partner's site (a link session
/// the resident confirms); here they are listed and cut, with the password typed again.
fn links_list(
    ctx: &Ctx,
    state: &UseStateHandle<State>,
    links: &[ServiceLink],
    partners: &[Partner],
    online: &[OnlineService],
    password: &UseStateHandle<String>,
    msg: &Msg,
) -> Html {
    let name_of = |l: &ServiceLink| -> String {
        let name = match (l.partner, l.online_service) {
            (Some(p), _) => partners.iter().find(|x| x.id == p).map(|x| x.name.as_str()),
            (None, Some(o)) => online.iter().find(|x| x.id == o).map(|x| x.name.as_str()),
            (None, None) => None,
        };
        name.unwrap_or_default().to_owned()
    };
    let oninput = {
        let password = password.clone();
        Callback::from(move |e: InputEvent| password.set(e.target_unchecked_into::<HtmlInputElement>().value()))
    };
    let unlink = |id: String| {
        let (ctx, state, password, msg) = (ctx.clone(), state.clone(), password.clone(), msg.clone());
        Callback::from(move |_: MouseEvent| {
            if password.is_empty() {
                return msg.set(Some((false, ctx.t(T::unlink_password).to_owned())));
            }
            let body = Revocation { password: (*password).clone() };
            let (ctx, state, password, msg, id) =
                (ctx.clone(), state.clone(), password.clone(), msg.clone(), id.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<serde_json::Value>(&format!("/v1/me/service-links/{id}/revoke"), &body).await {
                    Ok(_) => {
                        password.set(String::new());
                        msg.set(Some((true, ctx.t(T::unlinked).to_owned())));
                        state.set(load().await);
                    }
                    Err(f) if f.slug == "login-failed" || f.slug == "unauthenticated" => {
                        msg.set(Some((false, ctx.t(T::err_current_password).to_owned())))
                    }
                    Err(f) if f.slug == "rate-limited" => msg.set(Some((false, f.detail))),
                    Err(_) => msg.set(Some((false, ctx.t(T::server_error).to_owned()))),
                }
            });
        })
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
                            { name_of(l) }{ "：" }{ service }
                            if !l.proven { { " " }<span class="note">{ ctx.t(T::link_unproven) }</span> }
                            { " " }
                            <button type="button" aria-label={label} aria-describedby="link-msg" onclick={unlink(id)}>{ ctx.t(T::unlink) }</button>
                        </li>
                    }
                }) }
            </ul>
            if !links.is_empty() {
                <div class="field">
                    <label for="unlink-password">{ ctx.t(T::unlink_password) }</label>
                    <input id="unlink-password" type="password" autocomplete="current-password" value={(**password).clone()}
                        oninput={oninput} aria-describedby="link-msg" />
                </div>
            }
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

/// Standing mandates: which online store may charge, within which limits, until when, what it
/// charged; each revoked at once with one button.
fn mandates_section(ctx: &Ctx, state: &UseStateHandle<State>, list: &[ResidentMandate]) -> Html {
    let pt = |n: i64| format!("{n}{}", ctx.t(T::points_suffix));
    let state_label = |s: MandateState| match s {
        MandateState::Active => ctx.t(T::mandate_active),
        MandateState::Revoked => ctx.t(T::mandate_revoked),
        MandateState::Ended => ctx.t(T::mandate_ended),
    };
    html! {
        <section aria-labelledby="mandates-title">
            <h2 id="mandates-title">{ ctx.t(T::mandates_title) }</h2>
            <p>{ ctx.t(T::mandates_hint) }</p>
            if list.is_empty() {
                <p class="muted">{ ctx.t(T::mandates_none) }</p>
            } else {
                <ul id="mandates">
                    { for list.iter().map(|m| {
                        let label = format!("{} {}", ctx.t(T::mandate_revoke), m.shop_name);
                        let revoke = revoke_then_reload(state, format!("/v1/me/mandates/{}/revoke", m.id));
                        html! {
                            <li>
                                <h3>{ m.shop_name.clone() }{ " " }<span class="note">{ state_label(m.state) }</span></h3>
                                <dl class="summary">
                                    <dt>{ ctx.t(T::mandate_terms) }</dt>
                                    <dd>{ format!("{} {}／{} {}", ctx.t(T::mandate_per_charge), pt(m.terms.max_per_charge),
                                        ctx.t(T::mandate_per_month), pt(m.terms.max_per_month)) }</dd>
                                    <dt>{ ctx.t(T::mandate_until) }</dt><dd>{ m.terms.ends_on.format("%Y-%m-%d").to_string() }</dd>
                                    <dt>{ ctx.t(T::mandate_this_month) }</dt><dd>{ pt(m.charged_this_month) }</dd>
                                </dl>
                                if !m.charges.is_empty() {
                                    <table>
                                        <caption>{ ctx.t(T::mandate_charges) }</caption>
                                        <tbody>
                                            { for m.charges.iter().map(|c| html! {
                                                <tr>
                                                    <td>{ c.at.format("%Y-%m-%d").to_string() }</td>
                                                    <td class="num">{ pt(c.points) }</td>
                                                    <td>{ c.reference.clone() }</td>
                                                </tr>
                                            }) }
                                        </tbody>
                                    </table>
                                }
                                if m.state == MandateState::Active {
                                    <button type="button" aria-label={label} onclick={revoke}>{ ctx.t(T::mandate_revoke) }</button>
                                }
                            </li>
                        }
                    }) }
                </ul>
            }
        </section>
    }
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
