//! My page: log in with the MyKey ID and password (or arrive logged in from the card), the
//! balances per kind and municipality with their next expiry, the points history with filters,
//! coupons, assigning reserved points, service links, settings, password, changing or revoking
//! the MyKey ID, re-binding a renewed card, and the MyKey ID's usage history.

use mykey_core::coupon::{CouponCode, CouponError};
use mykey_core::identity::Registration;
use serde_json::{json, Value};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::api;
use crate::card::{failure_message, fresh_registration, CandidatePicker, CardReader};
use crate::i18n::T;
use crate::top::{by_prefecture, use_municipalities};
use crate::Ctx;

/// `?coupon=` of a coupon link (URL delivery).
fn coupon_from_url() -> String {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|s| web_sys::UrlSearchParams::new_with_str(&s).ok())
        .and_then(|p| p.get("coupon"))
        .unwrap_or_default()
}

fn new_id() -> String {
    web_sys::window().and_then(|w| w.crypto().ok()).map(|c| c.random_uuid()).unwrap_or_default()
}

/// What my page shows once logged in.
#[derive(Clone, Debug, PartialEq)]
struct Loaded {
    profile: Value,
    balances: Value,
    history: Value,
    links: Value,
    partners: Value,
    online: Value,
    patrons: Value,
}

#[derive(Clone, Debug, PartialEq)]
enum State {
    Loading,
    LoggedOut,
    In(Box<Loaded>),
}

async fn load() -> State {
    let Ok(profile) = api::get::<Value>("/v1/me").await else { return State::LoggedOut };
    let resident = profile["resident"].as_i64().unwrap_or_default();
    let balances = api::get::<Value>(&format!("/v1/residents/{resident}/balances")).await.unwrap_or_default();
    let history = api::get::<Value>("/v1/me/history").await.unwrap_or_default();
    let links = api::get::<Value>("/v1/me/service-links").await.unwrap_or_default();
    let partners = api::get::<Value>("/v1/partners").await.unwrap_or_default();
    let online = api::get::<Value>("/v1/directory").await.map(|d| d["online_services"].clone()).unwrap_or_default();
    let patrons = api::get::<Value>("/v1/me/patron-links").await.unwrap_or_default();
    State::In(Box::new(Loaded { profile, balances, history, links, partners, online, patrons }))
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
        "facility_linked" => T::ev_facility_linked,
        "facility_lookup" => T::ev_facility_lookup,
        "facility_unlinked" => T::ev_facility_unlinked,
        other => return other.to_owned(),
    };
    ctx.t(key).to_owned()
}

#[function_component(MyPage)]
pub fn my_page() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let state = use_state(|| State::Loading);
    let id = use_state(String::new);
    let password = use_state(String::new);
    let error = use_state(|| None::<String>);
    let coupon = use_state(coupon_from_url);
    let coupon_msg = use_state(|| None::<(bool, String)>);
    let assign_to = use_state(|| None::<i64>);
    let amount = use_state(String::new);
    let assign_msg = use_state(|| None::<(bool, String)>);
    let municipalities = use_municipalities();
    let link_target = use_state(String::new);
    let link_id = use_state(String::new);
    let link_msg = use_state(|| None::<(bool, String)>);
    {
        let state = state.clone();
        use_effect_with((), move |_| wasm_bindgen_futures::spawn_local(async move { state.set(load().await) }));
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
                submit="/v1/auth/card" answer={{
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
            let Loaded { profile, balances, history, links, partners, online, patrons } = &**loaded;
            let kind_name = |k: &str| match k {
                "reserved" => ctx.t(T::kind_reserved),
                "event" => ctx.t(T::kind_event),
                _ => ctx.t(T::kind_municipal),
            };
            let accounts = balances["accounts"].as_array().cloned().unwrap_or_default();
            // "municipal:12" as the municipality's name.
            let list = municipalities.as_ref().and_then(|r| r.as_ref().ok()).cloned().unwrap_or_default();
            let place = |currency: &str| -> String {
                currency
                    .strip_prefix("municipal:")
                    .and_then(|id| id.parse::<i64>().ok())
                    .and_then(|id| list.iter().find(|m| m.id == id))
                    .map(|m| format!("（{} {}）", m.prefecture, m.name))
                    .unwrap_or_default()
            };
            let events = history.as_array().cloned().unwrap_or_default();
            html! {
                <>
                    <p class="candidate">{ ctx.t(T::mykey_id) }{ "：" }<strong id="me-id">{ profile["mykey_id"].as_str().unwrap_or_default() }</strong></p>
                    <section aria-labelledby="balances-title">
                        <h2 id="balances-title">{ ctx.t(T::balances) }</h2>
                        <table>
                            <thead><tr>
                                <th scope="col">{ ctx.t(T::kind) }</th>
                                <th scope="col">{ ctx.t(T::points) }</th>
                                <th scope="col">{ ctx.t(T::next_expiry) }</th>
                            </tr></thead>
                            <tbody>
                                { for accounts.iter().map(|a| {
                                    let expiry = &a["next_expiry"];
                                    let next = if a["kind"] == "reserved" || expiry.is_null() {
                                        "-".to_owned()
                                    } else {
                                        format!("{} pt（{}）", expiry["points"], date(&ctx, expiry["at"].as_str().unwrap_or_default()))
                                    };
                                    html! {
                                        <tr>
                                            <td>{ kind_name(a["kind"].as_str().unwrap_or_default()) }{ " " }{ place(a["currency"].as_str().unwrap_or_default()) }</td>
                                            <td class="num">{ a["balance"].to_string() }</td>
                                            <td>{ next }</td>
                                        </tr>
                                    }
                                }) }
                            </tbody>
                        </table>
                        if let Some(at) = balances["reserved_moves_home_at"].as_str() {
                            <p id="moves-home">{ format!("{}{}{}", ctx.t(T::moves_home_before), date(&ctx, at), ctx.t(T::moves_home_after)) }</p>
                        }
                    </section>
                    { coupon_form(&ctx, &state, &coupon, &coupon_msg) }
                    { assign_form(&ctx, &state, &municipalities, &assign_to, &amount, &assign_msg) }
                    { links_form(&ctx, &state, links, partners, online, &link_target, &link_id, &link_msg) }
                    { patrons_section(&ctx, &state, patrons) }
                    <PointsHistory accounts={accounts.iter().map(|a| (
                        a["id"].as_i64().unwrap_or_default(),
                        format!("{} {}", kind_name(a["kind"].as_str().unwrap_or_default()), place(a["currency"].as_str().unwrap_or_default())),
                    )).collect::<Vec<_>>()} />
                    <SettingsForm profile={profile.clone()} />
                    <PasswordForm />
                    <ChangeIdForm on_changed={{
                        let state = state.clone();
                        Callback::from(move |_| {
                            let state = state.clone();
                            wasm_bindgen_futures::spawn_local(async move { state.set(load().await) });
                        })
                    }} />
                    <CardAction id="rebind" title={T::rebind_title} hint={Some(T::rebind_hint)} button={T::rebind}
                        submit="/v1/me/card" answer={{
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
                                let at = e["at"].as_str().unwrap_or_default();
                                let shown = format!("{} UTC", at.get(..16).unwrap_or(at).replace('T', " "));
                                let kind = e["kind"].as_str().unwrap_or_default();
                                html! { <li><time datetime={at.to_owned()}>{ shown }</time>{ " " }{ usage_kind(&ctx, kind) }</li> }
                            }) }
                        </ul>
                    </section>
                    <button type="button" onclick={logout}>{ ctx.t(T::logout) }</button>
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

type Msg = UseStateHandle<Option<(bool, String)>>;

fn message(m: &Msg, id: &str) -> Html {
    match &**m {
        Some((true, text)) => html! { <p class="notice" role="status" id={id.to_owned()}>{ text }</p> },
        Some((false, text)) => html! { <p class="error" role="alert" id={id.to_owned()}>{ text }</p> },
        None => html! {},
    }
}

fn resident_of(state: &State) -> i64 {
    match state {
        State::In(loaded) => loaded.profile["resident"].as_i64().unwrap_or_default(),
        _ => 0,
    }
}

/// Redeem a coupon code (typed, or from a coupon link); checked here first for typos.
fn coupon_form(ctx: &Ctx, state: &UseStateHandle<State>, coupon: &UseStateHandle<String>, msg: &Msg) -> Html {
    let oninput = {
        let coupon = coupon.clone();
        Callback::from(move |e: InputEvent| coupon.set(e.target_unchecked_into::<HtmlInputElement>().value()))
    };
    let onsubmit = {
        let (ctx, state, coupon, msg) = (ctx.clone(), state.clone(), coupon.clone(), msg.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let code = match CouponCode::parse(&coupon) {
                Ok(c) => c,
                Err(CouponError::Check) => return msg.set(Some((false, ctx.t(T::coupon_typo).to_owned()))),
                Err(e) => return msg.set(Some((false, e.to_string()))),
            };
            let body = json!({ "code": code.canonical(), "resident": resident_of(&state) });
            let (ctx, state, msg, coupon) = (ctx.clone(), state.clone(), msg.clone(), coupon.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<Value>("/v1/coupons/redeem", &body).await {
                    Ok(receipt) => {
                        let points: i64 = receipt["postings"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|p| p["amount"].as_i64())
                            .filter(|a| *a > 0)
                            .sum();
                        msg.set(Some((true, format!("{}{points}", ctx.t(T::redeemed)))));
                        coupon.set(String::new());
                        state.set(load().await);
                    }
                    Err(f) => msg.set(Some((
                        false,
                        match f.slug.as_str() {
                            "coupon-invalid" => ctx.t(T::coupon_invalid).to_owned(),
                            "coupon-expired" => ctx.t(T::coupon_expired).to_owned(),
                            "coupon-used" => ctx.t(T::coupon_used).to_owned(),
                            "rate-limited" => ctx.t(T::err_rate_limited).to_owned(),
                            _ => ctx.t(T::server_error).to_owned(),
                        },
                    ))),
                }
            });
        })
    };
    html! {
        <section aria-labelledby="coupon-title">
            <h2 id="coupon-title">{ ctx.t(T::coupon_title) }</h2>
            <form onsubmit={onsubmit} class="field">
                <label for="coupon">{ ctx.t(T::coupon_label) }</label>
                <div class="inline">
                    <input id="coupon" type="text" autocomplete="off" value={(**coupon).clone()} oninput={oninput}
                        aria-describedby="coupon-msg" />
                    <button type="submit">{ ctx.t(T::redeem) }</button>
                </div>
            </form>
            { message(msg, "coupon-msg") }
        </section>
    }
}

/// Assign reserved points to a municipality taking part.
fn assign_form(
    ctx: &Ctx,
    state: &UseStateHandle<State>,
    municipalities: &UseStateHandle<Option<Result<Vec<crate::top::Municipality>, api::Failure>>>,
    to: &UseStateHandle<Option<i64>>,
    amount: &UseStateHandle<String>,
    msg: &Msg,
) -> Html {
    let groups = municipalities.as_ref().and_then(|r| r.as_ref().ok()).map(|l| by_prefecture(l)).unwrap_or_default();
    let onchange = {
        let to = to.clone();
        Callback::from(move |e: Event| to.set(e.target_unchecked_into::<HtmlSelectElement>().value().parse().ok()))
    };
    let oninput = {
        let amount = amount.clone();
        Callback::from(move |e: InputEvent| amount.set(e.target_unchecked_into::<HtmlInputElement>().value()))
    };
    let onsubmit = {
        let (ctx, state, to, amount, msg) = (ctx.clone(), state.clone(), to.clone(), amount.clone(), msg.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (Some(m), Ok(n)) = (*to, amount.trim().parse::<i64>()) else {
                return msg.set(Some((false, ctx.t(T::err_amount).to_owned())));
            };
            if n < 1 {
                return msg.set(Some((false, ctx.t(T::err_amount).to_owned())));
            }
            let body = json!({ "id": new_id(), "resident": resident_of(&state), "municipality": m, "amount": n });
            let (ctx, state, msg) = (ctx.clone(), state.clone(), msg.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<Value>("/v1/assignments", &body).await {
                    Ok(_) => {
                        msg.set(Some((true, format!("{}{n}", ctx.t(T::assigned)))));
                        state.set(load().await);
                    }
                    Err(f) if f.slug == "insufficient-points" || f.slug == "fractional-points" => {
                        msg.set(Some((false, ctx.t(T::err_amount).to_owned())))
                    }
                    Err(_) => msg.set(Some((false, ctx.t(T::server_error).to_owned()))),
                }
            });
        })
    };
    html! {
        <section aria-labelledby="assign-title">
            <h2 id="assign-title">{ ctx.t(T::assign_title) }</h2>
            <form onsubmit={onsubmit}>
                <div class="field">
                    <label for="assign-to">{ ctx.t(T::municipality) }</label>
                    <select id="assign-to" onchange={onchange}>
                        <option value="" selected={to.is_none()}>{ ctx.t(T::choose) }</option>
                        { for groups.iter().map(|((_, pref), ms)| html! {
                            <optgroup label={pref.clone()}>
                                { for ms.iter().map(|m| html! {
                                    <option value={m.id.to_string()} selected={Some(m.id) == **to}>{ m.name.clone() }</option>
                                }) }
                            </optgroup>
                        }) }
                    </select>
                </div>
                <div class="field">
                    <label for="assign-amount">{ ctx.t(T::amount) }</label>
                    <input id="assign-amount" type="number" min="1" step="1" inputmode="numeric" value={(**amount).clone()}
                        oninput={oninput} aria-describedby="assign-msg" />
                </div>
                <button type="submit">{ ctx.t(T::assign) }</button>
            </form>
            { message(msg, "assign-msg") }
        </section>
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

/// The current password, typed again to confirm a change (`id`'s message is `msg_id`).
fn current_password_field(ctx: &Ctx, id: &'static str, msg_id: &'static str, h: &UseStateHandle<String>) -> Html {
    let oninput = {
        let h = h.clone();
        Callback::from(move |e: InputEvent| h.set(e.target_unchecked_into::<HtmlInputElement>().value()))
    };
    html! {
        <div class="field">
            <label for={id}>{ ctx.t(T::current_password) }</label>
            <input id={id} type="password" autocomplete="current-password" value={(**h).clone()}
                oninput={oninput} aria-describedby={msg_id} />
        </div>
    }
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

/// An RFC 3339 time as a date in Japan (where the points are used).
fn date(ctx: &Ctx, at: &str) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(at));
    if d.get_time().is_nan() {
        return at.to_owned();
    }
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"timeZone".into(), &"Asia/Tokyo".into());
    let locale = if ctx.lang == crate::i18n::Lang::Ja { "ja-JP" } else { "en-GB" };
    String::from(d.to_locale_date_string(locale, &options))
}

/// The start of a day in Japan (`2026-11-27` as `2026-11-26T15:00:00.000Z`), `days` later.
fn day_start(day: &str, days: f64) -> Option<String> {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(&format!("{day}T00:00:00+09:00")));
    if d.get_time().is_nan() {
        return None;
    }
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(d.get_time() + days * 86_400_000.0));
    Some(String::from(d.to_iso_string()))
}

#[derive(Properties, PartialEq)]
struct HistoryProps {
    /// Account id and how the resident knows it.
    accounts: Vec<(i64, String)>,
}

/// The points history of one account, newest first, with kind and period filters.
#[function_component(PointsHistory)]
fn points_history(p: &HistoryProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let account = use_state(|| p.accounts.first().map(|a| a.0));
    let kind = use_state(String::new);
    let from = use_state(String::new);
    let to = use_state(String::new);
    let entries = use_state(Vec::<Value>::new);
    let cursor = use_state(|| None::<String>);
    let msg = use_state(|| None::<(bool, String)>);
    // Loads the first page (more = false) or the next one.
    let fetch = {
        let (ctx, account, kind, from, to, entries, cursor, msg) = (
            ctx.clone(),
            account.clone(),
            kind.clone(),
            from.clone(),
            to.clone(),
            entries.clone(),
            cursor.clone(),
            msg.clone(),
        );
        Callback::from(move |more: bool| {
            let Some(id) = *account else { return };
            let mut q = vec!["limit=20".to_owned()];
            if !kind.is_empty() {
                q.push(format!("kind={}", *kind));
            }
            let bound = |day: &str, days: f64, name: &str| -> Result<Option<String>, ()> {
                if day.is_empty() {
                    return Ok(None);
                }
                let at = day_start(day, days).ok_or(())?;
                Ok(Some(format!("{name}={}", String::from(js_sys::encode_uri_component(&at)))))
            };
            match (bound(&from, 0.0, "from"), bound(&to, 1.0, "to")) {
                (Ok(f), Ok(t)) => q.extend(f.into_iter().chain(t)),
                _ => return msg.set(Some((false, ctx.t(T::err_period).to_owned()))),
            }
            if more {
                if let Some(c) = &*cursor {
                    q.push(format!("cursor={c}"));
                }
            }
            let path = format!("/v1/accounts/{id}/history?{}", q.join("&"));
            let (ctx, entries, cursor, msg) = (ctx.clone(), entries.clone(), cursor.clone(), msg.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::get::<Value>(&path).await {
                    Ok(page) => {
                        let mut list = if more { (*entries).clone() } else { Vec::new() };
                        list.extend(page["entries"].as_array().cloned().unwrap_or_default());
                        msg.set(None);
                        entries.set(list);
                        cursor.set(page["next_cursor"].as_str().map(str::to_owned));
                    }
                    Err(f) if f.field.as_deref() == Some("to") => {
                        msg.set(Some((false, ctx.t(T::err_period).to_owned())))
                    }
                    Err(_) => msg.set(Some((false, ctx.t(T::server_error).to_owned()))),
                }
            });
        })
    };
    {
        let fetch = fetch.clone();
        use_effect_with((), move |_| fetch.emit(false));
    }
    let onsubmit = {
        let fetch = fetch.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            fetch.emit(false);
        })
    };
    let on_account = {
        let account = account.clone();
        Callback::from(move |e: Event| account.set(e.target_unchecked_into::<HtmlSelectElement>().value().parse().ok()))
    };
    let on_kind = {
        let kind = kind.clone();
        Callback::from(move |e: Event| kind.set(e.target_unchecked_into::<HtmlSelectElement>().value()))
    };
    let on_date = |h: &UseStateHandle<String>| {
        let h = h.clone();
        Callback::from(move |e: InputEvent| h.set(e.target_unchecked_into::<HtmlInputElement>().value()))
    };
    let kinds = [
        ("payment", T::tx_payment),
        ("grant", T::tx_grant),
        ("conversion", T::tx_conversion),
        ("assignment", T::tx_assignment),
        ("expiry", T::tx_expiry),
        ("adjustment", T::tx_adjustment),
    ];
    let kind_label = |k: &str| kinds.iter().find(|(n, _)| *n == k).map(|(_, t)| ctx.t(*t)).unwrap_or_default();
    let more = {
        let fetch = fetch.clone();
        Callback::from(move |_| fetch.emit(true))
    };
    html! {
        <section aria-labelledby="points-history-title">
            <h2 id="points-history-title">{ ctx.t(T::points_history) }</h2>
            <form onsubmit={onsubmit} class="filters">
                <div class="field">
                    <label for="history-account">{ ctx.t(T::history_account) }</label>
                    <select id="history-account" onchange={on_account}>
                        { for p.accounts.iter().map(|(id, label)| html! {
                            <option value={id.to_string()} selected={Some(*id) == *account}>{ label.clone() }</option>
                        }) }
                    </select>
                </div>
                <div class="field">
                    <label for="history-kind">{ ctx.t(T::history_kind) }</label>
                    <select id="history-kind" onchange={on_kind}>
                        <option value="" selected={kind.is_empty()}>{ ctx.t(T::history_all) }</option>
                        { for kinds.iter().map(|(k, t)| html! { <option value={*k} selected={*kind == *k}>{ ctx.t(*t) }</option> }) }
                    </select>
                </div>
                <div class="field">
                    <label for="history-from">{ ctx.t(T::history_from) }</label>
                    <input id="history-from" type="date" value={(*from).clone()} oninput={on_date(&from)} aria-describedby="history-msg" />
                </div>
                <div class="field">
                    <label for="history-to">{ ctx.t(T::history_to) }</label>
                    <input id="history-to" type="date" value={(*to).clone()} oninput={on_date(&to)} aria-describedby="history-msg" />
                </div>
                <button type="submit">{ ctx.t(T::history_show) }</button>
            </form>
            { message(&msg, "history-msg") }
            <table id="points-history">
                <thead><tr>
                    <th scope="col">{ ctx.t(T::history_date) }</th>
                    <th scope="col">{ ctx.t(T::history_kind) }</th>
                    <th scope="col">{ ctx.t(T::points) }</th>
                    <th scope="col">{ ctx.t(T::history_balance) }</th>
                    <th scope="col">{ ctx.t(T::history_memo) }</th>
                </tr></thead>
                <tbody>
                    { for entries.iter().map(|e| html! {
                        <tr>
                            <td>{ date(&ctx, e["created_at"].as_str().unwrap_or_default()) }</td>
                            <td>{ kind_label(e["kind"].as_str().unwrap_or_default()) }</td>
                            <td class="num">{ e["amount"].to_string() }</td>
                            <td class="num">{ e["balance_after"].to_string() }</td>
                            <td>{ e["memo"].as_str().unwrap_or_default() }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
            if entries.is_empty() { <p class="muted">{ ctx.t(T::history_none) }</p> }
            if cursor.is_some() { <button type="button" onclick={more}>{ ctx.t(T::history_more) }</button> }
        </section>
    }
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
            let body = json!({ "candidate": candidate.to_string(), "password": *password });
            let (ctx, msg, password, reg, done) =
                (ctx.clone(), msg.clone(), password.clone(), reg.clone(), done.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<Value>("/v1/me/mykey-id", &body).await {
                    Ok(p) => {
                        msg.set(Some((
                            true,
                            format!("{}{}", ctx.t(T::id_changed), p["mykey_id"].as_str().unwrap_or_default()),
                        )));
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
struct CardActionProps {
    /// Ids of the section's elements start with it (`rebind`, `card-login`).
    id: &'static str,
    title: T,
    hint: Option<T>,
    button: T,
    /// Where the card's signed challenge goes.
    submit: &'static str,
    /// The server's answer to the message shown (`true` for good news).
    answer: Callback<Value, (bool, String)>,
}

/// A section where the card is read for one purpose: logging in with it, or re-binding the
/// MyKey ID to a renewed card (its certificate replaces the old one).
#[function_component(CardAction)]
fn card_action(p: &CardActionProps) -> Html {
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
    let title_id = format!("{}-title", p.id);
    html! {
        <section aria-labelledby={title_id.clone()}>
            <h2 id={title_id}>{ ctx.t(p.title) }</h2>
            if let Some(hint) = p.hint { <p>{ ctx.t(hint) }</p> }
            if *open {
                <CardReader submit={p.submit} level={3} error_id={format!("{}-error", p.id)} on_answer={on_answer} />
            } else {
                <button type="button" id={p.id} onclick={start}>{ ctx.t(p.button) }</button>
            }
            { message(&msg, &format!("{}-msg", p.id)) }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct SettingsProps {
    profile: Value,
}

/// E-mail (typed twice) and the four notice choices.
#[function_component(SettingsForm)]
fn settings_form(p: &SettingsProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let initial = p.profile.clone();
    let email = use_state(|| initial["email"].as_str().unwrap_or_default().to_owned());
    let email2 = use_state(|| initial["email"].as_str().unwrap_or_default().to_owned());
    let keys = ["points_granted", "points_expired", "settings_changed", "mykey_id_changed"];
    let notices = use_state(|| keys.map(|k| initial["notices"][k].as_bool().unwrap_or(false)));
    let msg = use_state(|| None::<(bool, String)>);
    let text = |id: &'static str, label: T, h: &UseStateHandle<String>| {
        let h2 = h.clone();
        let oninput =
            Callback::from(move |e: InputEvent| h2.set(e.target_unchecked_into::<HtmlInputElement>().value()));
        html! {
            <div class="field">
                <label for={id}>{ ctx.t(label) }</label>
                <input id={id} type="email" autocomplete="email" value={(**h).clone()} oninput={oninput} aria-describedby="settings-msg" />
            </div>
        }
    };
    let check = |i: usize, label: T| {
        let checked = notices[i];
        let notices = notices.clone();
        let onchange = Callback::from(move |e: Event| {
            let mut n = *notices;
            n[i] = e.target_unchecked_into::<HtmlInputElement>().checked();
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
        let (ctx, email, email2, notices, msg) =
            (ctx.clone(), email.clone(), email2.clone(), notices.clone(), msg.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let n = *notices;
            let body = json!({
                "email": (!email.is_empty()).then(|| (*email).clone()),
                "email_confirmation": (!email2.is_empty()).then(|| (*email2).clone()),
                "notices": { "points_granted": n[0], "points_expired": n[1], "settings_changed": n[2], "mykey_id_changed": n[3] },
            });
            let (ctx, msg) = (ctx.clone(), msg.clone());
            wasm_bindgen_futures::spawn_local(async move {
                msg.set(Some(match api::put::<Value>("/v1/me/settings", &body).await {
                    Ok(_) => (true, ctx.t(T::saved).to_owned()),
                    Err(f) if f.slug == "invalid-email" => (false, ctx.t(T::err_email).to_owned()),
                    Err(f) if f.slug == "confirmation-mismatch" => (false, ctx.t(T::err_email_match).to_owned()),
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
                    { check(0, T::notice_granted) }
                    { check(1, T::notice_expired) }
                    { check(2, T::notice_settings) }
                    { check(3, T::notice_id) }
                </fieldset>
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
        let h2 = h.clone();
        let oninput =
            Callback::from(move |e: InputEvent| h2.set(e.target_unchecked_into::<HtmlInputElement>().value()));
        html! {
            <div class="field">
                <label for={id}>{ ctx.t(label) }</label>
                <input id={id} type="password" autocomplete={auto} value={(**h).clone()} oninput={oninput} aria-describedby="password-msg" />
            </div>
        }
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
            let body = json!({ "password": *password });
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
