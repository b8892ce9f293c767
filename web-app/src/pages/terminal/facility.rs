//! Facility mode (library and museum counters): the resident's card links the MyKey ID to the
//! facility's patron number, or a card read shows that number (`/v1/facilities/{shop}/…`). The
//! card signs in this counter's context; the screen shows the patron number and nothing else.

use mykey_core::identity::{CardPurpose, NonceIssued, PatronLink, PatronLookup};
use serde_json::json;
use yew::prelude::*;

use super::device::ThisDevice;
use super::{go, keep, refusal, sign_here, Step, Typed};
use crate::api::Failure;
use crate::i18n::T;
use crate::Ctx;

/// What the facility screen asks of the card.
pub(super) fn facility_form(
    ctx: &Ctx,
    step: &UseStateHandle<Step>,
    error: &UseStateHandle<Option<String>>,
    online: bool,
    typed: &UseStateHandle<Typed>,
) -> Html {
    let link = {
        let (ctx, step, error, typed) = (ctx.clone(), step.clone(), error.clone(), typed.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let number = typed.patron.trim().to_owned();
            if !mykey_core::identity::check_service_id(&number) {
                return error.set(Some(ctx.t(T::fac_number_invalid).to_owned()));
            }
            error.set(None);
            typed.set(Typed { patron: String::new(), ..(*typed).clone() });
            step.set(Step::PatronCard { link: Some(number) })
        })
    };
    html! {
        <>
            <h2>{ ctx.t(T::fac_title) }</h2>
            <p>{ ctx.t(T::fac_hint) }</p>
            <div class="actions">
                <button type="button" class="primary big" id="fac-lookup" disabled={!online} onclick={go(step, error, Step::PatronCard { link: None })}>{ ctx.t(T::fac_lookup) }</button>
            </div>
            <form onsubmit={link} class="terminal-form">
                <h3>{ ctx.t(T::fac_link_title) }</h3>
                <label for="patron-number">{ ctx.t(T::fac_number) }</label>
                <input id="patron-number" name="patron" autocomplete="off" spellcheck="false" maxlength="64" required=true
                    aria-describedby="term-error" value={typed.patron.clone()} oninput={keep(typed, |t, v| t.patron = v)} />
                <div class="actions">
                    <button type="button" onclick={go(step, error, Step::Amount)}>{ ctx.t(T::term_cancel) }</button>
                    <button type="submit" class="big" id="fac-link" disabled={!online}>{ ctx.t(T::fac_link) }</button>
                </div>
            </form>
        </>
    }
}

/// The patron number the card read or linked, large.
pub(super) fn patron(ctx: &Ctx, step: &UseStateHandle<Step>, number: &str, linked: bool) -> Html {
    let next = {
        let step = step.clone();
        Callback::from(move |_| step.set(Step::Amount))
    };
    html! {
        <>
            <h2>{ ctx.t(if linked { T::fac_linked } else { T::fac_found }) }</h2>
            <p class="amount" id="patron">{ format!("{}: {number}", ctx.t(T::fac_number)) }</p>
            <div class="actions">
                <button type="button" class="primary big" id="term-next" onclick={next}>{ ctx.t(T::term_next_customer) }</button>
            </div>
        </>
    }
}

/// The facility's patron number for the held card's holder, or the link of `link` to it.
pub(super) async fn patron_by_card(ctx: &Ctx, device: &ThisDevice, link: Option<String>) -> Result<String, String> {
    let shop = device.device.shop;
    let purpose = if link.is_some() { CardPurpose::PatronLink } else { CardPurpose::PatronLookup };
    let ch: NonceIssued = device
        .post(&format!("/v1/facilities/{shop}/challenges"), &json!({ "purpose": purpose }))
        .await
        .map_err(|f| facility_refusal(ctx, &f))?;
    let token = sign_here(ctx, device, &ch.nonce).await?;
    match link {
        Some(number) => {
            let body = json!({"nonce": ch.nonce, "token": token, "patron_number": number});
            let done: PatronLink = device
                .post(&format!("/v1/facilities/{shop}/patrons"), &body)
                .await
                .map_err(|f| facility_refusal(ctx, &f))?;
            Ok(done.patron_number)
        }
        None => {
            let body = json!({"nonce": ch.nonce, "token": token});
            let found: PatronLookup = device
                .post(&format!("/v1/facilities/{shop}/lookups"), &body)
                .await
                .map_err(|f| facility_refusal(ctx, &f))?;
            Ok(found.patron_number)
        }
    }
}

/// A facility's refusal in staff's words.
fn facility_refusal(ctx: &Ctx, f: &Failure) -> String {
    match f.slug.as_str() {
        "not-found" => match f.body["reason"].as_str() {
            Some("no-service") => ctx.t(T::fac_no_service).to_owned(),
            Some("no-mykey-id") => ctx.t(T::term_no_mykey_id).to_owned(),
            _ => ctx.t(T::fac_not_linked).to_owned(),
        },
        "service-id-taken" => ctx.t(T::fac_taken).to_owned(),
        "invalid-request" if f.field.as_deref() == Some("patron_number") => ctx.t(T::fac_number_invalid).to_owned(),
        _ => refusal(ctx, f),
    }
}
