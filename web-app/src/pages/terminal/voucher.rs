//! Point vouchers at the counter (`docs/counter.md` "Point vouchers"): issued for points the
//! card holder chooses within the municipality's balance, with the card and PIN, and printed
//! with their number and signed QR code; redeemed by scanning that code or typing the number,
//! after the code's signature is checked here with the server's voucher key (WebCrypto).

use mykey_core::api::{
    CounterBalances, CounterChallengeRequest, CounterKind, UsablePoints, VoucherIssueRequest, VoucherIssued,
    VoucherKey, VoucherRedeemed, VoucherRedemptionRequest,
};
use mykey_core::identity::NonceIssued;
use mykey_core::voucher::{VoucherInput, VoucherTicket};
use rust_decimal::Decimal;
use wasm_bindgen::prelude::*;
use yew::prelude::*;

use super::device::{random_id, ThisDevice};
use super::{cancelling, drop_held, go, keep, pt, receipt_actions, receipt_qr, refusal, sign_here};
use super::{Step, Typed};
use crate::api::Failure;
use crate::i18n::T;
use crate::Ctx;

#[wasm_bindgen(inline_js = r#"
export async function voucherVerify(spki, message, signature) {
  const der = Uint8Array.from(atob(spki), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey('spki', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
  return crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, key, signature, new TextEncoder().encode(message));
}
"#)]
extern "C" {
    #[wasm_bindgen(catch, js_name = voucherVerify)]
    async fn verify(spki: &str, message: &str, signature: &[u8]) -> Result<JsValue, JsValue>;
}

/// The amount of a voucher to issue.
pub(super) fn amount_form(
    ctx: &Ctx,
    step: &UseStateHandle<Step>,
    error: &UseStateHandle<Option<String>>,
    online: bool,
    typed: &UseStateHandle<Typed>,
) -> Html {
    let submit = super::amount_submit(ctx, step, error, typed, |amount| Step::VoucherCard { amount });
    html! {
        <>
            <h2>{ ctx.t(T::term_voucher_issue) }</h2>
            <form onsubmit={submit} class="terminal-form">
                <label for="voucher-amount">{ ctx.t(T::vou_amount_title) }</label>
                <input id="voucher-amount" name="amount" inputmode="numeric" autocomplete="off" required=true
                    aria-describedby="term-error" value={typed.amount.clone()} oninput={keep(typed, |t, v| t.amount = v)} />
                <div class="actions">
                    <button type="button" onclick={go(step, error, Step::Amount)}>{ ctx.t(T::term_cancel) }</button>
                    <button type="submit" class="primary big" disabled={!online}>{ ctx.t(T::term_next) }</button>
                </div>
            </form>
        </>
    }
}

/// The voucher's points, large, as its card step and confirmation show them.
pub(super) fn voucher_line(ctx: &Ctx, amount: i64) -> Html {
    html! { <p class="amount" id="term-amount">{ format!("{}: {}", ctx.t(T::vou_amount_title), pt(ctx, amount)) }</p> }
}

/// Properties of [`IssueConfirm`].
#[derive(Properties, PartialEq)]
pub(super) struct IssueProps {
    pub(super) amount: i64,
    pub(super) balances: CounterBalances,
    pub(super) device: ThisDevice,
    pub(super) online: bool,
    pub(super) on_issued: Callback<(VoucherIssued, i64)>,
    pub(super) on_cancel: Callback<()>,
}

/// The municipality's points held and what is left after the voucher (the seed's screen);
/// the card signs the voucher's terms and the voucher is issued.
#[function_component(IssueConfirm)]
pub(super) fn issue_confirm(p: &IssueProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let error = use_state(|| None::<String>);
    let busy = use_state(|| false);
    // Vouchers are of the municipality's own points, not an event programme's.
    let held: Option<UsablePoints> = p.balances.usable.iter().find(|u| u.event.is_none()).cloned();
    let available = held.as_ref().map_or(0, |u| u.available);
    let issue = {
        let (ctx, error, busy, device, amount, municipality, on_issued) = (
            ctx.clone(),
            error.clone(),
            busy.clone(),
            p.device.clone(),
            p.amount,
            p.balances.municipality,
            p.on_issued.clone(),
        );
        Callback::from(move |_| {
            let (ctx, error, busy, device, on_issued) =
                (ctx.clone(), error.clone(), busy.clone(), device.clone(), on_issued.clone());
            busy.set(true);
            error.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                let result = issue_voucher(&ctx, &device, municipality, amount).await;
                busy.set(false);
                match result {
                    Ok(v) => {
                        drop_held();
                        on_issued.emit((v, available - amount));
                    }
                    Err(m) => error.set(Some(m)),
                }
            });
        })
    };
    let short = available < p.amount;
    html! {
        <>
            <h2>{ ctx.t(T::vou_confirm_title) }</h2>
            { voucher_line(&ctx, p.amount) }
            if held.is_none() {
                <p class="error" role="alert" id="term-none">{ ctx.t(T::vou_none) }</p>
            } else {
                <dl class="receipt" id="voucher-balance">
                    <dt>{ ctx.t(T::vou_held) }</dt><dd id="voucher-held">{ pt(&ctx, available) }</dd>
                    <dt>{ ctx.t(T::vou_after) }</dt><dd id="voucher-after">{ pt(&ctx, available - p.amount) }</dd>
                </dl>
            }
            if short && held.is_some() { <p class="error" role="alert">{ ctx.t(T::term_not_enough) }</p> }
            if let Some(m) = error.as_ref() { <p class="error" role="alert" id="pay-error">{ m }</p> }
            <div class="actions">
                <button type="button" onclick={cancelling(&p.on_cancel)}>{ ctx.t(T::term_cancel) }</button>
                <button type="button" class="primary big" id="voucher-issue" onclick={issue} disabled={*busy || short || !p.online}>
                    { ctx.t(T::vou_issue) }
                </button>
            </div>
        </>
    }
}

/// Signs the voucher's terms with the held card and issues it.
async fn issue_voucher(
    ctx: &Ctx,
    device: &ThisDevice,
    municipality: i64,
    amount: i64,
) -> Result<VoucherIssued, String> {
    let shop = device.device.shop;
    let terms = CounterChallengeRequest {
        kind: CounterKind::Voucher,
        municipality,
        event: None,
        amount: Decimal::from(amount),
        timeout_seconds: None,
        memo: None,
    };
    let ch: NonceIssued =
        device.post(&format!("/v1/shops/{shop}/counter-challenges"), &terms).await.map_err(|f| refusal(ctx, &f))?;
    let token = sign_here(ctx, device, &ch.nonce).await?;
    let request = VoucherIssueRequest {
        id: random_id().map_err(|f| refusal(ctx, &f))?,
        municipality,
        amount: Decimal::from(amount),
        nonce: ch.nonce,
        token,
    };
    device.post(&format!("/v1/shops/{shop}/vouchers"), &request).await.map_err(|f| refusal(ctx, &f))
}

/// A day in Japan as the voucher prints it: `2017/12/15`.
fn day(at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&mykey_core::rules::japan()).format("%Y/%m/%d").to_string()
}

/// The issued voucher, to print (the seed's voucher: issue date, municipality, points,
/// validity, where it is taken, number, QR code), and the points left.
pub(super) fn issued(ctx: &Ctx, step: &UseStateHandle<Step>, v: &VoucherIssued, left: i64) -> Html {
    let next = {
        let step = step.clone();
        Callback::from(move |_| step.set(Step::Amount))
    };
    // The last valid day: the day before the midnight it ends at.
    let last = v.expires_at - chrono::Duration::seconds(1);
    let qr = mykey_core::qr::svg(&v.ticket).ok();
    html! {
        <>
            <h2 id="voucher-issued" class="no-print">{ ctx.t(T::vou_issued) }</h2>
            <p class="no-print">{ format!("{}: {}", ctx.t(T::term_left), pt(ctx, left)) }</p>
            <article class="voucher" id="voucher" aria-labelledby="voucher-title">
                <p>{ format!("{}：{}", ctx.t(T::vou_issued_on), day(v.issued_at)) }</p>
                <h3 id="voucher-title">{ format!("{}{} {}", v.municipality_name, ctx.t(T::points_suffix), ctx.t(T::vou_kind)) }</h3>
                <dl class="receipt">
                    <dt>{ ctx.t(T::vou_points) }</dt><dd id="voucher-points">{ pt(ctx, v.points) }</dd>
                    <dt>{ ctx.t(T::vou_valid) }</dt><dd id="voucher-valid">{ format!("{} ～ {}", day(v.issued_at), day(last)) }</dd>
                    <dt>{ ctx.t(T::vou_number) }</dt><dd id="voucher-number">{ &v.number }</dd>
                </dl>
                <p>{ ctx.t(T::vou_where) }</p>
                if let Some(svg) = qr {
                    <figure class="receipt-qr" id="voucher-qr">
                        { Html::from_html_unchecked(AttrValue::from(svg)) }
                        <figcaption>{ ctx.t(T::vou_qr) }</figcaption>
                    </figure>
                }
            </article>
            { receipt_actions(ctx, next) }
        </>
    }
}

/// The redemption's form: a scanner types the QR code's text, or staff type the number.
pub(super) fn redeem_form(
    ctx: &Ctx,
    step: &UseStateHandle<Step>,
    this: &ThisDevice,
    error: &UseStateHandle<Option<String>>,
    online: bool,
    typed: &UseStateHandle<Typed>,
) -> Html {
    let submit = {
        let (ctx, step, device, error, typed) = (ctx.clone(), step.clone(), this.clone(), error.clone(), typed.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Ok(input) = VoucherInput::parse(&typed.voucher) else {
                return error.set(Some(ctx.t(T::vou_input_invalid).to_owned()));
            };
            let (ctx, step, device, error, typed) =
                (ctx.clone(), step.clone(), device.clone(), error.clone(), typed.clone());
            error.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                if let VoucherInput::Ticket(t) = &input {
                    match genuine(t).await {
                        Ok(true) => {}
                        Ok(false) => return error.set(Some(ctx.t(T::vou_forged).to_owned())),
                        Err(f) => return error.set(Some(refusal(&ctx, &f))),
                    }
                }
                let shop = device.device.shop;
                let request = match random_id() {
                    Ok(id) => VoucherRedemptionRequest { id, voucher: typed.voucher.trim().to_owned() },
                    Err(f) => return error.set(Some(refusal(&ctx, &f))),
                };
                match device.post::<VoucherRedeemed>(&format!("/v1/shops/{shop}/voucher-redemptions"), &request).await {
                    Ok(redeemed) => {
                        typed.set(Typed { voucher: String::new(), ..(*typed).clone() });
                        step.set(Step::VoucherRedeemed { redeemed });
                    }
                    Err(f) => error.set(Some(redeem_refusal(&ctx, &f))),
                }
            });
        })
    };
    html! {
        <>
            <h2>{ ctx.t(T::term_voucher_pay) }</h2>
            <p>{ ctx.t(T::vou_redeem_hint) }</p>
            <form onsubmit={submit} class="terminal-form">
                <label for="voucher-input">{ ctx.t(T::vou_redeem_input) }</label>
                <input id="voucher-input" name="voucher" autocomplete="off" spellcheck="false" required=true
                    maxlength={mykey_core::voucher::TICKET_MAX.to_string()} aria-describedby="term-error"
                    value={typed.voucher.clone()} oninput={keep(typed, |t, v| t.voucher = v)} />
                <div class="actions">
                    <button type="button" onclick={go(step, error, Step::Amount)}>{ ctx.t(T::term_cancel) }</button>
                    <button type="submit" class="primary big" disabled={!online}>{ ctx.t(T::term_pay) }</button>
                </div>
            </form>
        </>
    }
}

/// Whether the ticket carries the server's signature, checked here with its voucher key.
async fn genuine(t: &VoucherTicket) -> Result<bool, Failure> {
    let key: VoucherKey = crate::api::get("/v1/vouchers/key").await?;
    let ok = verify(&key.spki, &t.message(), &t.signature).await.map_err(|e| Failure::network(format!("{e:?}")))?;
    Ok(ok.as_bool().unwrap_or(false))
}

/// A redemption's refusal in staff's words.
fn redeem_refusal(ctx: &Ctx, f: &Failure) -> String {
    match f.slug.as_str() {
        "voucher-invalid" => ctx.t(T::vou_input_invalid).to_owned(),
        "voucher-spent" => ctx.t(T::vou_spent).to_owned(),
        "voucher-expired" => ctx.t(T::vou_expired).to_owned(),
        "voucher-not-accepted" => ctx.t(T::vou_elsewhere).to_owned(),
        "not-found" => ctx.t(T::vou_unknown).to_owned(),
        _ => refusal(ctx, f),
    }
}

/// Paid with a voucher: its points and the receipt with its log receipt's QR code.
pub(super) fn redeemed(ctx: &Ctx, step: &UseStateHandle<Step>, v: &VoucherRedeemed) -> Html {
    let next = {
        let step = step.clone();
        Callback::from(move |_| step.set(Step::Amount))
    };
    html! {
        <>
            <h2 id="voucher-redeemed">{ ctx.t(T::vou_redeemed) }</h2>
            <dl class="receipt" id="receipt">
                <dt>{ ctx.t(T::term_paid_points) }</dt><dd id="paid-points">{ pt(ctx, v.points) }</dd>
                <dt>{ ctx.t(T::vou_number) }</dt><dd>{ &v.number }</dd>
                <dt>{ ctx.t(T::term_when) }</dt><dd>{ super::jst(v.receipt.created_at) }</dd>
                <dt>{ ctx.t(T::term_transaction) }</dt><dd id="receipt-id">{ v.receipt.id.to_string() }</dd>
                <dt>{ ctx.t(T::term_leaf) }</dt><dd>{ v.receipt.leaf_index }</dd>
            </dl>
            { receipt_qr(ctx, &v.receipt) }
            { receipt_actions(ctx, next) }
        </>
    }
}
