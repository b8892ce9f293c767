//! My page: log in with the MyKey ID and password (or arrive logged in from the card), the
//! balances per kind and municipality, and the MyKey ID's usage history.

use serde_json::{json, Value};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::api;
use crate::i18n::T;
use crate::Ctx;

#[derive(Clone, Debug, PartialEq)]
enum State {
    Loading,
    LoggedOut,
    In { profile: Value, balances: Value, history: Value },
}

async fn load() -> State {
    let Ok(profile) = api::get::<Value>("/v1/me").await else { return State::LoggedOut };
    let resident = profile["resident"].as_i64().unwrap_or_default();
    let balances = api::get::<Value>(&format!("/v1/residents/{resident}/balances")).await.unwrap_or_default();
    let history = api::get::<Value>("/v1/me/history").await.unwrap_or_default();
    State::In { profile, balances, history }
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
            <section aria-labelledby="login-title">
                <h2 id="login-title">{ ctx.t(T::login_title) }</h2>
                <form onsubmit={login}>
                    { field("login-id", T::mykey_id, "text", &id) }
                    { field("login-password", T::password, "password", &password) }
                    if let Some(m) = &*error { <p class="error" role="alert" id="login-error">{ m }</p> }
                    <button type="submit" class="primary">{ ctx.t(T::login) }</button>
                </form>
            </section>
        },
        State::In { profile, balances, history } => {
            let kind_name = |k: &str| match k {
                "reserved" => ctx.t(T::kind_reserved),
                "event" => ctx.t(T::kind_event),
                _ => ctx.t(T::kind_municipal),
            };
            let accounts = balances["accounts"].as_array().cloned().unwrap_or_default();
            let events = history.as_array().cloned().unwrap_or_default();
            html! {
                <>
                    <p class="candidate">{ ctx.t(T::mykey_id) }{ "：" }<strong id="me-id">{ profile["mykey_id"].as_str().unwrap_or_default() }</strong></p>
                    <section aria-labelledby="balances-title">
                        <h2 id="balances-title">{ ctx.t(T::balances) }</h2>
                        <table>
                            <thead><tr><th scope="col">{ ctx.t(T::kind) }</th><th scope="col">{ ctx.t(T::points) }</th></tr></thead>
                            <tbody>
                                { for accounts.iter().map(|a| html! {
                                    <tr>
                                        <td>{ kind_name(a["kind"].as_str().unwrap_or_default()) }{ " " }{ a["currency"].as_str().unwrap_or_default() }</td>
                                        <td class="num">{ a["balance"].to_string() }</td>
                                    </tr>
                                }) }
                            </tbody>
                        </table>
                    </section>
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
