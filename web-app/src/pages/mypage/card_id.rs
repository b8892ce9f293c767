//! The MyKey ID and the card: change the ID, re-bind a renewed card, revoke, usage history.

use mykey_core::identity::{MykeyIdChange, Profile, Registration, Revocation};
use serde_json::Value;
use yew::prelude::*;

use super::{current_password_field, reload, CardAction};
use super::{message, State};
use crate::api;
use crate::components::card::{failure_message, fresh_registration, CandidatePicker, CardUse};
use crate::i18n::T;
use crate::Ctx;

/// The MyKey ID and card sub-page.
#[function_component(CardAndId)]
pub fn card_and_id(p: &super::SubProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let State::In(loaded) = &*p.state else { return html! {} };
    let events = loaded.history.clone();
    let state = p.state.clone();
    html! {
        <>
            <ChangeIdForm on_changed={{
                let state = state.clone();
                Callback::from(move |_| reload(&state))
            }} />
            <CardAction id="rebind" title={T::rebind_title} hint={Some(T::rebind_hint)} button={T::rebind}
                card_use={CardUse::Rebind} password=true answer={{
                    let ctx = ctx.clone();
                    Callback::from(move |_: Value| (true, ctx.t(T::rebound).to_owned()))
                }} />
            <RevokeForm on_revoked={{
                let state = state.clone();
                Callback::from(move |_| state.set(State::LoggedOut))
            }} />
            <section aria-labelledby="usage-title">
                <h2 id="usage-title">{ ctx.t(T::usage) }</h2>
                <ul id="usage">
                    { for events.iter().map(|e| {
                        // "2026-11-27T13:01:04.606470Z" as "2026-11-27 13:01 UTC".
                        // "2026-11-27T13:01:04.606470Z" as "2026-11-27 13:01 UTC".
                        let at = e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                        let shown = format!("{} UTC", at.get(..16).unwrap_or(&at).replace('T', " "));
                        html! { <li><time datetime={at.clone()}>{ shown }</time>{ " " }{ usage_kind(&ctx, &e.kind) }</li> }
                    }) }
                </ul>
            </section>
        </>
    }
}

/// A usage event's kind in the resident's words.
fn usage_kind(ctx: &Ctx, kind: &str) -> String {
    let key = match kind {
        "registered" => T::ev_registered,
        "login_card" => T::ev_login_card,
        "login_password" => T::ev_login_password,
        "settings_changed" => T::ev_settings_changed,
        "password_changed" => T::ev_password_changed,
        "changed_away" => T::ev_changed_away,
        "changed_to" => T::ev_changed_to,
        "revoked" => T::ev_revoked,
        "card_rebound" => T::ev_card_rebound,
        "service_linked" => T::ev_service_linked,
        "service_unlinked" => T::ev_service_unlinked,
        "mandate_granted" => T::ev_mandate_granted,
        "mandate_charged" => T::ev_mandate_charged,
        "mandate_revoked" => T::ev_mandate_revoked,
        "facility_linked" => T::ev_facility_linked,
        "facility_lookup" => T::ev_facility_lookup,
        "facility_unlinked" => T::ev_facility_unlinked,
        other => return other.to_owned(),
    };
    ctx.t(key).to_owned()
}

#[derive(Properties, PartialEq)]
struct ChangeIdProps {
    on_changed: Callback<()>,
}

/// A new MyKey ID by the same candidate rules as registration, confirmed with the password.
#[function_component(ChangeIdForm)]
fn change_id_form(p: &ChangeIdProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let reg = use_state(fresh_registration);
    let password = use_state(String::new);
    let msg = use_state(|| None::<(bool, String)>);
    let on_reg = {
        let reg = reg.clone();
        Callback::from(move |r: Registration| reg.set(r))
    };
    let onsubmit = {
        let (ctx, reg, password, msg, done) =
            (ctx.clone(), reg.clone(), password.clone(), msg.clone(), p.on_changed.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(candidate) = reg.candidate.clone() else {
                return msg.set(Some((false, ctx.t(T::err_no_candidate).to_owned())));
            };
            let body = MykeyIdChange { candidate: candidate.to_string(), password: (*password).clone() };
            let (ctx, msg, password, reg, done) =
                (ctx.clone(), msg.clone(), password.clone(), reg.clone(), done.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<Profile>("/v1/me/mykey-id", &body).await {
                    Ok(p) => {
                        msg.set(Some((true, format!("{}{}", ctx.t(T::id_changed), p.mykey_id))));
                        password.set(String::new());
                        reg.set(fresh_registration());
                        done.emit(());
                    }
                    Err(f) => msg.set(Some((false, failure_message(&ctx, &f)))),
                }
            });
        })
    };
    html! {
        <section aria-labelledby="change-id-title">
            <h2 id="change-id-title">{ ctx.t(T::change_id_title) }</h2>
            <CandidatePicker endpoint="/v1/me/candidates" reg={(*reg).clone()} on_reg={on_reg} />
            <form onsubmit={onsubmit}>
                { current_password_field(&ctx, "change-id-password", "change-id-msg", &password) }
                <button type="submit" id="change-id" disabled={reg.candidate.is_none()}>{ ctx.t(T::change_id) }</button>
            </form>
            { message(&msg, "change-id-msg") }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct RevokeProps {
    on_revoked: Callback<()>,
}

/// Revokes the MyKey ID after the password is typed again.
#[function_component(RevokeForm)]
fn revoke_form(p: &RevokeProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let password = use_state(String::new);
    let msg = use_state(|| None::<(bool, String)>);
    let onsubmit = {
        let (ctx, password, msg, done) = (ctx.clone(), password.clone(), msg.clone(), p.on_revoked.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let body = Revocation { password: (*password).clone() };
            let (ctx, msg, done) = (ctx.clone(), msg.clone(), done.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<Value>("/v1/me/revoke", &body).await {
                    Ok(_) => {
                        msg.set(Some((true, ctx.t(T::revoked).to_owned())));
                        done.emit(());
                    }
                    Err(f) if f.slug == "login-failed" => {
                        msg.set(Some((false, ctx.t(T::err_current_password).to_owned())))
                    }
                    Err(f) if f.slug == "rate-limited" => msg.set(Some((false, ctx.t(T::err_rate_limited).to_owned()))),
                    Err(_) => msg.set(Some((false, ctx.t(T::server_error).to_owned()))),
                }
            });
        })
    };
    html! {
        <section aria-labelledby="revoke-title">
            <h2 id="revoke-title">{ ctx.t(T::revoke_title) }</h2>
            <p>{ ctx.t(T::revoke_hint) }</p>
            <form onsubmit={onsubmit}>
                { current_password_field(&ctx, "revoke-password", "revoke-msg", &password) }
                <button type="submit">{ ctx.t(T::revoke) }</button>
            </form>
            { message(&msg, "revoke-msg") }
        </section>
    }
}
