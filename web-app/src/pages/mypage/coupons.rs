//! Coupon codes (typed, or from a coupon link) and assigning reserved points to a municipality.

use mykey_core::api::{AssignmentRequest, TransactionReceipt};
use mykey_core::coupon::{CouponCode, CouponError, CouponRedemption};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use super::Municipalities;
use super::{load, message, new_id, resident_of, Msg, State};
use crate::api;
use crate::api::directory::by_prefecture;
use crate::i18n::T;
use crate::Ctx;

/// `?coupon=` of a coupon link (URL delivery).
pub fn coupon_from_url() -> Option<String> {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|s| web_sys::UrlSearchParams::new_with_str(&s).ok())
        .and_then(|p| p.get("coupon"))
}

/// The coupons sub-page.
#[function_component(Coupons)]
pub fn coupons(p: &super::SubProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let coupon = use_state(|| coupon_from_url().unwrap_or_default());
    let coupon_msg = use_state(|| None::<(bool, String)>);
    let assign_to = use_state(|| None::<i64>);
    let amount = use_state(String::new);
    let assign_msg = use_state(|| None::<(bool, String)>);
    html! {
        <>
            { coupon_form(&ctx, &p.state, &coupon, &coupon_msg) }
            { assign_form(&ctx, &p.state, &p.municipalities, &assign_to, &amount, &assign_msg) }
        </>
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
            let body = CouponRedemption { code: code.canonical().to_owned(), resident: resident_of(&state) };
            let (ctx, state, msg, coupon) = (ctx.clone(), state.clone(), msg.clone(), coupon.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<TransactionReceipt>("/v1/coupons/redeem", &body).await {
                    Ok(receipt) => {
                        let points: i64 = receipt.postings.iter().map(|p| p.amount).filter(|a| *a > 0).sum();
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
    municipalities: &Municipalities,
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
            let body =
                AssignmentRequest { id: new_id(), resident: resident_of(&state), municipality: m, amount: n.into() };
            let (ctx, state, msg) = (ctx.clone(), state.clone(), msg.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api::post::<TransactionReceipt>("/v1/assignments", &body).await {
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
