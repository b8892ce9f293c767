//! Sony PaSoRi RC-S380 over its vendor-class USB interface (Port-100): start-up, Type B
//! polling and activation, and RF exchanges for ISO-DEP. The bulk transfers come from the
//! bridge (WebUSB in the browser); everything else is here. Facts: `docs/card.md`.

use super::isodep::{IsoDep, RfLink};
use super::port100::{self, code, ACK};
use super::typeb::TypeB;
use super::{TransportError, UsbBulk};

/// InSetRF for 106 kbps Type B.
pub const IN_SET_RF_106B: [u8; 4] = [0x03, 0x07, 0x0F, 0x07];
/// InSetProtocol defaults (nfcpy).
pub const IN_SET_PROTOCOL_DEFAULTS: [u8; 38] = [
    0x00, 0x18, 0x01, 0x01, 0x02, 0x01, 0x03, 0x00, 0x04, 0x00, 0x05, 0x00, 0x06, 0x00, 0x07, 0x08, 0x08, 0x00, 0x09,
    0x00, 0x0A, 0x00, 0x0B, 0x00, 0x0C, 0x00, 0x0E, 0x04, 0x0F, 0x00, 0x10, 0x00, 0x11, 0x00, 0x12, 0x00, 0x13, 0x06,
];
/// InSetProtocol overrides for Type B.
pub const IN_SET_PROTOCOL_TYPE_B: [u8; 10] = [0x0B, 0x01, 0x09, 0x01, 0x0C, 0x01, 0x0A, 0x01, 0x00, 0x14];
/// Time to wait for the reader itself to answer a command.
const READER_TIMEOUT_MS: u32 = 100;
/// The reader.
pub struct Rcs380<U> {
    usb: U,
}

fn reader_error(e: port100::FrameError) -> TransportError {
    TransportError::Reader(e.to_string())
}

impl<U: UsbBulk> Rcs380<U> {
    /// Wraps the claimed interface's bulk endpoints.
    pub fn new(usb: U) -> Self {
        Rcs380 { usb }
    }

    /// One command: the frame, the reader's ACK, its reply's parameters.
    async fn command(&mut self, code: u8, params: &[u8], timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        self.usb.write(&port100::command(code, params)).await?;
        let ack = self.usb.read(READER_TIMEOUT_MS).await?;
        if ack != ACK {
            return Err(TransportError::Reader("the reader did not acknowledge the command".into()));
        }
        let reply = self.usb.read(timeout_ms + READER_TIMEOUT_MS).await?;
        port100::reply(&reply, code).map(<[u8]>::to_vec).map_err(reader_error)
    }

    /// Start-up as nfcpy does it: cancel what was pending, then command type, firmware
    /// version, RF off. Returns the firmware version bytes.
    pub async fn open(&mut self) -> Result<Vec<u8>, TransportError> {
        self.usb.write(&ACK).await?;
        self.command(code::SET_COMMAND_TYPE, &[0x01], 0).await?;
        let version = self.command(code::GET_FIRMWARE_VERSION, &[], 0).await?;
        self.command(code::SWITCH_RF, &[0x00], 0).await?;
        Ok(version)
    }

    async fn rf(&mut self, frame: &[u8], timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        let t = ((timeout_ms + 1) * 10).min(0xFFFF) as u16;
        let params = [&t.to_le_bytes()[..], frame].concat();
        let reply = self.command(code::IN_COMM_RF, &params, timeout_ms).await?;
        // Rebuild the reply frame to reuse the one parser of InCommRF answers.
        let frame = port100::encode(&[&[port100::FROM_READER, code::IN_COMM_RF + 1][..], &reply].concat());
        match port100::in_comm_rf_reply(&frame) {
            Ok(data) => Ok(data.to_vec()),
            // Nothing (or garbage) from the card: ISO-DEP asks again.
            Err(port100::FrameError::Rf(mask)) => Err(TransportError::Reader(format!("RF error {mask:08X}"))),
            Err(e) => Err(reader_error(e)),
        }
    }

    /// Polls once for a Type B card and activates it.
    pub async fn poll_type_b(&mut self) -> Result<Option<TypeB>, TransportError> {
        super::typeb::poll(self).await
    }

    /// Polls and, with a card present, returns the ISO-DEP transport to it.
    pub async fn connect(self) -> Result<IsoDep<Self>, (Self, TransportError)> {
        super::typeb::connect(self).await
    }

    /// RF off and cancel, before the bridge releases the interface.
    pub async fn close(&mut self) -> Result<(), TransportError> {
        self.command(code::SWITCH_RF, &[0x00], 0).await?;
        self.usb.write(&ACK).await
    }
}

impl<U: UsbBulk> RfLink for Rcs380<U> {
    async fn exchange(&mut self, frame: &[u8], timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        self.rf(frame, timeout_ms).await
    }

    async fn prepare_type_b(&mut self) -> Result<(), TransportError> {
        self.command(code::IN_SET_RF, &IN_SET_RF_106B, 0).await?;
        self.command(code::IN_SET_PROTOCOL, &IN_SET_PROTOCOL_DEFAULTS, 0).await?;
        self.command(code::IN_SET_PROTOCOL, &IN_SET_PROTOCOL_TYPE_B, 0).await.map(drop)
    }
}

impl<U> Rcs380<U> {
    /// The USB endpoints back, for the bridge to release.
    pub fn into_usb(self) -> U {
        self.usb
    }
}

#[cfg(test)]
mod tests {
    use super::super::jpki::{authenticate, pin_tries_left, read_auth_certificate, Pin, PinStatus};
    use super::super::sim::{run, JpkiCard, SimRcs380};
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_jpki_login_runs_through_the_reader_and_iso_dep() {
        let card = std::rc::Rc::new(std::cell::RefCell::new(JpkiCard::new()));
        let mut reader = Rcs380::new(SimRcs380::with_card(card.clone()));
        assert_eq!(run(reader.open()).unwrap(), vec![0x11, 0x01]);
        let mut iso = run(reader.connect()).map_err(|(_, e)| e).unwrap();
        let cert = run(read_auth_certificate(&mut iso)).unwrap();
        assert_eq!(cert, card.borrow().cert);
        assert_eq!(run(pin_tries_left(&mut iso)).unwrap(), PinStatus::TriesLeft(3));
        let sig =
            run(authenticate(&mut iso, "https://mykey.example", "bm9uY2U=", &Pin::parse("1234").unwrap())).unwrap();
        assert_eq!(sig.len(), 256);
        let mut reader = iso.into_link();
        run(reader.close()).unwrap();
        // Every frame on the wire had valid Port-100 checksums (the simulator checks them).
        assert!(reader.into_usb().frames > 10);
    }

    #[test]
    fn an_empty_field_is_no_card() {
        let mut reader = Rcs380::new(SimRcs380::empty());
        run(reader.open()).unwrap();
        assert_eq!(run(reader.poll_type_b()).unwrap(), None);
        let err = run(reader.connect()).map(|_| ()).unwrap_err().1;
        assert_eq!(err, TransportError::Reader("no card on the reader".into()));
    }
}
