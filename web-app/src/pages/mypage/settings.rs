//! E-mail and notices; the password.

use mykey_core::identity::{Notices, Profile, SettingsChange};
use serde_json::{json, Value};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::{current_password_field, input_field, message, State};
use crate::api;
use crate::i18n::T;
use crate::Ctx;

/// The notices and password sub-page.
#[function_component(Settings)]
pub fn settings(p: &super::SubProps) -> Html {
    let State::In(loaded) = &*p.state else { return html! {} };
    html! {
        <>
            <SettingsForm profile={loaded.profile.clone()} />
            <PasswordForm />
        </>
    }
}

#[derive(Properties, PartialEq)]
struct SettingsProps {
    profile: Profile,
}

/// E-mail (typed twice) and the notice choices.
#[function_component(SettingsForm)]
fn settings_form(p: &SettingsProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let initial = p.profile.clone();
    let email = use_state(|| initial.email.clone().unwrap_or_default());
    let email2 = use_state(|| initial.email.clone().unwrap_or_default());
    let notices = use_state(|| initial.notices.clone());
    let password = use_state(String::new);
    let msg = use_state(|| None::<(bool, String)>);
    let text = |id: &'static str, label: T, h: &UseStateHandle<String>| {
        input_field(&ctx, (id, label), ("email", "email"), "settings-msg", h)
    };
    let check = |i: usize, label: T, field: fn(&mut Notices) -> &mut bool| {
        let checked = *field(&mut (*notices).clone());
        let notices = notices.clone();
        let onchange = Callback::from(move |e: Event| {
            let mut n = (*notices).clone();
            *field(&mut n) = e.target_unchecked_into::<HtmlInputElement>().checked();
            notices.set(n);
        });
        let id = format!("setting-{i}");
        html! {
            <div class="check">
                <input id={id.clone()} type="checkbox" checked={checked} onchange={onchange} />
                <label for={id}>{ ctx.t(label) }</label>
            </div>
        }
    };
    let onsubmit = {
        let (ctx, email, email2, notices, password, msg) =
            (ctx.clone(), email.clone(), email2.clone(), notices.clone(), password.clone(), msg.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let body = SettingsChange {
                password: (*password).clone(),
                email: (!email.is_empty()).then(|| (*email).clone()),
                email_confirmation: (!email2.is_empty()).then(|| (*email2).clone()),
                notices: (*notices).clone(),
            };
            let (ctx, msg) = (ctx.clone(), msg.clone());
            wasm_bindgen_futures::spawn_local(async move {
                msg.set(Some(match api::put::<Value>("/v1/me/settings", &body).await {
                    Ok(_) => (true, ctx.t(T::saved).to_owned()),
                    Err(f) if f.slug == "invalid-email" => (false, ctx.t(T::err_email).to_owned()),
                    Err(f) if f.slug == "confirmation-mismatch" => (false, ctx.t(T::err_email_match).to_owned()),
                    Err(f) if f.slug == "login-failed" => (false, ctx.t(T::err_current_password).to_owned()),
                    Err(f) if f.slug == "rate-limited" => (false, ctx.t(T::err_rate_limited).to_owned()),
                    Err(_) => (false, ctx.t(T::server_error).to_owned()),
                }));
            });
        })
    };
    html! {
        <section aria-labelledby="settings-title">
            <h2 id="settings-title">{ ctx.t(T::settings_title) }</h2>
            <form onsubmit={onsubmit} novalidate=true>
                { text("settings-email", T::email, &email) }
                { text("settings-email2", T::email_again, &email2) }
                <fieldset>
                    <legend>{ ctx.t(T::notices) }</legend>
                    { check(0, T::notice_granted, |n| &mut n.points_granted) }
                    { check(1, T::notice_expired, |n| &mut n.points_expired) }
                    { check(2, T::notice_settings, |n| &mut n.settings_changed) }
                    { check(3, T::notice_id, |n| &mut n.mykey_id_changed) }
                    { check(4, T::notice_payments, |n| &mut n.payments) }
                </fieldset>
                { current_password_field(&ctx, "settings-password", "settings-msg", &password) }
                <button type="submit">{ ctx.t(T::save) }</button>
            </form>
            { message(&msg, "settings-msg") }
        </section>
    }
}

/// The password, changed with the current one; its rules are the registration's.
#[function_component(PasswordForm)]
fn password_form() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let current = use_state(String::new);
    let new = use_state(String::new);
    let again = use_state(String::new);
    let msg = use_state(|| None::<(bool, String)>);
    let field = |id: &'static str, label: T, auto: &'static str, h: &UseStateHandle<String>| {
        input_field(&ctx, (id, label), ("password", auto), "password-msg", h)
    };
    let onsubmit = {
        let (ctx, current, new, again, msg) = (ctx.clone(), current.clone(), new.clone(), again.clone(), msg.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if mykey_core::identity::check_password(&new).is_err() || *new != *again {
                return msg.set(Some((false, ctx.t(T::err_password).to_owned())));
            }
            let body = json!({ "current_password": *current, "password": *new, "password_confirmation": *again });
            let (ctx, msg, current, new, again) =
                (ctx.clone(), msg.clone(), current.clone(), new.clone(), again.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<Value>("/v1/me/password", &body).await {
                    Ok(_) => {
                        msg.set(Some((true, ctx.t(T::password_changed).to_owned())));
                        current.set(String::new());
                        new.set(String::new());
                        again.set(String::new());
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
        <section aria-labelledby="password-title">
            <h2 id="password-title">{ ctx.t(T::password_title) }</h2>
            <form onsubmit={onsubmit}>
                { field("current-password", T::current_password, "current-password", &current) }
                { field("new-password", T::new_password, "new-password", &new) }
                { field("new-password2", T::new_password_again, "new-password", &again) }
                <button type="submit">{ ctx.t(T::change) }</button>
            </form>
            { message(&msg, "password-msg") }
        </section>
    }
}
