//! My page: log in with the MyKey ID and password (or the card), then one sub-page at a time
//! behind my page's own navigation (`router::MyRoute`): balances, the points history, coupons
//! and reserved points, linked IDs and facilities, notices and password, the MyKey ID and the
//! card.

use chrono::{DateTime, Utc};
use mykey_core::api::{AccountKind, AccountView, Directory, Municipality, OnlineService, Partner, ResidentBalances};
use mykey_core::identity::{PatronLink, Profile, ServiceLink, UsageEvent};
use serde_json::{json, Value};
use web_sys::HtmlInputElement;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::api;
use crate::api::directory::use_municipalities;
use crate::components::card::{CardReader, CardUse};
use crate::i18n::T;
use crate::router::MyRoute;
use crate::Ctx;

mod balances;
mod card_id;
mod coupons;
mod history;
mod links;
mod settings;
mod vouchers;

/// A fresh idempotency id: a version 4 UUID from the browser's random numbers
/// (`crypto.getRandomValues`, which unlike `randomUUID` works on any origin).
pub fn new_id() -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
    assert!(filled, "every browser the app supports has crypto.getRandomValues");
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// What my page shows once logged in.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// The MyKey ID and its settings.
    profile: Profile,
    /// The resident's accounts (none when they could not be read).
    balances: Option<ResidentBalances>,
    /// The MyKey ID's usage history, newest first.
    history: Vec<UsageEvent>,
    /// Linked partner and online-service IDs.
    links: Vec<ServiceLink>,
    /// Every partner (to name links and offer ID linkage).
    partners: Vec<Partner>,
    /// Every online service (to name links).
    online: Vec<OnlineService>,
    /// Linked facilities' patron numbers.
    patrons: Vec<PatronLink>,
    /// Standing mandates granted to online stores, newest first.
    mandates: Vec<mykey_core::api::ResidentMandate>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum State {
    Loading,
    LoggedOut,
    In(Box<Loaded>),
}

pub async fn load() -> State {
    let Ok(profile) = api::get::<Profile>("/v1/me").await else { return State::LoggedOut };
    let resident = profile.resident;
    let balances = api::get::<ResidentBalances>(&format!("/v1/residents/{resident}/balances")).await.ok();
    let history = api::get::<Vec<UsageEvent>>("/v1/me/history").await.unwrap_or_default();
    let links = api::get::<Vec<ServiceLink>>("/v1/me/service-links").await.unwrap_or_default();
    let partners = api::get::<Vec<Partner>>("/v1/partners").await.unwrap_or_default();
    let online = api::get::<Directory>("/v1/directory").await.map(|d| d.online_services).unwrap_or_default();
    let patrons = api::get::<Vec<PatronLink>>("/v1/me/patron-links").await.unwrap_or_default();
    let mandates = api::get::<Vec<mykey_core::api::ResidentMandate>>("/v1/me/mandates").await.unwrap_or_default();
    State::In(Box::new(Loaded { profile, balances, history, links, partners, online, patrons, mandates }))
}

/// The municipalities taking part, once loaded (my page loads them once for every sub-page).
pub type Municipalities = UseStateHandle<Option<Result<Vec<Municipality>, api::Failure>>>;

/// What every sub-page gets: where my page stands, to read it and to reload it.
#[derive(Properties, PartialEq)]
pub struct SubProps {
    /// My page's state (logged in).
    pub state: UseStateHandle<State>,
    /// The municipalities taking part, to name accounts and choose where points go.
    pub municipalities: Municipalities,
}

impl SubProps {
    /// The municipalities, empty until they have loaded.
    pub fn municipality_list(&self) -> Vec<Municipality> {
        self.municipalities.as_ref().and_then(|r| r.as_ref().ok()).cloned().unwrap_or_default()
    }
}

/// Reloads my page's state.
pub fn reload(state: &UseStateHandle<State>) {
    let state = state.clone();
    wasm_bindgen_futures::spawn_local(async move { state.set(load().await) });
}

/// An account as the resident knows it: its kind and, for municipal and event points, the
/// municipality (`municipal:12` as its prefecture and name).
pub fn account_label(ctx: &Ctx, municipalities: &[Municipality], account: &AccountView) -> String {
    let kind = match account.kind {
        AccountKind::Reserved => ctx.t(T::kind_reserved),
        AccountKind::Event => ctx.t(T::kind_event),
        _ => ctx.t(T::kind_municipal),
    };
    let place = account
        .currency
        .municipality()
        .and_then(|id| municipalities.iter().find(|m| m.id == id))
        .map(|m| format!("（{} {}）", m.prefecture, m.name))
        .unwrap_or_default();
    format!("{kind} {place}")
}

/// The label of a sub-page in my page's navigation.
fn label(route: MyRoute) -> T {
    match route {
        MyRoute::Balances | MyRoute::NotFound => T::my_balances,
        MyRoute::History => T::my_history,
        MyRoute::Coupons => T::my_coupons,
        MyRoute::Links => T::my_links,
        MyRoute::Settings => T::my_settings,
        MyRoute::CardAndId => T::my_card_id,
    }
}

#[function_component(MyPage)]
pub fn my_page() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let route = use_route::<MyRoute>().unwrap_or(MyRoute::Balances);
    let state = use_state(|| State::Loading);
    let municipalities = use_municipalities();
    let id = use_state(String::new);
    let password = use_state(String::new);
    let error = use_state(|| None::<String>);
    {
        // Each sub-page shows what is true now: points arrive from partners and shops meanwhile.
        let state = state.clone();
        use_effect_with(route, move |_| wasm_bindgen_futures::spawn_local(async move { state.set(load().await) }));
    }
    {
        // Coupon links printed before my page had sub-pages name `/app/mypage?coupon=`.
        let navigator = use_navigator().expect("inside the router");
        use_effect_with(route, move |route| {
            if *route == MyRoute::Balances {
                if let Some(code) = coupons::coupon_from_url() {
                    let _ = navigator.replace_with_query(&MyRoute::Coupons, &[("coupon", code)]);
                }
            }
        });
    }
    let login = {
        let (ctx, state, id, password, error) =
            (ctx.clone(), state.clone(), id.clone(), password.clone(), error.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (ctx, state, error) = (ctx.clone(), state.clone(), error.clone());
            let body = json!({ "mykey_id": *id, "password": *password });
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<Value>("/v1/auth/password", &body).await {
                    Ok(_) => {
                        error.set(None);
                        state.set(load().await);
                    }
                    Err(f) => error.set(Some(match f.slug.as_str() {
                        "login-failed" => ctx.t(T::err_login_failed).to_owned(),
                        "rate-limited" => ctx.t(T::err_rate_limited).to_owned(),
                        _ => ctx.t(T::server_error).to_owned(),
                    })),
                }
            });
        })
    };
    let logout = {
        let state = state.clone();
        Callback::from(move |_| {
            let state = state.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let _ = api::post::<Value>("/v1/auth/logout", &json!({})).await;
                state.set(State::LoggedOut);
            });
        })
    };
    let field = |el: &'static str, label: T, kind: &'static str, h: &UseStateHandle<String>| {
        let h2 = h.clone();
        let oninput =
            Callback::from(move |e: InputEvent| h2.set(e.target_unchecked_into::<HtmlInputElement>().value()));
        let auto = if kind == "password" { "current-password" } else { "username" };
        html! {
            <div class="field">
                <label for={el}>{ ctx.t(label) }</label>
                <input id={el} type={kind} autocomplete={auto} value={(**h).clone()} oninput={oninput}
                    aria-describedby="login-error" aria-invalid={error.is_some().to_string()} />
            </div>
        }
    };
    let body = match &*state {
        State::Loading => html! { <p role="status">{ ctx.t(T::loading) }</p> },
        State::LoggedOut => html! {
            <>
            <section aria-labelledby="login-title">
                <h2 id="login-title">{ ctx.t(T::login_title) }</h2>
                <form onsubmit={login}>
                    { field("login-id", T::mykey_id, "text", &id) }
                    { field("login-password", T::password, "password", &password) }
                    if let Some(m) = &*error { <p class="error" role="alert" id="login-error">{ m }</p> }
                    <button type="submit" class="primary">{ ctx.t(T::login) }</button>
                </form>
            </section>
            <CardAction id="card-login" title={T::card_login_title} hint={None::<T>} button={T::card_login}
                card_use={CardUse::Login} answer={{
                    let (ctx, state) = (ctx.clone(), state.clone());
                    Callback::from(move |login: Value| {
                        if !login["mykey_id"].is_string() {
                            return (false, ctx.t(T::err_card_no_id).to_owned());
                        }
                        let state = state.clone();
                        wasm_bindgen_futures::spawn_local(async move { state.set(load().await) });
                        (true, String::new())
                    })
                }} />
            </>
        },
        State::In(loaded) => {
            let page = match route {
                MyRoute::Balances | MyRoute::NotFound => {
                    html! { <balances::Balances state={state.clone()} municipalities={municipalities.clone()} /> }
                }
                MyRoute::History => {
                    html! { <history::History state={state.clone()} municipalities={municipalities.clone()} /> }
                }
                MyRoute::Coupons => {
                    html! { <coupons::Coupons state={state.clone()} municipalities={municipalities.clone()} /> }
                }
                MyRoute::Links => {
                    html! { <links::Links state={state.clone()} municipalities={municipalities.clone()} /> }
                }
                MyRoute::Settings => {
                    html! { <settings::Settings state={state.clone()} municipalities={municipalities.clone()} /> }
                }
                MyRoute::CardAndId => {
                    html! { <card_id::CardAndId state={state.clone()} municipalities={municipalities.clone()} /> }
                }
            };
            let here = if route == MyRoute::NotFound { MyRoute::Balances } else { route };
            html! {
                <>
                    <p class="candidate">{ ctx.t(T::mykey_id) }{ "：" }<strong id="me-id">{ loaded.profile.mykey_id.to_string() }</strong></p>
                    {
                        // A card that no longer holds: password login still works; ask for the renewed one.
                        match loaded.profile.card_state {
                            mykey_core::identity::CardState::Valid => html! {},
                            state => html! {
                                <p class="warning" id="card-state" role="status">
                                    { ctx.t(if state == mykey_core::identity::CardState::Expired { T::card_expired } else { T::card_revoked }) }
                                    { " " }<Link<MyRoute> to={MyRoute::CardAndId}>{ ctx.t(T::rebind_title) }</Link<MyRoute>>
                                </p>
                            },
                        }
                    }
                    <nav class="subnav" aria-label={ctx.t(T::my_nav)}>
                        <ul>
                            { for MyRoute::ALL.iter().map(|r| html! {
                                <li>
                                    <Link<MyRoute> to={*r}>
                                        <span aria-current={(*r == here).then_some("page")}>{ ctx.t(label(*r)) }</span>
                                    </Link<MyRoute>>
                                </li>
                            }) }
                        </ul>
                    </nav>
                    { page }
                    <button type="button" id="logout" onclick={logout}>{ ctx.t(T::logout) }</button>
                </>
            }
        }
    };
    html! {
        <>
            <h1>{ ctx.t(T::mypage_title) }</h1>
            { body }
        </>
    }
}

/// A form's message: (success, text).
pub type Msg = UseStateHandle<Option<(bool, String)>>;

/// A form's message, announced to screen readers.
pub fn message(m: &Msg, id: &str) -> Html {
    match &**m {
        Some((true, text)) => html! { <p class="notice" role="status" id={id.to_owned()}>{ text }</p> },
        Some((false, text)) => html! { <p class="error" role="alert" id={id.to_owned()}>{ text }</p> },
        None => html! {},
    }
}

/// The logged-in resident.
pub fn resident_of(state: &State) -> i64 {
    match state {
        State::In(loaded) => loaded.profile.resident,
        _ => 0,
    }
}

/// A time as a date in Japan (where the points are used).
pub fn date(ctx: &Ctx, at: DateTime<Utc>) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at.timestamp_millis() as f64));
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"timeZone".into(), &"Asia/Tokyo".into());
    let locale = if ctx.lang == crate::i18n::Lang::Ja { "ja-JP" } else { "en-GB" };
    String::from(d.to_locale_date_string(locale, &options))
}

/// A labelled text input of `kind` (`email`, `password`) bound to `h`, described by the form's
/// message `msg_id`.
pub fn input_field(
    ctx: &Ctx,
    (id, label): (&str, T),
    (kind, autocomplete): (&'static str, &'static str),
    msg_id: &str,
    h: &UseStateHandle<String>,
) -> Html {
    let (id, msg_id) = (AttrValue::from(id.to_owned()), AttrValue::from(msg_id.to_owned()));
    let oninput = {
        let h = h.clone();
        Callback::from(move |e: InputEvent| h.set(e.target_unchecked_into::<HtmlInputElement>().value()))
    };
    html! {
        <div class="field">
            <label for={id.clone()}>{ ctx.t(label) }</label>
            <input id={id} type={kind} autocomplete={autocomplete} value={(**h).clone()}
                oninput={oninput} aria-describedby={msg_id} />
        </div>
    }
}

/// The current password, typed again to confirm a change (`id`'s message is `msg_id`).
pub fn current_password_field(ctx: &Ctx, id: &str, msg_id: &str, h: &UseStateHandle<String>) -> Html {
    input_field(ctx, (id, T::current_password), ("password", "current-password"), msg_id, h)
}

#[derive(Properties, PartialEq)]
pub struct CardActionProps {
    /// Ids of the section's elements start with it (`rebind`, `card-login`).
    id: &'static str,
    title: T,
    hint: Option<T>,
    button: T,
    /// What the card signs for (and so where its token goes).
    card_use: CardUse,
    /// The server's answer to the message shown (`true` for good news).
    answer: Callback<Value, (bool, String)>,
    /// Ask for the current password too, sent with the card's token.
    #[prop_or(false)]
    password: bool,
}

/// A section where the card is read for one purpose: logging in with it, or re-binding the
/// MyKey ID to a renewed card (its certificate replaces the old one).
#[function_component(CardAction)]
pub fn card_action(p: &CardActionProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let open = use_state(|| false);
    let msg = use_state(|| None::<(bool, String)>);
    let start = {
        let (open, msg) = (open.clone(), msg.clone());
        Callback::from(move |_| {
            msg.set(None);
            open.set(true);
        })
    };
    let on_answer = {
        let (open, msg, answer) = (open.clone(), msg.clone(), p.answer.clone());
        Callback::from(move |v: Value| {
            open.set(false);
            msg.set(Some(answer.emit(v)));
        })
    };
    let password = use_state(String::new);
    let title_id = format!("{}-title", p.id);
    let (password_id, msg_id) = (format!("{}-password", p.id), format!("{}-msg", p.id));
    let extra = p.password.then(|| serde_json::json!({ "password": *password }));
    html! {
        <section aria-labelledby={title_id.clone()}>
            <h2 id={title_id}>{ ctx.t(p.title) }</h2>
            if let Some(hint) = p.hint { <p>{ ctx.t(hint) }</p> }
            if *open {
                if p.password { { current_password_field(&ctx, &password_id, &msg_id, &password) } }
                <CardReader card_use={p.card_use} level={3} error_id={format!("{}-error", p.id)} on_answer={on_answer} extra={extra} />
            } else {
                <button type="button" id={p.id} onclick={start}>{ ctx.t(p.button) }</button>
            }
            { message(&msg, &format!("{}-msg", p.id)) }
        </section>
    }
}
