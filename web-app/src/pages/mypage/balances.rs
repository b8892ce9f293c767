//! Balances per kind and municipality, the next points to expire, when reserved points move home.

use mykey_core::api::AccountKind;
use yew::prelude::*;

use super::{account_label, date, State};
use crate::i18n::T;
use crate::Ctx;

/// The balances sub-page (my page's first).
#[function_component(Balances)]
pub fn balances(p: &super::SubProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let State::In(loaded) = &*p.state else { return html! {} };
    let list = p.municipality_list();
    let accounts = loaded.balances.as_ref().map(|b| b.accounts.as_slice()).unwrap_or_default();
    let moves_home = loaded.balances.as_ref().and_then(|b| b.reserved_moves_home_at);
    html! {
        <>
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
                        let next = match &a.next_expiry {
                            Some(e) if a.kind != AccountKind::Reserved => {
                                format!("{} pt（{}）", e.points, date(&ctx, e.at))
                            }
                            _ => "-".to_owned(),
                        };
                        html! {
                            <tr>
                                <td>{ account_label(&ctx, &list, a) }</td>
                                <td class="num">{ a.balance }</td>
                                <td>{ next }</td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
            if let Some(at) = moves_home {
                <p id="moves-home">{ format!("{}{}{}", ctx.t(T::moves_home_before), date(&ctx, at), ctx.t(T::moves_home_after)) }</p>
            }
        </section>
        <super::vouchers::Vouchers />
        </>
    }
}
