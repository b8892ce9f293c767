//! The card steps shared by MyKey ID creation and my page: choose how to reach the card (the
//! demo's virtual card labelled as such), type the PIN with the tries left shown, and send the
//! signed challenge to the server; and the candidate dialogue ([`MAX_GENERATIONS`] generations, the last
//! final, or an own choice checked for duplicates) for a new or a changed MyKey ID.

use std::cell::RefCell;
use std::rc::Rc;

use mykey_core::identity::{CardPurpose, NonceRequest, Registration};
use mykey_core::MykeyId;
use mykey_sdk::card::CardBridge;
use serde_json::{json, Value};
use wasm_bindgen::JsValue;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::api::{self, Failure};
use crate::i18n::T;
use crate::Ctx;

/// A JS value as JSON.
pub fn js_json(v: &JsValue) -> Value {
    js_sys::JSON::stringify(v)
        .ok()
        .and_then(|s| s.as_string())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

/// A card bridge error (`code`, `triesLeft`, `message`) in the resident's words.
pub fn card_message(ctx: &Ctx, e: &JsValue) -> String {
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
        "not_allowed" => ctx.t(T::err_card_not_allowed).to_owned(),
        "no_reader" => format!("{}{message}", ctx.t(T::err_no_reader)),
        _ => message,
    }
}

/// A refusal of the identity API in the resident's words.
pub fn failure_message(ctx: &Ctx, f: &Failure) -> String {
    match f.slug.as_str() {
        "mykey-id-taken" => ctx.t(T::err_taken).to_owned(),
        "invalid-mykey-id" => ctx.t(T::err_invalid_id).to_owned(),
        "candidates-used-up" => ctx.t(T::err_used_up).to_owned(),
        "card-rejected" => format!("{}{}", ctx.t(T::err_card_rejected), f.detail),
        "card-already-bound" => ctx.t(T::err_card_bound).to_owned(),
        "login-failed" => ctx.t(T::err_current_password).to_owned(),
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

/// What an input holds.
pub fn input_value(e: &InputEvent) -> String {
    e.target_unchecked_into::<HtmlInputElement>().value()
}

/// A heading of the given level (2 on a page of steps, 3 inside a section of my page).
fn heading(level: u8, text: &str) -> Html {
    let tag = if level <= 2 { "h2" } else { "h3" };
    html! { <@{tag} id="step-title">{ text.to_owned() }</@> }
}

/// What a resident's own page reads the card for: each is one challenge purpose and the one
/// endpoint that takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardUse {
    /// Log in, or start creating a MyKey ID.
    Login,
    /// Bind a renewed card to the MyKey ID.
    Rebind,
}

impl CardUse {
    fn purpose(self) -> CardPurpose {
        match self {
            CardUse::Login => CardPurpose::Login,
            CardUse::Rebind => CardPurpose::Rebind,
        }
    }

    fn submit(self) -> &'static str {
        match self {
            CardUse::Login => "/v1/auth/card",
            CardUse::Rebind => "/v1/me/card",
        }
    }
}

/// Properties of [`CardReader`].
#[derive(Properties, PartialEq)]
pub struct CardReaderProps {
    /// What the card signs for, and so where the signed challenge goes.
    pub card_use: CardUse,
    /// The server's answer.
    pub on_answer: Callback<Value>,
    /// Heading level of the two steps.
    #[prop_or(2)]
    pub level: u8,
    /// Id of the error message (unique on the page).
    #[prop_or(AttrValue::Static("step-error"))]
    pub error_id: AttrValue,
    /// More fields sent with the token (re-binding sends the password).
    #[prop_or_default]
    pub extra: Option<Value>,
}

/// Choose a bridge, then the PIN: the card signs a fresh server nonce for `card_use` and the
/// token goes to its endpoint.
#[function_component(CardReader)]
pub fn card_reader(p: &CardReaderProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let at_pin = use_state(|| false);
    let bridges = use_state(|| None::<Value>);
    let bridge: Rc<RefCell<Option<CardBridge>>> = use_mut_ref(|| None);
    let kind = use_state(String::new);
    let tries = use_state(|| None::<Value>);
    let pin = use_state(String::new);
    let error = use_state(|| None::<String>);
    let busy = use_state(|| false);
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
        let (ctx, at_pin, bridge, kind, tries, error, busy) =
            (ctx.clone(), at_pin.clone(), bridge.clone(), kind.clone(), tries.clone(), error.clone(), busy.clone());
        Callback::from(move |_| {
            let (ctx, at_pin, bridge, kind, tries, error, busy) =
                (ctx.clone(), at_pin.clone(), bridge.clone(), kind.clone(), tries.clone(), error.clone(), busy.clone());
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
                                at_pin.set(true);
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
        let (ctx, bridge, tries, pin, error, busy, card_use, on_answer) = (
            ctx.clone(),
            bridge.clone(),
            tries.clone(),
            pin.clone(),
            error.clone(),
            busy.clone(),
            p.card_use,
            p.on_answer.clone(),
        );
        let extra = p.extra.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if mykey_core::card::jpki::Pin::parse(&pin).is_err() {
                error.set(Some(ctx.t(T::pin_format).to_owned()));
                return;
            }
            let (ctx, bridge, tries, pin, error, busy, card_use, on_answer) = (
                ctx.clone(),
                bridge.clone(),
                tries.clone(),
                (*pin).clone(),
                error.clone(),
                busy.clone(),
                card_use,
                on_answer.clone(),
            );
            let extra = extra.clone();
            busy.set(true);
            error.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                let result: Result<Value, String> = async {
                    let nonce: Value = api::post("/v1/auth/nonce", &NonceRequest { purpose: card_use.purpose() })
                        .await
                        .map_err(|f| failure_message(&ctx, &f))?;
                    let nonce = nonce["nonce"].as_str().unwrap_or_default().to_owned();
                    let mut b = bridge.borrow_mut().take().ok_or_else(|| ctx.t(T::server_error).to_owned())?;
                    let token = b.authenticate(nonce.clone(), pin, None).await;
                    let t = b.pin_tries_left().await.map(|v| js_json(&v)).ok();
                    *bridge.borrow_mut() = Some(b);
                    if let Some(t) = t {
                        tries.set(Some(t));
                    }
                    let token = token.map_err(|e| card_message(&ctx, &e))?;
                    let mut body = json!({ "nonce": nonce, "token": js_json(&token) });
                    if let (Some(Value::Object(more)), Value::Object(b)) = (extra, &mut body) {
                        b.extend(more);
                    }
                    api::post(card_use.submit(), &body).await.map_err(|f| failure_message(&ctx, &f))
                }
                .await;
                busy.set(false);
                match result {
                    Ok(answer) => on_answer.emit(answer),
                    Err(m) => error.set(Some(m)),
                }
            });
        })
    };
    let alert = error.as_ref().map(|m| html! { <p class="error" role="alert" id={p.error_id.clone()}>{ m }</p> });
    if !*at_pin {
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
        return html! {
            <>
                { heading(p.level, ctx.t(T::card_step)) }
                if bridges.is_none() { <p role="status">{ ctx.t(T::loading) }</p> }
                <ul class="choices">
                    { button("native-messaging", T::bridge_native) }
                    { button("webusb", T::bridge_webusb) }
                    { button("virtual", T::bridge_virtual) }
                </ul>
                { alert }
            </>
        };
    }
    let left = tries.as_ref().map(|t| match t["status"].as_str() {
        Some("left") => t["left"].to_string(),
        Some("blocked") => ctx.t(T::pin_blocked).to_owned(),
        _ => "-".to_owned(),
    });
    let on_pin = {
        let pin = pin.clone();
        Callback::from(move |e: InputEvent| pin.set(input_value(&e)))
    };
    let back = {
        let (at_pin, error) = (at_pin.clone(), error.clone());
        Callback::from(move |_| {
            error.set(None);
            at_pin.set(false);
        })
    };
    html! {
        <>
            { heading(p.level, ctx.t(T::pin_step)) }
            if *kind == "virtual" { <p class="demo-label">{ ctx.t(T::demo_pin) }</p> }
            <p>{ ctx.t(T::pin_hint) }</p>
            if let Some(left) = left { <p id="tries">{ format!("{}: {left}", ctx.t(T::tries_left)) }</p> }
            <form onsubmit={read_card}>
                <label for="pin">{ ctx.t(T::pin_label) }</label>
                <input id="pin" type="password" inputmode="numeric" autocomplete="off" maxlength="4"
                    aria-describedby={format!("tries {}", p.error_id)} aria-invalid={error.is_some().to_string()}
                    value={(*pin).clone()} oninput={on_pin} />
                { alert }
                <div class="actions">
                    <button type="button" onclick={back}>{ ctx.t(T::back) }</button>
                    <button type="submit" class="primary" disabled={*busy}>{ ctx.t(T::read_card) }</button>
                </div>
            </form>
        </>
    }
}

/// Properties of [`CandidatePicker`].
#[derive(Properties, PartialEq)]
pub struct CandidatePickerProps {
    /// `/v1/registration/candidates` or `/v1/me/candidates`.
    pub endpoint: AttrValue,
    /// Where the dialogue stands.
    pub reg: Registration,
    /// A new state of the dialogue.
    pub on_reg: Callback<Registration>,
}

/// The candidate on offer, "generate" with the generations left, and an own choice checked
/// for duplicates (three failed checks bring a generated candidate).
#[function_component(CandidatePicker)]
pub fn candidate_picker(p: &CandidatePickerProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let own = use_state(String::new);
    let error = use_state(|| None::<String>);
    let notice = use_state(|| None::<String>);
    let busy = use_state(|| false);
    let call = {
        let (ctx, error, notice, busy, endpoint, on_reg) =
            (ctx.clone(), error.clone(), notice.clone(), busy.clone(), p.endpoint.clone(), p.on_reg.clone());
        move |body: Value| {
            let (ctx, error, notice, busy, endpoint, on_reg) =
                (ctx.clone(), error.clone(), notice.clone(), busy.clone(), endpoint.clone(), on_reg.clone());
            busy.set(true);
            error.set(None);
            notice.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<Registration>(&endpoint, &body).await {
                    Ok(r) => {
                        if body["action"] == "check" {
                            notice.set(Some(ctx.t(T::available).to_owned()));
                        }
                        on_reg.emit(r);
                    }
                    Err(f) => {
                        if let Ok(r) = serde_json::from_value::<Registration>(f.body["registration"].clone()) {
                            if f.slug == "mykey-id-taken" && r.failed_checks == 3 {
                                notice.set(Some(ctx.t(T::taken_generated).to_owned()));
                            }
                            on_reg.emit(r);
                        }
                        error.set(Some(failure_message(&ctx, &f)));
                    }
                }
                busy.set(false);
            });
        }
    };
    let generate = {
        let call = call.clone();
        Callback::from(move |_| call(json!({ "action": "generate" })))
    };
    let check = {
        let (ctx, own, error) = (ctx.clone(), own.clone(), error.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if MykeyId::parse(&own).is_err() {
                error.set(Some(ctx.t(T::err_invalid_id).to_owned()));
                return;
            }
            call(json!({ "action": "check", "candidate": *own }));
        })
    };
    let on_own = {
        let own = own.clone();
        Callback::from(move |e: InputEvent| own.set(input_value(&e)))
    };
    let r = &p.reg;
    html! {
        <>
            <p>{ ctx.t(T::candidate_rule) }</p>
            if let Some(c) = &r.candidate {
                <p class="candidate">{ ctx.t(T::candidate_now) }{ "：" }<strong id="candidate">{ c.to_string() }</strong></p>
            }
            if r.candidate_final { <p class="notice">{ ctx.t(T::final_candidate) }</p> }
            if let Some(m) = &*notice { <p class="notice" role="status">{ m }</p> }
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
            if let Some(m) = &*error { <p class="error" role="alert" id="step-error">{ m }</p> }
        </>
    }
}

/// The dialogue before the first step.
pub fn fresh_registration() -> Registration {
    Registration {
        candidate: None,
        candidate_final: false,
        generations_left: mykey_core::identity::MAX_GENERATIONS,
        failed_checks: 0,
    }
}
