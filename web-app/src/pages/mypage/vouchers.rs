//! The resident's point vouchers (`GET /v1/me/vouchers`): every open one, with its number and
//! validity, then those used or returned lately. Their points are not in the balances above
//! until a voucher expires unused and they come back.

use mykey_core::api::VoucherView;
use mykey_core::voucher::VoucherState;
use yew::prelude::*;

use super::date;
use crate::i18n::T;
use crate::Ctx;

/// The vouchers section of the balances page.
#[function_component(Vouchers)]
pub fn vouchers() -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let list = use_state(|| None::<Result<Vec<VoucherView>, String>>);
    {
        let list = list.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                list.set(Some(crate::api::get::<Vec<VoucherView>>("/v1/me/vouchers").await.map_err(|f| f.detail)));
            });
        });
    }
    let state = |s: VoucherState| match s {
        VoucherState::Open => ctx.t(T::vou_open),
        VoucherState::Redeemed => ctx.t(T::vou_used),
        VoucherState::Returned => ctx.t(T::vou_returned),
    };
    let body = match &*list {
        None => html! { <p role="status">{ ctx.t(T::loading) }</p> },
        Some(Err(m)) => html! { <p class="error" role="alert">{ m }</p> },
        Some(Ok(v)) if v.is_empty() => html! { <p id="vouchers-none">{ ctx.t(T::vou_list_none) }</p> },
        Some(Ok(v)) => html! {
            <ul class="vouchers" id="vouchers">
                { for v.iter().map(|x| {
                    // The last valid day: the day before the midnight it ends at.
                    let last = x.expires_at - chrono::Duration::seconds(1);
                    html! {
                        <li>
                            <p class="voucher-head">
                                <strong>{ format!("{}{}", x.points, ctx.t(T::points_suffix)) }</strong>
                                { format!("（{}）", x.municipality_name) }
                                <span class="voucher-state">{ state(x.state) }</span>
                            </p>
                            <dl class="receipt">
                                <dt>{ ctx.t(T::vou_number) }</dt><dd class="nowrap">{ &x.number }</dd>
                                <dt>{ ctx.t(T::vou_valid) }</dt>
                                <dd>{ format!("{} ～ {}", date(&ctx, x.issued_at), date(&ctx, last)) }</dd>
                                <dt>{ ctx.t(T::vou_shop) }</dt><dd>{ &x.issued_at_shop }</dd>
                            </dl>
                        </li>
                    }
                }) }
            </ul>
        },
    };
    html! {
        <section aria-labelledby="vouchers-title">
            <h2 id="vouchers-title">{ ctx.t(T::vou_list) }</h2>
            { body }
        </section>
    }
}
