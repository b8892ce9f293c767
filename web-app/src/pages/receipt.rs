//! Checking a receipt (`/app/receipt#<receipt text>`): a counter receipt's QR code opens this
//! page, which asks the log for its signed checkpoint and the transaction's inclusion proof and
//! checks both in the browser with the SDK (`mykey_sdk::receipt`). The log's key and its
//! witnesses come from this server (`/log/key`, `/log/witnesses`); docs/log-format.md says how
//! a client that pins them itself checks the same receipt.

use mykey_core::api::LogWitnesses;
use mykey_sdk::receipt::{check_receipt, CheckError, ReceiptChecked};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::i18n::T;
use crate::Ctx;

/// Where the check stands.
#[derive(Clone, PartialEq)]
enum Check {
    /// Nothing asked yet.
    Idle,
    /// Asking the log.
    Asking,
    /// The log holds the receipt.
    Held(ReceiptChecked),
    /// It does not, or the check could not be made.
    Failed(CheckError),
}

/// The text after `#` of this page's address, decoded.
fn from_address() -> String {
    let hash = web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default();
    let text = hash.strip_prefix('#').unwrap_or(&hash);
    js_sys::decode_uri_component(text).map(String::from).unwrap_or_else(|_| text.to_owned())
}

/// How often a receipt the latest checkpoint does not cover yet is asked about again: a
/// receipt scanned at the counter is seconds old, and checkpoints follow within a second or two.
const NOT_YET_TRIES: u32 = 5;

/// The wait between those tries.
const NOT_YET_WAIT_MS: i32 = 2_000;

/// Resolves after `ms` milliseconds.
async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Asks the log about `text`, again while the log has not published it yet.
async fn check(text: String) -> Result<ReceiptChecked, CheckError> {
    let mut tries = 1;
    loop {
        match check_once(&text).await {
            Err(CheckError::NotYet { .. }) if tries < NOT_YET_TRIES => {
                tries += 1;
                sleep(NOT_YET_WAIT_MS).await;
            }
            answer => return answer,
        }
    }
}

/// Asks the log about `text` with the key and witnesses this server publishes.
async fn check_once(text: &str) -> Result<ReceiptChecked, CheckError> {
    let origin = web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default();
    let unreachable = |e: gloo_net::Error| CheckError::Unreachable(e.to_string());
    let key = gloo_net::http::Request::get("/log/key")
        .send()
        .await
        .map_err(unreachable)?
        .text()
        .await
        .map_err(unreachable)?;
    let witnesses: LogWitnesses =
        crate::api::get("/log/witnesses").await.map_err(|f| CheckError::Unreachable(f.detail))?;
    let quorum = usize::try_from(witnesses.quorum).unwrap_or(usize::MAX);
    check_receipt(&origin, text, &key, &witnesses.witnesses, quorum).await
}

/// The receipt-checking page.
#[function_component(Receipt)]
pub fn receipt() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let typed = use_state(from_address);
    let state = use_state(|| Check::Idle);
    let run = {
        let state = state.clone();
        Callback::from(move |text: String| {
            let state = state.clone();
            state.set(Check::Asking);
            wasm_bindgen_futures::spawn_local(async move {
                state.set(match check(text).await {
                    Ok(c) => Check::Held(c),
                    Err(e) => Check::Failed(e),
                });
            });
        })
    };
    {
        // Opened from a QR code: check at once.
        let (run, text) = (run.clone(), (*typed).clone());
        use_effect_with((), move |_| {
            if !text.is_empty() {
                run.emit(text);
            }
        });
    }
    let oninput = {
        let typed = typed.clone();
        Callback::from(move |e: InputEvent| typed.set(e.target_unchecked_into::<HtmlInputElement>().value()))
    };
    let onsubmit = {
        let (run, typed) = (run.clone(), typed.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            run.emit((*typed).clone());
        })
    };
    let outcome = match &*state {
        Check::Idle => html! {},
        Check::Asking => html! { <p role="status" id="receipt-status">{ ctx.t(T::receipt_checking) }</p> },
        Check::Held(c) => html! {
            <div role="status" id="receipt-status">
                <p class="notice">{ ctx.t(T::receipt_ok) }</p>
                <p>{ ctx.t(T::receipt_scope) }</p>
                <dl class="receipt">
                    <dt>{ ctx.t(T::receipt_printed_transaction) }</dt><dd id="receipt-transaction">{ c.transaction.clone() }</dd>
                    <dt>{ ctx.t(T::receipt_position) }</dt><dd>{ c.leaf_index }</dd>
                    <dt>{ ctx.t(T::receipt_checkpoint) }</dt><dd>{ format!("{} ({}{})", c.origin, c.size, ctx.t(T::receipt_entries)) }</dd>
                    <dt>{ ctx.t(T::receipt_witnesses) }</dt><dd>{ c.quorum }</dd>
                </dl>
            </div>
        },
        Check::Failed(e) => {
            let text = match e {
                CheckError::Receipt(_) => T::receipt_err_not_a_receipt,
                CheckError::NotYet { .. } => T::receipt_err_not_yet,
                CheckError::NotInLog(_) => T::receipt_err_not_in_log,
                CheckError::Checkpoint(_) | CheckError::Key(_) => T::receipt_err_checkpoint,
                CheckError::Unreachable(_) => T::receipt_err_unreachable,
            };
            html! { <p class="error" role="alert" id="receipt-status" data-slug={e.slug()}>{ ctx.t(text) }</p> }
        }
    };
    html! {
        <section aria-labelledby="receipt-title">
            <h2 id="receipt-title">{ ctx.t(T::receipt_title) }</h2>
            <p>{ ctx.t(T::receipt_intro) }</p>
            <form onsubmit={onsubmit} class="terminal-form">
                <label for="receipt-text">{ ctx.t(T::receipt_text) }</label>
                <input id="receipt-text" type="text" autocomplete="off" spellcheck="false"
                    maxlength={mykey_core::receipt::MAX_TEXT.to_string()} value={(*typed).clone()} {oninput}
                    aria-describedby="receipt-status" />
                <button type="submit" class="primary" disabled={*state == Check::Asking}>{ ctx.t(T::receipt_check) }</button>
            </form>
            { outcome }
        </section>
    }
}
