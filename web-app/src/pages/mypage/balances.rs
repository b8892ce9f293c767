//! Balances per kind and municipality, the next points to expire, when reserved points move home.

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
    let balances = &loaded.balances;
    let accounts = balances["accounts"].as_array().cloned().unwrap_or_default();
    html! {
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
                                <td>{ account_label(&ctx, &list, a) }</td>
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
    }
}
