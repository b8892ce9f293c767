//! MyKey ID creation, following the seed's screens: choose how to read the card (the demo's
//! virtual card labelled as such), the PIN with the tries left, the candidate (three
//! generations, the third final; or an own choice checked for duplicates), password, e-mail and
//! notices, home municipality, confirmation, completion.

use std::cell::RefCell;
use std::rc::Rc;

use mykey_core::identity::{check_email, check_password, PasswordError, Registration};
use mykey_core::MykeyId;
use mykey_sdk::card::CardBridge;
use serde_json::{json, Value};
use wasm_bindgen::JsValue;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::api::{self, Failure};
use crate::i18n::T;
use crate::top::{by_prefecture, use_municipalities};
use crate::{Ctx, Route};

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Card,
    Pin,
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
    notices: [bool; 4],
    prefecture: String,
    municipality: Option<i64>,
}

fn js_json(v: &JsValue) -> Value {
    js_sys::JSON::stringify(v)
        .ok()
        .and_then(|s| s.as_string())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

/// A card bridge error (`code`, `triesLeft`, `message`) in the resident's words.
fn card_message(ctx: &Ctx, e: &JsValue) -> String {
    let get = |k: &str| js_sys::Reflect::get(e, &k.into()).ok();
    let code = get("code").and_then(|v| v.as_string()).unwrap_or_default();
    let message = get("message").and_then(|v| v.as_string()).unwrap_or_default();
    match code.as_str() {
        "wrong_pin" => {
            let left = get("triesLeft").and_then(|v| v.as_f64()).unwrap_or(0.0);
            format!("{}{}", ctx.t(T::pin_wrong), left)
        }
        "pin_blocked" => ctx.t(T::pin_blocked).to_owned(),
        "bad_pin" => ctx.t(T::pin_format).to_owned(),
        "no_card" => ctx.t(T::err_no_card).to_owned(),
        "card_removed" => ctx.t(T::err_card_removed).to_owned(),
        "no_reader" => format!("{}{message}", ctx.t(T::err_no_reader)),
        _ => message,
    }
}

fn failure_message(ctx: &Ctx, f: &Failure) -> String {
    match f.slug.as_str() {
        "mykey-id-taken" => ctx.t(T::err_taken).to_owned(),
        "invalid-mykey-id" => ctx.t(T::err_invalid_id).to_owned(),
        "candidates-used-up" => ctx.t(T::err_used_up).to_owned(),
        "card-rejected" => format!("{}{}", ctx.t(T::err_card_rejected), f.detail),
        "rate-limited" => ctx.t(T::err_rate_limited).to_owned(),
        "password-rules" | "confirmation-mismatch" if f.field.as_deref() != Some("email_confirmation") => {
            ctx.t(T::err_password).to_owned()
        }
        "confirmation-mismatch" => ctx.t(T::err_email_match).to_owned(),
        "invalid-email" => ctx.t(T::err_email).to_owned(),
        "network" | "server" | "internal" | "unavailable" => ctx.t(T::server_error).to_owned(),
        _ => f.detail.clone(),
    }
}

fn input_value(e: &InputEvent) -> String {
    e.target_unchecked_into::<HtmlInputElement>().value()
}

#[function_component(Create)]
pub fn create() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let step = use_state(|| Step::Card);
    let bridges = use_state(|| None::<Value>);
    let bridge: Rc<RefCell<Option<CardBridge>>> = use_mut_ref(|| None);
    let kind = use_state(String::new);
    let tries = use_state(|| None::<Value>);
    let pin = use_state(String::new);
    let error = use_state(|| None::<String>);
    let notice = use_state(|| None::<String>);
    let busy = use_state(|| false);
    let reg = use_state(|| None::<Registration>);
    let own = use_state(String::new);
    let form = use_state(Form::default);
    let municipalities = use_municipalities();

    {
        let bridges = bridges.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                let list = mykey_sdk::card::list_bridges().await.map(|v| js_json(&v)).unwrap_or_default();
                bridges.set(Some(list));
            });
        });
    }

    let choose = |k: &'static str| {
        let (ctx, step, bridge, kind, tries, error, busy) =
            (ctx.clone(), step.clone(), bridge.clone(), kind.clone(), tries.clone(), error.clone(), busy.clone());
        Callback::from(move |_| {
            let (ctx, step, bridge, kind, tries, error, busy) =
                (ctx.clone(), step.clone(), bridge.clone(), kind.clone(), tries.clone(), error.clone(), busy.clone());
            busy.set(true);
            error.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                match mykey_sdk::card::connect(k, js_sys::Object::new().into()).await {
                    Ok(mut b) => {
                        let t = b.pin_tries_left().await.map(|v| js_json(&v));
                        *bridge.borrow_mut() = Some(b);
                        kind.set(k.to_owned());
                        match t {
                            Ok(t) => {
                                tries.set(Some(t));
                                step.set(Step::Pin);
                            }
                            Err(e) => error.set(Some(card_message(&ctx, &e))),
                        }
                    }
                    Err(e) => error.set(Some(card_message(&ctx, &e))),
                }
                busy.set(false);
            });
        })
    };

    let read_card = {
        let (ctx, step, bridge, tries, pin, error, busy, reg) = (
            ctx.clone(),
            step.clone(),
            bridge.clone(),
            tries.clone(),
            pin.clone(),
            error.clone(),
            busy.clone(),
            reg.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if mykey_core::card::jpki::Pin::parse(&pin).is_err() {
                error.set(Some(ctx.t(T::pin_format).to_owned()));
                return;
            }
            let (ctx, step, bridge, tries, pin, error, busy, reg) = (
                ctx.clone(),
                step.clone(),
                bridge.clone(),
                tries.clone(),
                (*pin).clone(),
                error.clone(),
                busy.clone(),
                reg.clone(),
            );
            busy.set(true);
            error.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                let result: Result<Value, String> = async {
                    let nonce: Value =
                        api::post("/v1/auth/nonce", &json!({})).await.map_err(|f| failure_message(&ctx, &f))?;
                    let nonce = nonce["nonce"].as_str().unwrap_or_default().to_owned();
                    let mut b = bridge.borrow_mut().take().ok_or_else(|| ctx.t(T::server_error).to_owned())?;
                    let token = b.authenticate(nonce.clone(), pin).await;
                    let t = b.pin_tries_left().await.map(|v| js_json(&v)).ok();
                    *bridge.borrow_mut() = Some(b);
                    if let Some(t) = t {
                        tries.set(Some(t));
                    }
                    let token = token.map_err(|e| card_message(&ctx, &e))?;
                    api::post("/v1/auth/card", &json!({ "nonce": nonce, "token": js_json(&token) }))
                        .await
                        .map_err(|f| failure_message(&ctx, &f))
                }
                .await;
                match result {
                    Ok(login) => match login["mykey_id"].as_str() {
                        Some(id) => step.set(Step::Already(id.to_owned())),
                        None => {
                            reg.set(serde_json::from_value(login["registration"].clone()).ok());
                            step.set(Step::Candidate);
                        }
                    },
                    Err(m) => error.set(Some(m)),
                }
                busy.set(false);
            });
        })
    };

    let candidate_call = {
        let (ctx, reg, error, notice, busy) = (ctx.clone(), reg.clone(), error.clone(), notice.clone(), busy.clone());
        move |body: Value| {
            let (ctx, reg, error, notice, busy) =
                (ctx.clone(), reg.clone(), error.clone(), notice.clone(), busy.clone());
            busy.set(true);
            error.set(None);
            notice.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<Registration>("/v1/registration/candidates", &body).await {
                    Ok(r) => {
                        if body["action"] == "check" {
                            notice.set(Some(ctx.t(T::available).to_owned()));
                        }
                        reg.set(Some(r));
                    }
                    Err(f) => {
                        if let Ok(r) = serde_json::from_value::<Registration>(f.body["registration"].clone()) {
                            if f.slug == "mykey-id-taken" && r.failed_checks == 3 {
                                notice.set(Some(ctx.t(T::taken_generated).to_owned()));
                            }
                            reg.set(Some(r));
                        }
                        error.set(Some(failure_message(&ctx, &f)));
                    }
                }
                busy.set(false);
            });
        }
    };
    let generate = {
        let candidate_call = candidate_call.clone();
        Callback::from(move |_| candidate_call(json!({ "action": "generate" })))
    };
    let check = {
        let (ctx, own, error) = (ctx.clone(), own.clone(), error.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if MykeyId::parse(&own).is_err() {
                error.set(Some(ctx.t(T::err_invalid_id).to_owned()));
                return;
            }
            candidate_call(json!({ "action": "check", "candidate": *own }));
        })
    };

    let register = {
        let (ctx, step, reg, form, error, busy) =
            (ctx.clone(), step.clone(), reg.clone(), form.clone(), error.clone(), busy.clone());
        Callback::from(move |_| {
            let f = (*form).clone();
            let candidate = reg.as_ref().and_then(|r| r.candidate.clone()).map(|c| c.to_string()).unwrap_or_default();
            let email = (!f.email.is_empty()).then(|| f.email.clone());
            let body = json!({
                "candidate": candidate,
                "password": f.password,
                "password_confirmation": f.password2,
                "email": email,
                "email_confirmation": (!f.email2.is_empty()).then(|| f.email2.clone()),
                "notices": {
                    "points_granted": f.notices[0], "points_expired": f.notices[1],
                    "settings_changed": f.notices[2], "mykey_id_changed": f.notices[3],
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
        let (step, error, notice) = (step.clone(), error.clone(), notice.clone());
        Callback::from(move |_| {
            error.set(None);
            notice.set(None);
            step.set(s.clone());
        })
    };

    let alert = error.as_ref().map(|m| html! { <p class="error" role="alert" id="step-error">{ m }</p> });
    let status = notice.as_ref().map(|m| html! { <p class="notice" role="status">{ m }</p> });

    let body = match &*step {
        Step::Card => {
            let items = bridges.as_ref().and_then(|v| v.as_array().cloned()).unwrap_or_default();
            let button = |k: &'static str, label: T| {
                let available = items.iter().any(|b| b["kind"] == k && b["available"] == true);
                html! {
                    <li>
                        <button type="button" class={if k == "virtual" { "demo" } else { "" }} disabled={!available || *busy}
                            onclick={choose(k)} id={format!("bridge-{k}")}>{ ctx.t(label) }</button>
                        if !available { <span class="muted">{ format!(" ({})", ctx.t(T::bridge_unavailable)) }</span> }
                    </li>
                }
            };
            html! {
                <section aria-labelledby="step-title">
                    <h2 id="step-title">{ ctx.t(T::card_step) }</h2>
                    if bridges.is_none() { <p role="status">{ ctx.t(T::loading) }</p> }
                    <ul class="choices">
                        { button("native-messaging", T::bridge_native) }
                        { button("webusb", T::bridge_webusb) }
                        { button("virtual", T::bridge_virtual) }
                    </ul>
                </section>
            }
        }
        Step::Pin => {
            let left = tries.as_ref().map(|t| match t["status"].as_str() {
                Some("left") => t["left"].to_string(),
                Some("blocked") => ctx.t(T::pin_blocked).to_owned(),
                _ => "-".to_owned(),
            });
            let on_pin = {
                let pin = pin.clone();
                Callback::from(move |e: InputEvent| pin.set(input_value(&e)))
            };
            html! {
                <section aria-labelledby="step-title">
                    <h2 id="step-title">{ ctx.t(T::pin_step) }</h2>
                    if *kind == "virtual" { <p class="demo-label">{ ctx.t(T::demo_pin) }</p> }
                    <p>{ ctx.t(T::pin_hint) }</p>
                    if let Some(left) = left { <p id="tries">{ format!("{}: {left}", ctx.t(T::tries_left)) }</p> }
                    <form onsubmit={read_card}>
                        <label for="pin">{ ctx.t(T::pin_label) }</label>
                        <input id="pin" type="password" inputmode="numeric" autocomplete="off" maxlength="4"
                            aria-describedby="tries step-error" aria-invalid={error.is_some().to_string()}
                            value={(*pin).clone()} oninput={on_pin} />
                        { alert.clone() }
                        <div class="actions">
                            <button type="button" onclick={to(Step::Card)}>{ ctx.t(T::back) }</button>
                            <button type="submit" class="primary" disabled={*busy}>{ ctx.t(T::read_card) }</button>
                        </div>
                    </form>
                </section>
            }
        }
        Step::Candidate => {
            let r = reg.as_ref().cloned().unwrap_or(Registration {
                candidate: None,
                candidate_final: false,
                generations_left: 3,
                failed_checks: 0,
            });
            let on_own = {
                let own = own.clone();
                Callback::from(move |e: InputEvent| own.set(input_value(&e)))
            };
            html! {
                <section aria-labelledby="step-title">
                    <h2 id="step-title">{ ctx.t(T::candidate_step) }</h2>
                    <p>{ ctx.t(T::candidate_rule) }</p>
                    if let Some(c) = &r.candidate {
                        <p class="candidate">{ ctx.t(T::candidate_now) }{ "：" }<strong id="candidate">{ c.to_string() }</strong></p>
                    }
                    if r.candidate_final { <p class="notice">{ ctx.t(T::final_candidate) }</p> }
                    { status.clone() }
                    <div class="actions">
                        <button type="button" id="generate" onclick={generate} disabled={*busy || r.candidate_final}>
                            { format!("{}（{} {}）", ctx.t(T::generate), ctx.t(T::generations_left), r.generations_left) }
                        </button>
                    </div>
                    if !r.candidate_final {
                        <form onsubmit={check} class="field">
                            <label for="own">{ ctx.t(T::own_choice) }</label>
                            <div class="inline">
                                <input id="own" type="text" maxlength="8" autocomplete="off" autocapitalize="characters"
                                    aria-describedby="step-error" aria-invalid={error.is_some().to_string()}
                                    value={(*own).clone()} oninput={on_own} />
                                <button type="submit" disabled={*busy}>{ ctx.t(T::check) }</button>
                            </div>
                        </form>
                    }
                    { alert.clone() }
                    <div class="actions">
                        <button type="button" class="primary" id="to-form" onclick={to(Step::Form)} disabled={r.candidate.is_none()}>
                            { ctx.t(T::next) }
                        </button>
                    </div>
                </section>
            }
        }
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
            let chosen: Vec<&str> = [T::notice_granted, T::notice_expired, T::notice_settings, T::notice_id]
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
                        <dd>{ reg.as_ref().and_then(|r| r.candidate.clone()).map(|c| c.to_string()).unwrap_or_default() }</dd>
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
                let go = ctx.go.clone();
                Callback::from(move |_| go.emit(Route::MyPage))
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
            if !matches!(*step, Step::Pin | Step::Candidate | Step::Form | Step::Confirm) { { alert } }
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

type Municipalities = UseStateHandle<Option<Result<Vec<crate::top::Municipality>, Failure>>>;

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
