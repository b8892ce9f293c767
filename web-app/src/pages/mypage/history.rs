//! The points history of each account, filtered by kind and period.

use mykey_core::api::{HistoryEntry, HistoryPage, TransactionKind};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use super::{account_label, date};
use super::{message, State};
use crate::api;
use crate::i18n::T;
use crate::Ctx;

/// The points history sub-page.
#[function_component(History)]
pub fn history(p: &super::SubProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let State::In(loaded) = &*p.state else { return html! {} };
    let list = p.municipality_list();
    let accounts = loaded.balances.as_ref().map(|b| b.accounts.as_slice()).unwrap_or_default();
    html! {
        <PointsHistory accounts={accounts.iter().map(|a| (a.id, account_label(&ctx, &list, a))).collect::<Vec<_>>()} />
    }
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

/// What the resident asked for: read from the form when it is submitted, kept for "more".
#[derive(Clone, Default)]
struct Query {
    account: Option<i64>,
    kind: String,
    from: String,
    to: String,
}

/// The points history of one account, newest first, with kind and period filters. The form is
/// read when submitted, and only the answer to the latest request is shown, so a slow answer
/// to an earlier filter never replaces a newer one.
#[function_component(PointsHistory)]
fn points_history(p: &HistoryProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let (account_ref, kind_ref, from_ref, to_ref) = (use_node_ref(), use_node_ref(), use_node_ref(), use_node_ref());
    let shown = use_mut_ref(Query::default);
    let latest = use_mut_ref(|| 0u64);
    let entries = use_state(Vec::<HistoryEntry>::new);
    let cursor = use_state(|| None::<String>);
    let msg = use_state(|| None::<(bool, String)>);
    // Loads the first page for the form as it is now (more = false) or the next page.
    let fetch = {
        let (ctx, entries, cursor, msg, shown, latest) =
            (ctx.clone(), entries.clone(), cursor.clone(), msg.clone(), shown.clone(), latest.clone());
        let (account_ref, kind_ref, from_ref, to_ref) =
            (account_ref.clone(), kind_ref.clone(), from_ref.clone(), to_ref.clone());
        Callback::from(move |more: bool| {
            if !more {
                let value = |r: &NodeRef| {
                    r.cast::<HtmlSelectElement>()
                        .map(|e| e.value())
                        .or_else(|| r.cast::<HtmlInputElement>().map(|e| e.value()))
                        .unwrap_or_default()
                };
                *shown.borrow_mut() = Query {
                    account: value(&account_ref).parse().ok(),
                    kind: value(&kind_ref),
                    from: value(&from_ref),
                    to: value(&to_ref),
                };
            }
            let query = shown.borrow().clone();
            let Some(id) = query.account else { return };
            let mut q = vec!["limit=20".to_owned()];
            if !query.kind.is_empty() {
                q.push(format!("kind={}", query.kind));
            }
            let bound = |day: &str, days: f64, name: &str| -> Result<Option<String>, ()> {
                if day.is_empty() {
                    return Ok(None);
                }
                let at = day_start(day, days).ok_or(())?;
                Ok(Some(format!("{name}={}", String::from(js_sys::encode_uri_component(&at)))))
            };
            match (bound(&query.from, 0.0, "from"), bound(&query.to, 1.0, "to")) {
                (Ok(f), Ok(t)) => q.extend(f.into_iter().chain(t)),
                _ => return msg.set(Some((false, ctx.t(T::err_period).to_owned()))),
            }
            if more {
                if let Some(c) = &*cursor {
                    q.push(format!("cursor={c}"));
                }
            }
            let path = format!("/v1/accounts/{id}/history?{}", q.join("&"));
            let request = {
                let mut n = latest.borrow_mut();
                *n += 1;
                *n
            };
            let (ctx, entries, cursor, msg, latest) =
                (ctx.clone(), entries.clone(), cursor.clone(), msg.clone(), latest.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let answer = api::get::<HistoryPage>(&path).await;
                if *latest.borrow() != request {
                    return;
                }
                match answer {
                    Ok(page) => {
                        let mut list = if more { (*entries).clone() } else { Vec::new() };
                        list.extend(page.entries);
                        msg.set(None);
                        entries.set(list);
                        cursor.set(page.next_cursor);
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
    let kinds = [
        (TransactionKind::Payment, T::tx_payment),
        (TransactionKind::Grant, T::tx_grant),
        (TransactionKind::Conversion, T::tx_conversion),
        (TransactionKind::Assignment, T::tx_assignment),
        (TransactionKind::Expiry, T::tx_expiry),
        (TransactionKind::Adjustment, T::tx_adjustment),
        (TransactionKind::Refund, T::tx_refund),
    ];
    let kind_label =
        |k: TransactionKind| kinds.iter().find(|(n, _)| *n == k).map(|(_, t)| ctx.t(*t)).unwrap_or_default();
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
                    <select id="history-account" ref={account_ref}>
                        { for p.accounts.iter().map(|(id, label)| html! {
                            <option value={id.to_string()}>{ label.clone() }</option>
                        }) }
                    </select>
                </div>
                <div class="field">
                    <label for="history-kind">{ ctx.t(T::history_kind) }</label>
                    <select id="history-kind" ref={kind_ref}>
                        <option value="">{ ctx.t(T::history_all) }</option>
                        { for kinds.iter().map(|(k, t)| html! { <option value={k.as_str()}>{ ctx.t(*t) }</option> }) }
                    </select>
                </div>
                <div class="field">
                    <label for="history-from">{ ctx.t(T::history_from) }</label>
                    <input id="history-from" type="date" ref={from_ref} aria-describedby="history-msg" />
                </div>
                <div class="field">
                    <label for="history-to">{ ctx.t(T::history_to) }</label>
                    <input id="history-to" type="date" ref={to_ref} aria-describedby="history-msg" />
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
                            <td>{ date(&ctx, e.created_at) }</td>
                            <td>{ kind_label(e.kind) }</td>
                            <td class="num">{ e.amount }</td>
                            <td class="num">{ e.balance_after }</td>
                            <td>{ e.memo.clone().unwrap_or_default() }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
            if entries.is_empty() { <p class="muted">{ ctx.t(T::history_none) }</p> }
            if cursor.is_some() { <button type="button" onclick={more}>{ ctx.t(T::history_more) }</button> }
        </section>
    }
}
