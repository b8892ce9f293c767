//! MyKey ID creation, following the seed's screens: choose how to read the card (the demo's
//! virtual card labelled as such), the PIN with the tries left, the candidate (three
//! generations, the third final; or an own choice checked for duplicates), password, e-mail and
//! notices, home municipality, confirmation, completion.

use mykey_core::identity::{check_email, check_password, PasswordError, Registration};
use serde_json::{json, Value};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::api::directory::{by_prefecture, use_municipalities};
use crate::api::{self, Failure};
use crate::components::card::{failure_message, fresh_registration, input_value, CandidatePicker, CardReader, CardUse};
use crate::i18n::T;
use yew_router::prelude::*;

use crate::router::Route;
use crate::Ctx;

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Card,
    Candidate,
    Form,
    Confirm,
    Done(String),
    Already(String),
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Form {
    password: String,
    password2: String,
    email: String,
    email2: String,
    notices: [bool; 5],
    prefecture: String,
    municipality: Option<i64>,
}

#[function_component(Create)]
pub fn create() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let navigator = use_navigator().expect("inside the router");
    let step = use_state(|| Step::Card);
    let error = use_state(|| None::<String>);
    let busy = use_state(|| false);
    let reg = use_state(fresh_registration);
    let form = use_state(Form::default);
    let municipalities = use_municipalities();

    let logged_in = {
        let (step, reg) = (step.clone(), reg.clone());
        Callback::from(move |login: Value| match login["mykey_id"].as_str() {
            Some(id) => step.set(Step::Already(id.to_owned())),
            None => {
                if let Ok(r) = serde_json::from_value(login["registration"].clone()) {
                    reg.set(r);
                }
                step.set(Step::Candidate);
            }
        })
    };
    let on_reg = {
        let reg = reg.clone();
        Callback::from(move |r: Registration| reg.set(r))
    };

    let register = {
        let (ctx, step, reg, form, error, busy) =
            (ctx.clone(), step.clone(), reg.clone(), form.clone(), error.clone(), busy.clone());
        Callback::from(move |_| {
            let f = (*form).clone();
            let candidate = reg.candidate.clone().map(|c| c.to_string()).unwrap_or_default();
            let email = (!f.email.is_empty()).then(|| f.email.clone());
            let body = json!({
                "candidate": candidate,
                "password": f.password,
                "password_confirmation": f.password2,
                "email": email,
                "email_confirmation": (!f.email2.is_empty()).then(|| f.email2.clone()),
                "notices": {
                    "points_granted": f.notices[0], "points_expired": f.notices[1],
                    "settings_changed": f.notices[2], "mykey_id_changed": f.notices[3], "payments": f.notices[4],
                },
                "home_municipality": f.municipality,
            });
            let (ctx, step, error, busy) = (ctx.clone(), step.clone(), error.clone(), busy.clone());
            busy.set(true);
            error.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<Value>("/v1/mykey-ids", &body).await {
                    Ok(p) => step.set(Step::Done(p["mykey_id"].as_str().unwrap_or_default().to_owned())),
                    // The form keeps what was typed.
                    Err(f) => error.set(Some(failure_message(&ctx, &f))),
                }
                busy.set(false);
            });
        })
    };

    let to = |s: Step| {
        let (step, error) = (step.clone(), error.clone());
        Callback::from(move |_| {
            error.set(None);
            step.set(s.clone());
        })
    };

    let alert = error.as_ref().map(|m| html! { <p class="error" role="alert" id="step-error">{ m }</p> });

    let body = match &*step {
        Step::Card => html! {
            <section aria-labelledby="step-title">
                <CardReader card_use={CardUse::Login} on_answer={logged_in} />
            </section>
        },
        Step::Candidate => html! {
            <section aria-labelledby="step-title">
                <h2 id="step-title">{ ctx.t(T::candidate_step) }</h2>
                <CandidatePicker endpoint="/v1/registration/candidates" reg={(*reg).clone()} on_reg={on_reg} />
                <div class="actions">
                    <button type="button" class="primary" id="to-form" onclick={to(Step::Form)} disabled={reg.candidate.is_none()}>
                        { ctx.t(T::next) }
                    </button>
                </div>
            </section>
        },
        Step::Form => form_step(
            &ctx,
            &form,
            &municipalities,
            to(Step::Candidate),
            {
                let (step, error) = (step.clone(), error.clone());
                let (ctx, form) = (ctx.clone(), form.clone());
                Callback::from(move |e: SubmitEvent| {
                    e.prevent_default();
                    match validate(&ctx, &form) {
                        Ok(()) => {
                            error.set(None);
                            step.set(Step::Confirm);
                        }
                        Err(m) => error.set(Some(m)),
                    }
                })
            },
            alert.clone(),
        ),
        Step::Confirm => {
            let f = &*form;
            let home = municipalities
                .as_ref()
                .and_then(|r| r.as_ref().ok())
                .and_then(|l| l.iter().find(|m| Some(m.id) == f.municipality))
                .map(|m| format!("{} {}", m.prefecture, m.name))
                .unwrap_or_default();
            let chosen: Vec<&str> =
                [T::notice_granted, T::notice_expired, T::notice_settings, T::notice_id, T::notice_payments]
                    .iter()
                    .zip(f.notices)
                    .filter(|(_, on)| *on)
                    .map(|(t, _)| ctx.t(*t))
                    .collect();
            html! {
                <section aria-labelledby="step-title">
                    <h2 id="step-title">{ ctx.t(T::confirm_step) }</h2>
                    <dl class="summary">
                        <dt>{ ctx.t(T::mykey_id) }</dt>
                        <dd>{ reg.candidate.clone().map(|c| c.to_string()).unwrap_or_default() }</dd>
                        <dt>{ ctx.t(T::email) }</dt><dd>{ if f.email.is_empty() { "-".to_owned() } else { f.email.clone() } }</dd>
                        <dt>{ ctx.t(T::notices) }</dt><dd>{ if chosen.is_empty() { "-".to_owned() } else { chosen.join("、") } }</dd>
                        <dt>{ ctx.t(T::municipality) }</dt><dd>{ home }</dd>
                    </dl>
                    { alert.clone() }
                    <div class="actions">
                        <button type="button" onclick={to(Step::Form)}>{ ctx.t(T::back) }</button>
                        <button type="button" class="primary" id="register" onclick={register} disabled={*busy}>{ ctx.t(T::register) }</button>
                    </div>
                </section>
            }
        }
        Step::Done(id) | Step::Already(id) => {
            let go = {
                let navigator = navigator.clone();
                Callback::from(move |_| navigator.push(&Route::MyPage))
            };
            let title = if matches!(*step, Step::Done(_)) { ctx.t(T::done_title) } else { ctx.t(T::already) };
            html! {
                <section aria-labelledby="step-title">
                    <h2 id="step-title">{ title }</h2>
                    <p class="candidate">{ ctx.t(T::mykey_id) }{ "：" }<strong id="done-id">{ id }</strong></p>
                    <button type="button" class="primary" onclick={go}>{ ctx.t(T::go_mypage) }</button>
                </section>
            }
        }
    };
    html! {
        <>
            <h1>{ ctx.t(T::create_title) }</h1>
            if matches!(*step, Step::Done(_) | Step::Already(_)) { { alert } }
            { body }
        </>
    }
}

/// The password rules as the resident types: each shown met or not.
fn rules(ctx: &Ctx, f: &Form) -> Html {
    let err = check_password(&f.password).err();
    let length_ok = !f.password.is_empty() && !matches!(err, Some(PasswordError::Length(_)));
    let chars_ok = !f.password.is_empty() && !matches!(err, Some(PasswordError::Character(_)));
    let match_ok = !f.password.is_empty() && f.password == f.password2;
    let rule = |ok: bool, t: T| {
        html! { <li class={if ok { "ok" } else { "todo" }}>{ if ok { "✓ " } else { "・" } }{ ctx.t(t) }</li> }
    };
    html! {
        <ul id="password-rules" class="rules" aria-live="polite">
            { rule(length_ok, T::rule_length) }
            { rule(chars_ok, T::rule_chars) }
            { rule(match_ok, T::rule_match) }
        </ul>
    }
}

fn validate(ctx: &Ctx, f: &Form) -> Result<(), String> {
    if check_password(&f.password).is_err() || f.password != f.password2 {
        return Err(ctx.t(T::err_password).to_owned());
    }
    if !f.email.is_empty() && !check_email(&f.email) {
        return Err(ctx.t(T::err_email).to_owned());
    }
    if f.email != f.email2 {
        return Err(ctx.t(T::err_email_match).to_owned());
    }
    if f.email.is_empty() && f.notices.iter().any(|n| *n) {
        return Err(ctx.t(T::err_notices_need_email).to_owned());
    }
    if f.municipality.is_none() {
        return Err(ctx.t(T::home_required).to_owned());
    }
    Ok(())
}

type Municipalities = UseStateHandle<Option<Result<Vec<mykey_core::api::Municipality>, Failure>>>;

fn form_step(
    ctx: &Ctx,
    form: &UseStateHandle<Form>,
    municipalities: &Municipalities,
    back: Callback<MouseEvent>,
    next: Callback<SubmitEvent>,
    alert: Option<Html>,
) -> Html {
    let f = (**form).clone();
    let text = |id: &'static str, label: T, kind: &'static str, value: String, set: fn(&mut Form, String)| {
        let form = form.clone();
        let oninput = Callback::from(move |e: InputEvent| {
            let mut f = (*form).clone();
            set(&mut f, input_value(&e));
            form.set(f);
        });
        let auto = if kind == "password" { "new-password" } else { "email" };
        html! {
            <div class="field">
                <label for={id}>{ ctx.t(label) }</label>
                <input id={id} type={kind} autocomplete={auto} value={value} oninput={oninput}
                    aria-describedby={if kind == "password" { "password-rules" } else { "step-error" }} />
            </div>
        }
    };
    let notice = |i: usize, label: T| {
        let form = form.clone();
        let onchange = Callback::from(move |e: Event| {
            let mut f = (*form).clone();
            f.notices[i] = e.target_unchecked_into::<HtmlInputElement>().checked();
            form.set(f);
        });
        let id = format!("notice-{i}");
        html! {
            <div class="check">
                <input id={id.clone()} type="checkbox" checked={f.notices[i]} onchange={onchange} />
                <label for={id}>{ ctx.t(label) }</label>
            </div>
        }
    };
    let groups = municipalities.as_ref().and_then(|r| r.as_ref().ok()).map(|l| by_prefecture(l)).unwrap_or_default();
    let on_pref = {
        let form = form.clone();
        Callback::from(move |e: Event| {
            let mut f = (*form).clone();
            f.prefecture = e.target_unchecked_into::<HtmlSelectElement>().value();
            f.municipality = None;
            form.set(f);
        })
    };
    let on_muni = {
        let form = form.clone();
        Callback::from(move |e: Event| {
            let mut f = (*form).clone();
            f.municipality = e.target_unchecked_into::<HtmlSelectElement>().value().parse().ok();
            form.set(f);
        })
    };
    let in_pref =
        groups.iter().find(|((code, _), _)| *code == f.prefecture).map(|(_, ms)| ms.clone()).unwrap_or_default();
    html! {
        <section aria-labelledby="step-title">
            <h2 id="step-title">{ ctx.t(T::form_step) }</h2>
            <form onsubmit={next} novalidate=true>
                { text("password", T::password, "password", f.password.clone(), |f, v| f.password = v) }
                { text("password2", T::password_again, "password", f.password2.clone(), |f, v| f.password2 = v) }
                { rules(ctx, &f) }
                { text("email", T::email, "email", f.email.clone(), |f, v| f.email = v) }
                { text("email2", T::email_again, "email", f.email2.clone(), |f, v| f.email2 = v) }
                <fieldset>
                    <legend>{ ctx.t(T::notices) }</legend>
                    { notice(0, T::notice_granted) }
                    { notice(1, T::notice_expired) }
                    { notice(2, T::notice_settings) }
                    { notice(3, T::notice_id) }
                    { notice(4, T::notice_payments) }
                </fieldset>
                <div class="field">
                    <label for="prefecture">{ ctx.t(T::prefecture) }</label>
                    <select id="prefecture" onchange={on_pref}>
                        <option value="" selected={f.prefecture.is_empty()}>{ ctx.t(T::choose) }</option>
                        { for groups.keys().map(|(code, name)| html! {
                            <option value={code.clone()} selected={*code == f.prefecture}>{ name }</option>
                        }) }
                    </select>
                </div>
                <div class="field">
                    <label for="municipality">{ ctx.t(T::municipality) }</label>
                    <select id="municipality" onchange={on_muni} disabled={f.prefecture.is_empty()}>
                        <option value="" selected={f.municipality.is_none()}>{ ctx.t(T::choose) }</option>
                        { for in_pref.iter().map(|m| html! {
                            <option value={m.id.to_string()} selected={Some(m.id) == f.municipality}>{ m.name.clone() }</option>
                        }) }
                    </select>
                </div>
                { alert }
                <div class="actions">
                    <button type="button" onclick={back}>{ ctx.t(T::back) }</button>
                    <button type="submit" class="primary" id="to-confirm">{ ctx.t(T::next) }</button>
                </div>
            </form>
        </section>
    }
}
