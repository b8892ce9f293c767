//! The WebUSB bridge: Sony PaSoRi RC-S380 (Port-100) and RC-S300 (vendor interface,
//! transparent session) driven from the page through `navigator.usb`, with the shared core's
//! drivers over [`UsbBulk`]. Plain CCID readers cannot be used this way (Chrome protects
//! interface class 0B); they go through the native-messaging bridge.

use js_sys::{Array, Promise, Uint8Array};
use mykey_core::card::bridge::{ErrorCode, Failure};
use mykey_core::card::isodep::IsoDep;
use mykey_core::card::rcs300::Rcs300;
use mykey_core::card::rcs380::Rcs380;
use mykey_core::card::{Transport, TransportError, UsbBulk};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{UsbDevice, UsbDeviceFilter, UsbDeviceRequestOptions, UsbDirection, UsbEndpointType};

/// Sony's vendor id.
pub const SONY: u16 = 0x054C;
/// RC-S380 product ids.
pub const RCS380: [u16; 2] = [0x06C1, 0x06C3];
/// RC-S300 product ids.
pub const RCS300: [u16; 2] = [0x0DC8, 0x0DC9];
/// Largest IN transfer asked for (a Port-100 or escape reply with a 256-byte RF frame fits).
const MAX_IN: u32 = 4096;

/// The vendor interface's bulk endpoints of an opened device.
pub struct WebUsbBulk {
    device: UsbDevice,
    out_ep: u8,
    in_ep: u8,
    packet_size: usize,
}

fn reader_error(e: JsValue) -> TransportError {
    let name = js_sys::Reflect::get(&e, &"name".into()).ok().and_then(|v| v.as_string()).unwrap_or_default();
    if name == "NotFoundError" {
        // The device was unplugged.
        return TransportError::CardRemoved;
    }
    let message = js_sys::Reflect::get(&e, &"message".into()).ok().and_then(|v| v.as_string());
    TransportError::Reader(message.unwrap_or_else(|| format!("{e:?}")))
}

/// Resolves to `undefined` after `ms`.
fn sleep(ms: u32) -> Promise {
    Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        let set_timeout = js_sys::Reflect::get(&global, &"setTimeout".into()).expect("setTimeout exists");
        let set_timeout: js_sys::Function = set_timeout.unchecked_into();
        let _ = set_timeout.call2(&global, &resolve, &JsValue::from(ms));
    })
}

impl UsbBulk for WebUsbBulk {
    async fn write(&mut self, data: &[u8]) -> Result<(), TransportError> {
        let p = self.device.transfer_out_with_u8_slice(self.out_ep, data).map_err(reader_error)?;
        JsFuture::from(Promise::from(JsValue::from(p))).await.map_err(reader_error)?;
        if !data.is_empty() && data.len() % self.packet_size == 0 {
            // A write of whole packets ends with a zero-length packet (docs/card.md).
            let p = self.device.transfer_out_with_u8_slice(self.out_ep, &[]).map_err(reader_error)?;
            JsFuture::from(Promise::from(JsValue::from(p))).await.map_err(reader_error)?;
        }
        Ok(())
    }

    async fn read(&mut self, timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        let transfer = Promise::from(JsValue::from(self.device.transfer_in(self.in_ep, MAX_IN)));
        // WebUSB transfers have no timeout of their own: race one.
        let raced = Promise::race(&Array::of2(&transfer, &sleep(timeout_ms)));
        let result = JsFuture::from(raced).await.map_err(reader_error)?;
        if result.is_undefined() {
            return Err(TransportError::Reader(format!("the reader did not answer within {timeout_ms} ms")));
        }
        let data = js_sys::Reflect::get(&result, &"data".into()).map_err(reader_error)?;
        if data.is_undefined() || data.is_null() {
            return Ok(vec![]);
        }
        let view: js_sys::DataView = data.unchecked_into();
        Ok(Uint8Array::new_with_byte_offset_and_length(
            &view.buffer(),
            view.byte_offset() as u32,
            view.byte_length() as u32,
        )
        .to_vec())
    }
}

/// A PaSoRi with the card activated: ISO-DEP over the model's driver.
pub enum PasoriCard {
    /// RC-S380.
    Rcs380(IsoDep<Rcs380<WebUsbBulk>>),
    /// RC-S300.
    Rcs300(IsoDep<Rcs300<WebUsbBulk>>),
}

impl Transport for PasoriCard {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        match self {
            PasoriCard::Rcs380(t) => t.transmit(command).await,
            PasoriCard::Rcs300(t) => t.transmit(command).await,
        }
    }
}

fn failure(code: ErrorCode, message: &str) -> Failure {
    Failure { code, message: message.to_owned(), tries_left: None }
}

fn js_name(e: &JsValue) -> String {
    js_sys::Reflect::get(e, &"name".into()).ok().and_then(|v| v.as_string()).unwrap_or_default()
}

/// Asks the user for a PaSoRi, opens it, claims its vendor interface, starts the reader and
/// activates the card on it.
pub async fn connect() -> Result<PasoriCard, Failure> {
    let navigator: web_sys::Navigator = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .map_err(|_| failure(ErrorCode::NoReader, "this page has no navigator"))?
        .unchecked_into();
    let usb = navigator.usb();
    if JsValue::from(usb.clone()).is_undefined() {
        return Err(failure(
            ErrorCode::NoReader,
            "this browser has no WebUSB; use Chrome or Edge, or the mykey extension",
        ));
    }
    let filters: Vec<UsbDeviceFilter> = RCS380
        .iter()
        .chain(RCS300.iter())
        .map(|pid| {
            let f = UsbDeviceFilter::new();
            f.set_vendor_id(SONY);
            f.set_product_id(*pid);
            f
        })
        .collect();
    let options = UsbDeviceRequestOptions::new(&filters);
    let device: UsbDevice = JsFuture::from(Promise::from(JsValue::from(usb.request_device(&options))))
        .await
        .map_err(|e| match js_name(&e).as_str() {
            "NotFoundError" => {
                failure(ErrorCode::NoReader, "no PaSoRi was chosen: connect an RC-S380 or RC-S300 and choose it")
            }
            "SecurityError" => {
                failure(ErrorCode::NoReader, "this page may not use USB devices (it must be https, and allowed to)")
            }
            _ => failure(ErrorCode::Reader, &format!("the reader could not be chosen: {}", reader_error(e))),
        })?
        .unchecked_into();
    JsFuture::from(Promise::from(JsValue::from(device.open()))).await.map_err(|e| {
        failure(
            ErrorCode::Reader,
            &format!(
                "the PaSoRi could not be opened ({}). On Windows, its Sony driver must be replaced with WinUSB (Zadig); \
                 on Linux, unload the port100 module and allow the device with a udev rule",
                reader_error(e)
            ),
        )
    })?;
    if device.configuration().is_none() {
        JsFuture::from(Promise::from(JsValue::from(device.select_configuration(1)))).await.map_err(|e| {
            failure(ErrorCode::Reader, &format!("the reader refused its configuration: {}", reader_error(e)))
        })?;
    }
    let bulk = claim_vendor_interface(&device).await?;
    let pid = device.product_id();
    let no_card = |e: TransportError| match e {
        TransportError::CardRemoved => failure(ErrorCode::CardRemoved, &e.to_string()),
        TransportError::Reader(m) if m.contains("no card") => {
            failure(ErrorCode::NoCard, "no card on the reader: put the My Number Card on it and try again")
        }
        other => failure(ErrorCode::Reader, &other.to_string()),
    };
    if RCS380.contains(&pid) {
        let mut reader = Rcs380::new(bulk);
        reader.open().await.map_err(no_card)?;
        reader.connect().await.map(PasoriCard::Rcs380).map_err(|(_, e)| no_card(e))
    } else {
        let mut reader = Rcs300::new(bulk);
        reader.open().await.map_err(no_card)?;
        reader.connect().await.map(PasoriCard::Rcs300).map_err(|(_, e)| no_card(e))
    }
}

/// Finds the class-FF interface with a bulk pair, claims it, and returns its endpoints.
async fn claim_vendor_interface(device: &UsbDevice) -> Result<WebUsbBulk, Failure> {
    let config = device.configuration().ok_or_else(|| failure(ErrorCode::Reader, "the reader has no configuration"))?;
    for iface in config.interfaces().iter() {
        let iface: web_sys::UsbInterface = iface.unchecked_into();
        let alt = iface.alternate();
        if alt.interface_class() != 0xFF {
            continue;
        }
        let (mut out_ep, mut in_ep, mut packet_size) = (None, None, 64usize);
        for ep in alt.endpoints().iter() {
            let ep: web_sys::UsbEndpoint = ep.unchecked_into();
            if ep.type_() != UsbEndpointType::Bulk {
                continue;
            }
            match ep.direction() {
                UsbDirection::Out => {
                    out_ep = Some(ep.endpoint_number());
                    packet_size = usize::try_from(ep.packet_size()).unwrap_or(64).max(1);
                }
                UsbDirection::In => in_ep = Some(ep.endpoint_number()),
                _ => {}
            }
        }
        let (Some(out_ep), Some(in_ep)) = (out_ep, in_ep) else { continue };
        JsFuture::from(Promise::from(JsValue::from(device.claim_interface(iface.interface_number())))).await.map_err(
            |e| {
                failure(
                    ErrorCode::Reader,
                    &format!(
                        "the reader's interface is held by another program ({}): on Linux stop pcscd or unload \
                         the port100 module, then try again",
                        reader_error(e)
                    ),
                )
            },
        )?;
        return Ok(WebUsbBulk { device: device.clone(), out_ep, in_ep, packet_size });
    }
    Err(failure(
        ErrorCode::Reader,
        "this device has no vendor interface with bulk endpoints: not a PaSoRi RC-S380 or RC-S300",
    ))
}
