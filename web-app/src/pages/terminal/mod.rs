//! The counter terminal (窓口端末): a shop's PC or tablet enrols once with the shop's pairing
//! code, then takes payments: staff type the amount, the resident holds the My Number Card to
//! the reader and types the PIN, the screen shows the points usable at this shop, the resident
//! confirms, the screen shows what is left and the receipt. Every request is signed by this
//! device ([`device`]); every card signature is made in this counter's context. Without a
//! connection it says so and takes nothing (`docs/counter.md`).

pub mod close;
pub mod device;
mod facility;
mod voucher;

use std::cell::RefCell;
use std::rc::Rc;

use mykey_core::api::{CounterBalances, CounterChallengeRequest, CounterKind, CounterPaymentRequest, DeviceName};
use mykey_core::api::{CounterRefundChallengeRequest, CounterRefundRequest};
use mykey_core::api::{PartyReceipt, UsablePoints, VoucherIssued, VoucherRedeemed};
use mykey_core::identity::{AuthToken, NonceIssued, SigningContext};
use mykey_core::receipt::LogReceipt;
use mykey_sdk::card::CardBridge;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use crate::api::Failure;
use crate::components::card::{card_message, input_value, js_json};
use crate::i18n::T;
use crate::Ctx;
use device::ThisDevice;

/// Where the terminal is in a payment.
#[derive(Clone, PartialEq)]
enum Step {
    /// Reading this browser's enrolment.
    Loading,
    /// Not enrolled: the pairing code.
    Enrol,
    /// Staff type the amount.
    Amount,
    /// The card and its PIN.
    Card { amount: i64 },
    /// The points usable here, for the resident to confirm.
    Confirm { amount: i64, balances: CounterBalances },
    /// Paid: what is left, and the receipt.
    Paid { receipt: PartyReceipt, paid_with: UsablePoints },
    /// Staff name the payment to refund and the points to give back.
    Refund,
    /// The card of the resident who paid, and its PIN, sign the refund.
    RefundCard { payment: Uuid, amount: i64 },
    /// Refunded: the refund's receipt.
    Refunded { receipt: PartyReceipt },
    /// The daily close.
    Close,
    /// Facility mode: look up or link the patron number.
    Facility,
    /// The card for a patron number: read it, or link `link` to the card's holder.
    PatronCard { link: Option<String> },
    /// The patron number the card read or linked.
    Patron { number: String, linked: bool },
    /// Staff type the points for a voucher.
    VoucherAmount,
    /// The card and its PIN, for a voucher of `amount`.
    VoucherCard { amount: i64 },
    /// The municipality's points held and left after the voucher, to confirm.
    VoucherConfirm { amount: i64, balances: CounterBalances },
    /// The voucher to print, and the points left.
    VoucherIssued { voucher: Box<VoucherIssued>, left: i64 },
    /// A voucher scanned or typed, to take as payment.
    VoucherRedeem,
    /// Paid with a voucher.
    VoucherRedeemed { redeemed: VoucherRedeemed },
}

/// What the card step does once the PIN is typed.
#[derive(Clone, PartialEq)]
enum CardTask {
    /// Reads the points usable at this shop, for a payment of `amount`.
    Balances { amount: i64 },
    /// Signs the refund of `amount` points of `payment` and sends it.
    Refund { payment: Uuid, amount: i64 },
    /// Reads the facility's patron number, or links `link` to the card's holder.
    Patron { link: Option<String> },
    /// Reads the points usable at this shop, for a voucher of `amount`.
    Voucher { amount: i64 },
}

/// What the card step did.
enum CardDone {
    /// The points usable here, for a payment of the amount.
    Balances(CounterBalances, i64),
    /// The refund made.
    Refunded(PartyReceipt),
    /// The patron number read or linked.
    Patron { number: String, linked: bool },
    /// The points usable here, for a voucher of the amount.
    Voucher(CounterBalances, i64),
}

/// Points as the screen and the receipt show them: `1,200ポイント`.
fn pt(ctx: &Ctx, n: i64) -> String {
    format!("{}{}", grouped(n), ctx.t(T::points_suffix))
}

/// A number grouped by thousands: `-1,200`.
fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::from(if n < 0 { "-" } else { "" });
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What to call points usable here: an event programme's name, or the municipality's points.
fn usable_name(ctx: &Ctx, u: &UsablePoints) -> String {
    match u.event {
        Some(_) => u.name.clone(),
        None => ctx.t(T::term_municipal).to_owned(),
    }
}

/// A refusal in staff's words.
fn refusal(ctx: &Ctx, f: &Failure) -> String {
    match f.slug.as_str() {
        "network" | "unavailable" | "internal" | "server" => ctx.t(T::term_offline).to_owned(),
        "pairing-code-invalid" => ctx.t(T::term_code_invalid).to_owned(),
        "device-revoked" => ctx.t(T::term_revoked).to_owned(),
        "signature-expired" => ctx.t(T::term_clock).to_owned(),
        "insufficient-points" => ctx.t(T::term_not_enough).to_owned(),
        "card-rejected" => ctx.t(T::err_card_rejected).to_owned(),
        "not-found" => ctx.t(T::term_no_mykey_id).to_owned(),
        "rate-limited" => ctx.t(T::err_rate_limited).to_owned(),
        "voucher-limit" => ctx.t(T::vou_limit).to_owned(),
        _ => f.detail.clone(),
    }
}

/// The page.
#[function_component(Terminal)]
pub fn terminal() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let step = use_state(|| Step::Loading);
    let this: Rc<RefCell<Option<ThisDevice>>> = use_mut_ref(|| None);
    let error = use_state(|| None::<String>);
    let busy = use_state(|| false);
    let online = use_state(|| web_sys::window().map(|w| w.navigator().on_line()).unwrap_or(true));
    // What staff typed stays on the screen after a refusal.
    let typed = use_state(Typed::default);
    {
        let (step, this, error, ctx) = (step.clone(), this.clone(), error.clone(), ctx.clone());
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                match ThisDevice::stored().await {
                    Ok(Some(d)) => {
                        *this.borrow_mut() = Some(d);
                        step.set(Step::Amount);
                    }
                    Ok(None) => step.set(Step::Enrol),
                    Err(f) => {
                        error.set(Some(refusal(&ctx, &f)));
                        step.set(Step::Enrol);
                    }
                }
            });
        });
    }
    {
        // The connection as the browser sees it: offline, the terminal says so and takes nothing.
        let online = online.clone();
        use_effect_with((), move |_| {
            let window = web_sys::window().expect("a window");
            let set = |v: bool| {
                let online = online.clone();
                wasm_bindgen::closure::Closure::<dyn Fn()>::new(move || online.set(v))
            };
            let (up, down) = (set(true), set(false));
            let _ = window.add_event_listener_with_callback("online", up.as_ref().unchecked_ref());
            let _ = window.add_event_listener_with_callback("offline", down.as_ref().unchecked_ref());
            move || {
                let _ = window.remove_event_listener_with_callback("online", up.as_ref().unchecked_ref());
                let _ = window.remove_event_listener_with_callback("offline", down.as_ref().unchecked_ref());
            }
        });
    }
    let alert = error.as_ref().map(|m| html! { <p class="error" role="alert" id="term-error">{ m }</p> });
    let offline =
        (!*online).then(|| html! { <p class="error" role="alert" id="term-offline">{ ctx.t(T::term_offline) }</p> });
    let who = this.borrow().as_ref().map(|d| {
        html! { <p class="muted" id="term-device">{ format!("{}: {} / {} {}", ctx.t(T::term_this_device), d.device.name.as_str(), ctx.t(T::term_shop), d.device.shop) }</p> }
    });
    let body = match (*step).clone() {
        Step::Loading => html! { <p role="status">{ ctx.t(T::loading) }</p> },
        Step::Enrol => enrol_form(&ctx, &step, &this, &error, &busy, &typed),
        Step::Amount => html! {
            <>
                { amount_form(&ctx, &step, &error, *online, &typed) }
                { forget_button(&ctx, &step, &this, &error) }
            </>
        },
        Step::Card { amount } => card_step(&step, &this, *online, CardTask::Balances { amount }),
        Step::RefundCard { payment, amount } => card_step(&step, &this, *online, CardTask::Refund { payment, amount }),
        Step::Refund => refund_form(&ctx, &step, &error, *online, &typed),
        Step::Refunded { receipt } => refunded(&ctx, &step, &receipt),
        Step::Facility => facility::facility_form(&ctx, &step, &error, *online, &typed),
        Step::PatronCard { link } => card_step(&step, &this, *online, CardTask::Patron { link }),
        Step::Patron { number, linked } => facility::patron(&ctx, &step, &number, linked),
        Step::Close => html! {
            <close::Close device={this.borrow().clone().expect("enrolled")}
                on_back={{ let step = step.clone(); Callback::from(move |_| step.set(Step::Amount)) }} />
        },
        Step::Confirm { amount, balances } => html! {
            <Confirm amount={amount} balances={balances} device={this.borrow().clone().expect("enrolled")} online={*online}
                on_paid={{
                    let step = step.clone();
                    Callback::from(move |(receipt, paid_with): (PartyReceipt, UsablePoints)| step.set(Step::Paid { receipt, paid_with }))
                }}
                on_cancel={{ let step = step.clone(); Callback::from(move |_| step.set(Step::Amount)) }} />
        },
        Step::Paid { receipt, paid_with } => paid(&ctx, &step, &receipt, &paid_with),
        Step::VoucherAmount => voucher::amount_form(&ctx, &step, &error, *online, &typed),
        Step::VoucherCard { amount } => card_step(&step, &this, *online, CardTask::Voucher { amount }),
        Step::VoucherConfirm { amount, balances } => html! {
            <voucher::IssueConfirm amount={amount} balances={balances} device={this.borrow().clone().expect("enrolled")}
                online={*online}
                on_issued={{
                    let step = step.clone();
                    Callback::from(move |(v, left): (VoucherIssued, i64)| step.set(Step::VoucherIssued { voucher: Box::new(v), left }))
                }}
                on_cancel={{ let step = step.clone(); Callback::from(move |_| step.set(Step::Amount)) }} />
        },
        Step::VoucherIssued { voucher, left } => voucher::issued(&ctx, &step, &voucher, left),
        Step::VoucherRedeem => {
            let device = this.borrow().clone().expect("enrolled");
            voucher::redeem_form(&ctx, &step, &device, &error, *online, &typed)
        }
        Step::VoucherRedeemed { redeemed } => voucher::redeemed(&ctx, &step, &redeemed),
    };
    html! {
        <section class="terminal" aria-labelledby="term-title">
            <h1 id="term-title">{ ctx.t(T::term_title) }</h1>
            { who }
            { offline }
            { body }
            { alert }
        </section>
    }
}

/// The card step for `task`: on to the confirmation or the refund's receipt, back to the
/// amount on cancel.
fn card_step(
    step: &UseStateHandle<Step>,
    this: &Rc<RefCell<Option<ThisDevice>>>,
    online: bool,
    task: CardTask,
) -> Html {
    let done = {
        let step = step.clone();
        Callback::from(move |d: CardDone| {
            step.set(match d {
                CardDone::Balances(balances, amount) => Step::Confirm { amount, balances },
                CardDone::Refunded(receipt) => Step::Refunded { receipt },
                CardDone::Patron { number, linked } => Step::Patron { number, linked },
                CardDone::Voucher(balances, amount) => Step::VoucherConfirm { amount, balances },
            })
        })
    };
    html! {
        <CardAtCounter task={task} device={this.borrow().clone().expect("enrolled")} online={online} on_done={done}
            on_cancel={{ let step = step.clone(); Callback::from(move |_| step.set(Step::Amount)) }} />
    }
}

/// The fields staff type, kept across renders.
#[derive(Clone, Default, PartialEq)]
struct Typed {
    code: String,
    name: String,
    amount: String,
    /// The payment to refund: its transaction id, or its receipt's QR code as a scanner types it.
    payment: String,
    refund: String,
    /// A patron number to link, in facility mode.
    patron: String,
    /// A voucher's QR code as a scanner types it, or its number.
    voucher: String,
}

/// A button's callback that goes to `to`, clearing the last refusal.
fn go(step: &UseStateHandle<Step>, error: &UseStateHandle<Option<String>>, to: Step) -> Callback<MouseEvent> {
    let (step, error) = (step.clone(), error.clone());
    Callback::from(move |_| {
        error.set(None);
        step.set(to.clone())
    })
}

/// The payment a refund names: a transaction id, or a receipt's QR code (its text or address).
fn payment_of(typed: &str) -> Option<Uuid> {
    let typed = typed.trim();
    LogReceipt::parse(typed).map(|r| r.transaction).ok().or_else(|| Uuid::try_parse(typed).ok())
}

/// Whole points of at least one, as staff typed them.
fn points_of(typed: &str) -> Option<i64> {
    mykey_core::Points::from_decimal(typed.trim().parse::<Decimal>().ok()?).ok().map(|p| p.get())
}

/// A callback that keeps an input's text in `typed` with `set`.
fn keep(typed: &UseStateHandle<Typed>, set: fn(&mut Typed, String)) -> Callback<InputEvent> {
    let typed = typed.clone();
    Callback::from(move |e: InputEvent| {
        let mut t = (*typed).clone();
        set(&mut t, input_value(&e));
        typed.set(t);
    })
}

fn enrol_form(
    ctx: &Ctx,
    step: &UseStateHandle<Step>,
    this: &Rc<RefCell<Option<ThisDevice>>>,
    error: &UseStateHandle<Option<String>>,
    busy: &UseStateHandle<bool>,
    typed: &UseStateHandle<Typed>,
) -> Html {
    let submit = {
        let (ctx, step, this, error, busy, typed) =
            (ctx.clone(), step.clone(), this.clone(), error.clone(), busy.clone(), typed.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let (code, name) = (typed.code.clone(), typed.name.clone());
            let Ok(name) = DeviceName::parse(name.trim()) else {
                error.set(Some(ctx.t(T::term_name_invalid).to_owned()));
                return;
            };
            let (ctx, step, this, error, busy) = (ctx.clone(), step.clone(), this.clone(), error.clone(), busy.clone());
            busy.set(true);
            error.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                match ThisDevice::enrol(&code, name).await {
                    Ok(d) => {
                        *this.borrow_mut() = Some(d);
                        step.set(Step::Amount);
                    }
                    Err(f) => error.set(Some(refusal(&ctx, &f))),
                }
                busy.set(false);
            });
        })
    };
    html! {
        <>
            <h2>{ ctx.t(T::term_enrol_title) }</h2>
            <p>{ ctx.t(T::term_enrol_hint) }</p>
            <form onsubmit={submit} class="terminal-form">
                <label for="code">{ ctx.t(T::term_code) }</label>
                <input id="code" name="code" autocomplete="off" autocapitalize="characters" maxlength="9" required=true
                    aria-describedby="term-error" value={typed.code.clone()} oninput={keep(typed, |t, v| t.code = v)} />
                <label for="name">{ ctx.t(T::term_name) }</label>
                <input id="name" name="name" autocomplete="off" maxlength="64" required=true
                    value={typed.name.clone()} oninput={keep(typed, |t, v| t.name = v)} />
                <button type="submit" class="primary big" disabled={**busy}>{ ctx.t(T::term_enrol) }</button>
            </form>
        </>
    }
}

/// A form's submit that reads the typed amount as whole points and goes on to `to(amount)`,
/// clearing it; or says the amount is none.
fn amount_submit(
    ctx: &Ctx,
    step: &UseStateHandle<Step>,
    error: &UseStateHandle<Option<String>>,
    typed: &UseStateHandle<Typed>,
    to: fn(i64) -> Step,
) -> Callback<SubmitEvent> {
    let (ctx, step, error, typed) = (ctx.clone(), step.clone(), error.clone(), typed.clone());
    Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        match points_of(&typed.amount) {
            Some(amount) => {
                error.set(None);
                typed.set(Typed { amount: String::new(), ..(*typed).clone() });
                step.set(to(amount));
            }
            None => error.set(Some(ctx.t(T::term_amount_invalid).to_owned())),
        }
    })
}

fn amount_form(
    ctx: &Ctx,
    step: &UseStateHandle<Step>,
    error: &UseStateHandle<Option<String>>,
    online: bool,
    typed: &UseStateHandle<Typed>,
) -> Html {
    let submit = amount_submit(ctx, step, error, typed, |amount| Step::Card { amount });
    html! {
        <>
            <h2>{ ctx.t(T::term_amount_title) }</h2>
            <form onsubmit={submit} class="terminal-form">
                <label for="amount">{ ctx.t(T::term_amount) }</label>
                <input id="amount" name="amount" inputmode="numeric" autocomplete="off" required=true
                    aria-describedby="term-error" value={typed.amount.clone()} oninput={keep(typed, |t, v| t.amount = v)} />
                <button type="submit" class="primary big" disabled={!online}>{ ctx.t(T::term_next) }</button>
            </form>
            <div class="actions no-print">
                <button type="button" id="term-refund" onclick={go(step, error, Step::Refund)}>{ ctx.t(T::term_refund) }</button>
                <button type="button" id="term-facility" onclick={go(step, error, Step::Facility)}>{ ctx.t(T::term_facility) }</button>
                <button type="button" id="term-voucher-issue" onclick={go(step, error, Step::VoucherAmount)}>{ ctx.t(T::term_voucher_issue) }</button>
                <button type="button" id="term-voucher-pay" onclick={go(step, error, Step::VoucherRedeem)}>{ ctx.t(T::term_voucher_pay) }</button>
                <button type="button" id="term-close" onclick={go(step, error, Step::Close)}>{ ctx.t(T::term_close) }</button>
            </div>
        </>
    }
}

/// The refund's form: which payment (its receipt's QR code scanned, or its transaction id
/// typed) and how many points to give back.
fn refund_form(
    ctx: &Ctx,
    step: &UseStateHandle<Step>,
    error: &UseStateHandle<Option<String>>,
    online: bool,
    typed: &UseStateHandle<Typed>,
) -> Html {
    let submit = {
        let (ctx, step, error, typed) = (ctx.clone(), step.clone(), error.clone(), typed.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(payment) = payment_of(&typed.payment) else {
                return error.set(Some(ctx.t(T::term_refund_payment_invalid).to_owned()));
            };
            let Some(amount) = points_of(&typed.refund) else {
                return error.set(Some(ctx.t(T::term_amount_invalid).to_owned()));
            };
            error.set(None);
            typed.set(Typed { payment: String::new(), refund: String::new(), ..(*typed).clone() });
            step.set(Step::RefundCard { payment, amount });
        })
    };
    html! {
        <>
            <h2>{ ctx.t(T::term_refund_title) }</h2>
            <p>{ ctx.t(T::term_refund_hint) }</p>
            <form onsubmit={submit} class="terminal-form">
                <label for="refund-payment">{ ctx.t(T::term_refund_payment) }</label>
                <input id="refund-payment" name="payment" autocomplete="off" spellcheck="false" required=true
                    maxlength={mykey_core::receipt::MAX_TEXT.saturating_add(200).to_string()}
                    aria-describedby="term-error" value={typed.payment.clone()} oninput={keep(typed, |t, v| t.payment = v)} />
                <label for="refund-amount">{ ctx.t(T::term_refund_amount) }</label>
                <input id="refund-amount" name="refund" inputmode="numeric" autocomplete="off" required=true
                    aria-describedby="term-error" value={typed.refund.clone()} oninput={keep(typed, |t, v| t.refund = v)} />
                <div class="actions">
                    <button type="button" onclick={go(step, error, Step::Amount)}>{ ctx.t(T::term_cancel) }</button>
                    <button type="submit" class="primary big" disabled={!online}>{ ctx.t(T::term_next) }</button>
                </div>
            </form>
        </>
    }
}

/// The refund made: the points given back and the receipt.
fn refunded(ctx: &Ctx, step: &UseStateHandle<Step>, receipt: &PartyReceipt) -> Html {
    let next = {
        let step = step.clone();
        Callback::from(move |_| step.set(Step::Amount))
    };
    html! {
        <>
            <h2 id="term-refunded">{ ctx.t(T::term_refunded) }</h2>
            <dl class="receipt" id="receipt">
                <dt>{ ctx.t(T::term_refund_points) }</dt><dd id="refunded-points">{ pt(ctx, receipt.points) }</dd>
                <dt>{ ctx.t(T::term_when) }</dt><dd>{ jst(receipt.created_at) }</dd>
                <dt>{ ctx.t(T::term_transaction) }</dt><dd id="receipt-id">{ receipt.id.to_string() }</dd>
                <dt>{ ctx.t(T::term_leaf) }</dt><dd>{ receipt.leaf_index }</dd>
            </dl>
            { receipt_qr(ctx, receipt) }
            { receipt_actions(ctx, next) }
        </>
    }
}

/// A receipt's time in Japan.
fn jst(at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).expect("JST")).format("%Y-%m-%d %H:%M").to_string()
}

/// Print and "next customer", under a receipt.
fn receipt_actions(ctx: &Ctx, next: Callback<MouseEvent>) -> Html {
    let print = Callback::from(|_| {
        if let Some(w) = web_sys::window() {
            let _ = w.print();
        }
    });
    html! {
        <div class="actions no-print">
            <button type="button" onclick={print}>{ ctx.t(T::term_print) }</button>
            <button type="button" class="primary big" onclick={next} id="term-next">{ ctx.t(T::term_next_customer) }</button>
        </div>
    }
}

/// Forgets this browser's enrolment (the key is deleted with it): for a terminal the shop
/// revoked or moves elsewhere.
fn forget_button(
    ctx: &Ctx,
    step: &UseStateHandle<Step>,
    this: &Rc<RefCell<Option<ThisDevice>>>,
    error: &UseStateHandle<Option<String>>,
) -> Html {
    let forget = {
        let (ctx, step, this, error) = (ctx.clone(), step.clone(), this.clone(), error.clone());
        Callback::from(move |_| {
            let (ctx, step, this, error) = (ctx.clone(), step.clone(), this.clone(), error.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match ThisDevice::forget().await {
                    Ok(()) => {
                        *this.borrow_mut() = None;
                        error.set(None);
                        step.set(Step::Enrol);
                    }
                    Err(f) => error.set(Some(refusal(&ctx, &f))),
                }
            });
        })
    };
    html! {
        <details class="no-print">
            <summary>{ ctx.t(T::term_settings) }</summary>
            <p>{ ctx.t(T::term_forget_hint) }</p>
            <button type="button" id="term-forget" onclick={forget}>{ ctx.t(T::term_forget) }</button>
        </details>
    }
}

fn paid(ctx: &Ctx, step: &UseStateHandle<Step>, receipt: &PartyReceipt, with: &UsablePoints) -> Html {
    let next = {
        let step = step.clone();
        Callback::from(move |_| step.set(Step::Amount))
    };
    let left = with.available - receipt.points;
    html! {
        <>
            <h2 id="term-paid">{ ctx.t(T::term_paid) }</h2>
            <dl class="receipt" id="receipt">
                <dt>{ ctx.t(T::term_paid_points) }</dt><dd id="paid-points">{ pt(ctx, receipt.points) }</dd>
                <dt>{ ctx.t(T::term_paid_with) }</dt><dd>{ usable_name(ctx, with) }</dd>
                <dt>{ ctx.t(T::term_left) }</dt><dd id="left-points">{ pt(ctx, left) }</dd>
                <dt>{ ctx.t(T::term_when) }</dt><dd>{ jst(receipt.created_at) }</dd>
                <dt>{ ctx.t(T::term_transaction) }</dt><dd id="receipt-id">{ receipt.id.to_string() }</dd>
                <dt>{ ctx.t(T::term_leaf) }</dt><dd>{ receipt.leaf_index }</dd>
            </dl>
            { receipt_qr(ctx, receipt) }
            { receipt_actions(ctx, next) }
        </>
    }
}

/// The QR code of the transaction's log receipt: the address of the page that checks it
/// against the log (`mykey_core::receipt`), for the resident's phone camera.
fn receipt_qr(ctx: &Ctx, receipt: &PartyReceipt) -> Html {
    let origin = web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default();
    let url = LogReceipt::new(receipt.id, receipt.leaf_index, &receipt.leaf_hash).map(|r| r.url(&origin));
    // The server's own answer always carries a well-formed hash and fits a QR code; without
    // them the receipt prints without the code rather than with a wrong one.
    let Ok(svg) = url.as_deref().map_err(|_| ()).and_then(|u| mykey_core::qr::svg(u).map_err(|_| ())) else {
        return html! {};
    };
    html! {
        <figure class="receipt-qr" id="receipt-qr">
            { Html::from_html_unchecked(AttrValue::from(svg)) }
            <figcaption>{ ctx.t(T::term_receipt_qr) }</figcaption>
        </figure>
    }
}

/// Properties of [`CardAtCounter`].
#[derive(Properties, PartialEq)]
struct CardProps {
    task: CardTask,
    device: ThisDevice,
    online: bool,
    on_done: Callback<CardDone>,
    on_cancel: Callback<()>,
}

thread_local! {
    /// The bridge and the PIN between the balance read and the payment's signature, for one
    /// customer: cleared when the payment is signed or cancelled.
    static HELD: RefCell<Option<(CardBridge, String)>> = const { RefCell::new(None) };
}

/// Forgets the held card and PIN (the customer is done, or left).
fn drop_held() {
    HELD.with(|h| *h.borrow_mut() = None);
}

/// A cancel button's callback: drops the held card and PIN, then `on_cancel`.
fn cancelling(on_cancel: &Callback<()>) -> Callback<MouseEvent> {
    let on_cancel = on_cancel.clone();
    Callback::from(move |_| {
        drop_held();
        on_cancel.emit(());
    })
}

/// The amount being paid, large, as both card steps show it.
fn amount_line(ctx: &Ctx, amount: i64) -> Html {
    html! { <p class="amount" id="term-amount">{ format!("{}: {}", ctx.t(T::term_amount_title), pt(ctx, amount)) }</p> }
}

/// Signs `nonce` with the held card in this counter's context.
async fn sign_here(ctx: &Ctx, device: &ThisDevice, nonce: &str) -> Result<AuthToken, String> {
    let context = SigningContext::Counter { shop: device.device.shop, device: device.device.id };
    let context = serde_wasm_context(&context);
    let (mut bridge, pin) = HELD.with(|h| h.borrow_mut().take()).ok_or_else(|| ctx.t(T::server_error).to_owned())?;
    let token = bridge.authenticate(nonce.to_owned(), pin.clone(), Some(context)).await;
    HELD.with(|h| *h.borrow_mut() = Some((bridge, pin)));
    let token = token.map_err(|e| card_message(ctx, &e))?;
    serde_json::from_value(js_json(&token)).map_err(|e| e.to_string())
}

fn serde_wasm_context(c: &SigningContext) -> js_sys::Object {
    js_sys::JSON::parse(&serde_json::to_string(c).expect("JSON")).expect("JSON").unchecked_into()
}

/// The points usable at this shop, read with the held card's signature of a balance challenge.
async fn read_balances(ctx: &Ctx, device: &ThisDevice) -> Result<CounterBalances, String> {
    let shop = device.device.shop;
    let ch: NonceIssued =
        device.post(&format!("/v1/shops/{shop}/balance-challenges"), &json!({})).await.map_err(|f| refusal(ctx, &f))?;
    let token = sign_here(ctx, device, &ch.nonce).await?;
    device
        .post(&format!("/v1/shops/{shop}/counter-balances"), &json!({"nonce": ch.nonce, "token": token}))
        .await
        .map_err(|f| refusal(ctx, &f))
}

/// Refunds `amount` points of `payment` with the held card's signature of the refund's terms.
async fn refund(ctx: &Ctx, device: &ThisDevice, payment: Uuid, amount: i64) -> Result<PartyReceipt, String> {
    let shop = device.device.shop;
    let terms = CounterRefundChallengeRequest { payment, amount: Decimal::from(amount) };
    let ch: NonceIssued = device
        .post(&format!("/v1/shops/{shop}/refund-challenges"), &terms)
        .await
        .map_err(|f| refund_refusal(ctx, &f))?;
    let token = sign_here(ctx, device, &ch.nonce).await?;
    let request = CounterRefundRequest { payment, amount: Decimal::from(amount), nonce: ch.nonce, token };
    device.post(&format!("/v1/shops/{shop}/counter-refunds"), &request).await.map_err(|f| refund_refusal(ctx, &f))
}

/// A refund's refusal in staff's words.
fn refund_refusal(ctx: &Ctx, f: &Failure) -> String {
    match f.slug.as_str() {
        "card-not-payer" => ctx.t(T::term_refund_not_payer).to_owned(),
        "payment-refunded" => ctx.t(T::term_refund_done_before).to_owned(),
        "refund-exceeds-capture" => ctx.t(T::term_refund_too_much).to_owned(),
        "not-found" => ctx.t(T::term_refund_no_payment).to_owned(),
        _ => refusal(ctx, f),
    }
}

/// The card step: a bridge, the PIN, then the task: a balance read signed for this shop, or a
/// refund signed by the card of the resident who paid.
#[function_component(CardAtCounter)]
fn card_at_counter(p: &CardProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let bridges = use_state(|| None::<Value>);
    let chosen = use_state(|| None::<String>);
    let error = use_state(|| None::<String>);
    let busy = use_state(|| false);
    {
        let bridges = bridges.clone();
        use_effect_with((), move |_| {
            drop_held();
            wasm_bindgen_futures::spawn_local(async move {
                let list = mykey_sdk::card::list_bridges().await.map(|v| js_json(&v)).unwrap_or_default();
                bridges.set(Some(list));
            });
        });
    }
    let choose = |k: &'static str| {
        let (ctx, chosen, error, busy) = (ctx.clone(), chosen.clone(), error.clone(), busy.clone());
        Callback::from(move |_| {
            let (ctx, chosen, error, busy) = (ctx.clone(), chosen.clone(), error.clone(), busy.clone());
            busy.set(true);
            error.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                match mykey_sdk::card::connect(k, js_sys::Object::new().into()).await {
                    Ok(b) => {
                        HELD.with(|h| *h.borrow_mut() = Some((b, String::new())));
                        chosen.set(Some(k.to_owned()));
                    }
                    Err(e) => error.set(Some(card_message(&ctx, &e))),
                }
                busy.set(false);
            });
        })
    };
    let read = {
        let (ctx, error, busy, device, task, on_done) =
            (ctx.clone(), error.clone(), busy.clone(), p.device.clone(), p.task.clone(), p.on_done.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let form: web_sys::HtmlFormElement = e.target_unchecked_into();
            let pin =
                web_sys::FormData::new_with_form(&form).ok().and_then(|d| d.get("pin").as_string()).unwrap_or_default();
            if mykey_core::card::jpki::Pin::parse(&pin).is_err() {
                error.set(Some(ctx.t(T::pin_format).to_owned()));
                return;
            }
            HELD.with(|h| {
                if let Some((_, held)) = h.borrow_mut().as_mut() {
                    *held = pin;
                }
            });
            let (ctx, error, busy, device, task, on_done) =
                (ctx.clone(), error.clone(), busy.clone(), device.clone(), task.clone(), on_done.clone());
            busy.set(true);
            error.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                let result = match task {
                    CardTask::Balances { amount } => {
                        read_balances(&ctx, &device).await.map(|b| CardDone::Balances(b, amount))
                    }
                    CardTask::Refund { payment, amount } => {
                        refund(&ctx, &device, payment, amount).await.map(CardDone::Refunded)
                    }
                    CardTask::Voucher { amount } => {
                        read_balances(&ctx, &device).await.map(|b| CardDone::Voucher(b, amount))
                    }
                    CardTask::Patron { link } => {
                        let linked = link.is_some();
                        facility::patron_by_card(&ctx, &device, link)
                            .await
                            .map(|number| CardDone::Patron { number, linked })
                    }
                };
                busy.set(false);
                match result {
                    // Done with this customer's card: only a payment needs it again.
                    Ok(d @ (CardDone::Refunded(_) | CardDone::Patron { .. })) => {
                        drop_held();
                        on_done.emit(d);
                    }
                    Ok(d) => on_done.emit(d),
                    Err(m) => error.set(Some(m)),
                }
            });
        })
    };
    let cancel = cancelling(&p.on_cancel);
    let alert = error.as_ref().map(|m| html! { <p class="error" role="alert" id="card-error">{ m }</p> });
    let amount = match &p.task {
        CardTask::Balances { amount } => amount_line(&ctx, *amount),
        CardTask::Voucher { amount } => voucher::voucher_line(&ctx, *amount),
        CardTask::Refund { amount, .. } => html! {
            <p class="amount" id="term-amount">{ format!("{}: {}", ctx.t(T::term_refund_amount), pt(&ctx, *amount)) }</p>
        },
        CardTask::Patron { link: None } => html! { <p class="amount" id="term-amount">{ ctx.t(T::fac_lookup) }</p> },
        CardTask::Patron { link: Some(number) } => html! {
            <p class="amount" id="term-amount">{ format!("{}: {number}", ctx.t(T::fac_link)) }</p>
        },
    };
    if chosen.is_none() {
        let items = bridges.as_ref().and_then(|v| v.as_array().cloned()).unwrap_or_default();
        let button = |k: &'static str, label: T| {
            let available = items.iter().any(|b| b["kind"] == k && b["available"] == true);
            html! {
                <li>
                    <button type="button" class={classes!("big", (k == "virtual").then_some("demo"))} disabled={!available || *busy}
                        onclick={choose(k)} id={format!("bridge-{k}")}>{ ctx.t(label) }</button>
                    if !available { <span class="muted">{ format!(" ({})", ctx.t(T::bridge_unavailable)) }</span> }
                </li>
            }
        };
        return html! {
            <>
                <h2>{ ctx.t(T::term_card_title) }</h2>
                { amount }
                if bridges.is_none() { <p role="status">{ ctx.t(T::loading) }</p> }
                <ul class="choices">
                    { button("native-messaging", T::bridge_native) }
                    { button("webusb", T::bridge_webusb) }
                    { button("virtual", T::bridge_virtual) }
                </ul>
                { alert }
                <div class="actions"><button type="button" onclick={cancel}>{ ctx.t(T::term_cancel) }</button></div>
            </>
        };
    }
    html! {
        <>
            <h2>{ ctx.t(T::term_pin_title) }</h2>
            { amount }
            if chosen.as_deref() == Some("virtual") { <p class="demo-label">{ ctx.t(T::demo_pin) }</p> }
            <form onsubmit={read} class="terminal-form">
                <label for="pin">{ ctx.t(T::pin_label) }</label>
                <input id="pin" name="pin" type="password" inputmode="numeric" autocomplete="off" maxlength="4"
                    aria-describedby="card-error" aria-invalid={error.is_some().to_string()} />
                { alert }
                <div class="actions">
                    <button type="button" onclick={cancel}>{ ctx.t(T::term_cancel) }</button>
                    <button type="submit" class="primary big" disabled={*busy || !p.online}>{ ctx.t(T::read_card) }</button>
                </div>
            </form>
        </>
    }
}

/// Properties of [`Confirm`].
#[derive(Properties, PartialEq)]
struct ConfirmProps {
    amount: i64,
    balances: CounterBalances,
    device: ThisDevice,
    online: bool,
    on_paid: Callback<(PartyReceipt, UsablePoints)>,
    on_cancel: Callback<()>,
}

/// The points usable here and the confirmation: the card signs the payment's terms.
#[function_component(Confirm)]
fn confirm(p: &ConfirmProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let error = use_state(|| None::<String>);
    let busy = use_state(|| false);
    let enough = p.balances.usable.iter().position(|u| u.available >= p.amount);
    let choice = use_state(|| enough.unwrap_or(0));
    let pay = {
        let (ctx, error, busy, device, amount, balances, choice, on_paid) = (
            ctx.clone(),
            error.clone(),
            busy.clone(),
            p.device.clone(),
            p.amount,
            p.balances.clone(),
            choice.clone(),
            p.on_paid.clone(),
        );
        Callback::from(move |_| {
            let (ctx, error, busy, device, balances, on_paid) =
                (ctx.clone(), error.clone(), busy.clone(), device.clone(), balances.clone(), on_paid.clone());
            let with = balances.usable[*choice].clone();
            busy.set(true);
            error.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                let shop = device.device.shop;
                let result: Result<PartyReceipt, String> = async {
                    let terms = CounterChallengeRequest {
                        kind: CounterKind::Payment,
                        municipality: balances.municipality,
                        event: with.event,
                        amount: Decimal::from(amount),
                        timeout_seconds: None,
                        memo: None,
                    };
                    let ch: NonceIssued = device
                        .post(&format!("/v1/shops/{shop}/counter-challenges"), &terms)
                        .await
                        .map_err(|f| refusal(&ctx, &f))?;
                    let token = sign_here(&ctx, &device, &ch.nonce).await?;
                    let payment = CounterPaymentRequest {
                        id: device::random_id().map_err(|f| refusal(&ctx, &f))?,
                        municipality: balances.municipality,
                        event: with.event,
                        amount: Decimal::from(amount),
                        memo: None,
                        nonce: ch.nonce,
                        token,
                    };
                    device
                        .post(&format!("/v1/shops/{shop}/counter-payments"), &payment)
                        .await
                        .map_err(|f| refusal(&ctx, &f))
                }
                .await;
                busy.set(false);
                match result {
                    Ok(r) => {
                        drop_held();
                        on_paid.emit((r, with));
                    }
                    Err(m) => error.set(Some(m)),
                }
            });
        })
    };
    let cancel = cancelling(&p.on_cancel);
    let rows = p.balances.usable.iter().enumerate().map(|(i, u)| {
        let pick = {
            let choice = choice.clone();
            Callback::from(move |_| choice.set(i))
        };
        html! {
            <li>
                <input type="radio" name="with" id={format!("with-{i}")} checked={*choice == i} onchange={pick} />
                <label for={format!("with-{i}")}>
                    { format!("{}: {}", usable_name(&ctx, u), pt(&ctx, u.available)) }
                </label>
            </li>
        }
    });
    let short = p.balances.usable.get(*choice).is_none_or(|u| u.available < p.amount);
    html! {
        <>
            <h2>{ ctx.t(T::term_confirm_title) }</h2>
            { amount_line(&ctx, p.amount) }
            if p.balances.usable.is_empty() {
                <p id="term-none">{ ctx.t(T::term_none_usable) }</p>
            } else {
                <fieldset>
                    <legend>{ ctx.t(T::term_usable_here) }</legend>
                    <ul class="choices" id="usable">{ for rows }</ul>
                </fieldset>
            }
            if short && !p.balances.usable.is_empty() { <p class="error" role="alert">{ ctx.t(T::term_not_enough) }</p> }
            if let Some(m) = error.as_ref() { <p class="error" role="alert" id="pay-error">{ m }</p> }
            <div class="actions">
                <button type="button" onclick={cancel}>{ ctx.t(T::term_cancel) }</button>
                <button type="button" class="primary big" id="term-pay" onclick={pay} disabled={*busy || short || !p.online}>
                    { ctx.t(T::term_pay) }
                </button>
            </div>
        </>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn points_are_grouped_by_thousands() {
        let ctx = Ctx { lang: crate::i18n::Lang::Ja };
        assert_eq!(pt(&ctx, 0), "0ポイント");
        assert_eq!(pt(&ctx, 999), "999ポイント");
        assert_eq!(pt(&ctx, 1200), "1,200ポイント");
        assert_eq!(pt(&ctx, 1234567), "1,234,567ポイント");
        assert_eq!(pt(&ctx, -1000), "-1,000ポイント");
        assert_eq!(grouped(-200), "-200");
    }

    #[test]
    fn a_counter_signs_in_its_own_context_as_the_sdk_reads_it() {
        let device = uuid::Uuid::nil();
        let v = serde_wasm_context(&SigningContext::Counter { shop: 7, device });
        assert_eq!(js_json(&v.into()), json!({"kind": "counter", "shop": 7, "device": device}));
    }
}
