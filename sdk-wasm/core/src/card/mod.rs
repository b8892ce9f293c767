//! The My Number Card seen from the host: APDUs, the JPKI application, and the Sony PaSoRi
//! RC-S380 "Port-100" framing. Platform-free: the same code runs in the browser (WebUSB), in
//! the native-messaging host (PC/SC) and in tests, behind one [`Transport`] trait.
//! Facts: `docs/card.md`.

pub mod apdu;
pub mod bridge;
pub mod isodep;
pub mod jpki;
pub mod port100;
pub mod rcs300;
pub mod rcs380;
/// Simulated card and readers (tests; the `sim` feature lends them to other crates' tests).
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod typeb;

/// Why talking to the card failed below the application.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The card left the field or the reader was unplugged.
    #[error("the card was removed; hold it on the reader and try again")]
    CardRemoved,
    /// The reader answered something that is not a response.
    #[error("the reader answered something unexpected: {0}")]
    Reader(String),
}

/// Sends one command APDU and returns the response APDU (data and status word).
#[allow(async_fn_in_trait)] // callers are generic; no `dyn Transport` is needed
pub trait Transport {
    /// One exchange with the card.
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError>;
}

/// The bulk endpoints of a reader's vendor interface (WebUSB in the browser).
#[allow(async_fn_in_trait)] // callers are generic; no `dyn UsbBulk` is needed
pub trait UsbBulk {
    /// Writes one transfer to the bulk OUT endpoint.
    async fn write(&mut self, data: &[u8]) -> Result<(), TransportError>;
    /// Reads one transfer from the bulk IN endpoint, waiting at most `timeout_ms`.
    async fn read(&mut self, timeout_ms: u32) -> Result<Vec<u8>, TransportError>;
}
