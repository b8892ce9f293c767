//! The daily close on the terminal (日計): the shop's day in Japan by municipality, device and
//! kind, from the ledger (`GET /v1/shops/{shop}/daily-close`), printable, and as a CSV file.

use mykey_core::api::{DailyClose, Municipality, TransactionKind};
use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::device::ThisDevice;
use super::{grouped, refusal};
use crate::api::directory::use_municipalities;
use crate::i18n::T;
use crate::Ctx;

/// Properties of [`Close`].
#[derive(Properties, PartialEq)]
pub struct CloseProps {
    /// This terminal.
    pub device: ThisDevice,
    /// Back to taking payments.
    pub on_back: Callback<()>,
}

/// `date=YYYY-MM-DD`, or nothing for today.
fn query(date: &str) -> Option<String> {
    (!date.is_empty()).then(|| format!("date={date}"))
}

/// Offers `text` as a file named `name` (a Blob's address on a link the page clicks).
fn download(name: &str, text: &str) -> Result<(), wasm_bindgen::JsValue> {
    let parts = js_sys::Array::of1(&text.into());
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("text/csv;charset=utf-8");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = document.create_element("a")?.unchecked_into();
    a.set_href(&url);
    a.set_download(name);
    a.click();
    web_sys::Url::revoke_object_url(&url)
}

/// What a kind of transaction is called on the close.
fn kind_name(ctx: &Ctx, k: TransactionKind) -> &'static str {
    match k {
        TransactionKind::Payment => ctx.t(T::close_payments),
        TransactionKind::Refund => ctx.t(T::close_refunds),
        _ => ctx.t(T::close_other),
    }
}

/// The daily close screen.
#[function_component(Close)]
pub fn close(p: &CloseProps) -> Html {
    let ctx = use_context::<Ctx>().expect("context");
    let date = use_state(String::new);
    let close = use_state(|| None::<Result<DailyClose, String>>);
    let municipalities = use_municipalities();
    // Only the answer for the day asked last is shown.
    let latest = use_mut_ref(|| 0u64);
    {
        let (ctx, close, device, latest) = (ctx.clone(), close.clone(), p.device.clone(), latest.clone());
        use_effect_with((*date).clone(), move |date| {
            let (date, close) = (date.clone(), close.clone());
            close.set(None);
            let asked = {
                let mut n = latest.borrow_mut();
                *n += 1;
                *n
            };
            wasm_bindgen_futures::spawn_local(async move {
                let shop = device.device.shop;
                let got =
                    device.get::<DailyClose>(&format!("/v1/shops/{shop}/daily-close"), query(&date).as_deref()).await;
                if *latest.borrow() == asked {
                    close.set(Some(got.map_err(|f| refusal(&ctx, &f))));
                }
            });
        });
    }
    let on_date = {
        let date = date.clone();
        Callback::from(move |e: Event| date.set(e.target_unchecked_into::<HtmlInputElement>().value()))
    };
    let error = use_state(|| None::<String>);
    let csv = {
        let (ctx, device, date, error) = (ctx.clone(), p.device.clone(), date.clone(), error.clone());
        Callback::from(move |_| {
            let (ctx, device, date, error) = (ctx.clone(), device.clone(), (*date).clone(), error.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let shop = device.device.shop;
                match device.get_text(&format!("/v1/shops/{shop}/daily-close.csv"), query(&date).as_deref()).await {
                    Ok(text) => {
                        let day = if date.is_empty() { "today".to_owned() } else { date };
                        if download(&format!("daily-close-{shop}-{day}.csv"), &text).is_err() {
                            error.set(Some(ctx.t(T::server_error).to_owned()));
                        }
                    }
                    Err(f) => error.set(Some(refusal(&ctx, &f))),
                }
            });
        })
    };
    let print = Callback::from(|_| {
        if let Some(w) = web_sys::window() {
            let _ = w.print();
        }
    });
    let back = {
        let on_back = p.on_back.clone();
        Callback::from(move |_| on_back.emit(()))
    };
    let list: Vec<Municipality> = municipalities.as_ref().and_then(|r| r.as_ref().ok()).cloned().unwrap_or_default();
    let place = |id: i64| list.iter().find(|m| m.id == id).map(|m| m.name.clone()).unwrap_or_else(|| id.to_string());
    let body = match &*close {
        None => html! { <p role="status">{ ctx.t(T::loading) }</p> },
        Some(Err(m)) => html! { <p class="error" role="alert" id="close-error">{ m }</p> },
        Some(Ok(c)) => html! {
            <>
                <p id="close-day">{ format!("{}: {}", ctx.t(T::close_day), c.date) }</p>
                if c.lines.is_empty() { <p id="close-none">{ ctx.t(T::close_none) }</p> }
                <table id="close-lines">
                    <thead><tr>
                        <th scope="col">{ ctx.t(T::close_municipality) }</th>
                        <th scope="col">{ ctx.t(T::close_device) }</th>
                        <th scope="col">{ ctx.t(T::close_kind) }</th>
                        <th scope="col" class="num">{ ctx.t(T::close_count) }</th>
                        <th scope="col" class="num">{ ctx.t(T::points) }</th>
                    </tr></thead>
                    <tbody>
                        { for c.lines.iter().map(|l| html! {
                            <tr>
                                <td>{ place(l.municipality) }</td>
                                <td>{ l.device_name.clone().unwrap_or_else(|| ctx.t(T::close_no_device).to_owned()) }</td>
                                <td>{ kind_name(&ctx, l.kind) }</td>
                                <td class="num">{ l.count }</td>
                                <td class="num">{ grouped(l.points) }</td>
                            </tr>
                        }) }
                    </tbody>
                    <tfoot><tr>
                        <th scope="row" colspan="3">{ ctx.t(T::close_total) }</th>
                        <td class="num">{ c.lines.iter().map(|l| l.count).sum::<i64>() }</td>
                        <td class="num" id="close-total">{ grouped(c.net_points) }</td>
                    </tr></tfoot>
                </table>
            </>
        },
    };
    html! {
        <>
            <h2>{ ctx.t(T::close_title) }</h2>
            <div class="field no-print">
                <label for="close-date">{ ctx.t(T::close_pick_day) }</label>
                <input id="close-date" type="date" value={(*date).clone()} onchange={on_date} />
            </div>
            { body }
            if let Some(m) = error.as_ref() { <p class="error" role="alert">{ m }</p> }
            <div class="actions no-print">
                <button type="button" id="close-back" onclick={back}>{ ctx.t(T::close_back) }</button>
                <button type="button" onclick={print}>{ ctx.t(T::close_print) }</button>
                <button type="button" id="close-csv" onclick={csv}>{ ctx.t(T::close_csv) }</button>
            </div>
        </>
    }
}
