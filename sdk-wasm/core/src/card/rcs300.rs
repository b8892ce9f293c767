//! Sony PaSoRi RC-S300 over its vendor-class interface: CCID `PC_to_RDR_Escape` messages
//! carrying "transparent session" commands, then Type B polling and RF exchanges for ISO-DEP.
//! Facts: `docs/card.md` (the Type B path there is marked unverified on hardware; the
//! framing here follows it exactly so that a hardware check changes data, not structure).

use super::isodep::{IsoDep, RfLink};
use super::typeb::TypeB;
use super::{TransportError, UsbBulk};

/// `PC_to_RDR_Escape`.
pub const ESCAPE: u8 = 0x6B;
/// `RDR_to_PC_Escape`.
pub const ESCAPE_REPLY: u8 = 0x83;
/// Transparent-session control tags.
pub mod session {
    /// Start a session.
    pub const START: u8 = 0x81;
    /// End the session.
    pub const END: u8 = 0x82;
    /// RF off.
    pub const RF_OFF: u8 = 0x83;
    /// RF on.
    pub const RF_ON: u8 = 0x84;
}
/// Switch the protocol to ISO 14443-4 Type B.
pub const SWITCH_TO_TYPE_B: [u8; 10] = [0xFF, 0x50, 0x00, 0x02, 0x04, 0x8F, 0x02, 0x01, 0x04, 0x00];
const TIMEOUT_MS: u32 = 1_000;

/// The reader.
pub struct Rcs300<U> {
    usb: U,
    seq: u8,
}

/// A CCID escape message around `payload`.
pub fn escape_message(seq: u8, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    [&[ESCAPE][..], &len, &[0x00, seq, 0x00, 0x00, 0x00], payload].concat()
}

/// The transceive command carrying an RF frame, with a timeout in microseconds.
pub fn transceive_command(frame: &[u8], timeout_ms: u32) -> Vec<u8> {
    let us = timeout_ms.saturating_mul(1000).to_le_bytes();
    let flen = (frame.len() as u16).to_be_bytes();
    let data = [&[0x5F, 0x46, 0x04][..], &us, &[0x95, 0x82], &flen, frame].concat();
    let lc = (data.len() as u16).to_be_bytes();
    [&[0xFF, 0x50, 0x00, 0x01, 0x00][..], &lc, &data, &[0x00, 0x00, 0x00]].concat()
}

/// The value of the first BER-TLV data object `tag` in `data`.
fn find_tlv(mut data: &[u8], tag: u8) -> Option<&[u8]> {
    // Bounded by the data's length: every round consumes at least two bytes.
    while data.len() >= 2 {
        let t = data[0];
        let (len, head) = match data[1] {
            n if n < 0x80 => (usize::from(n), 2),
            0x81 => (usize::from(*data.get(2)?), 3),
            0x82 => (usize::from(u16::from_be_bytes([*data.get(2)?, *data.get(3)?])), 4),
            _ => return None,
        };
        let value = data.get(head..head + len)?;
        if t == tag {
            return Some(value);
        }
        data = &data[head + len..];
    }
    None
}

impl<U: UsbBulk> Rcs300<U> {
    /// Wraps the vendor interface's bulk endpoints.
    pub fn new(usb: U) -> Self {
        Rcs300 { usb, seq: 0 }
    }

    /// One escape exchange; returns the reply payload without its `90 00`.
    async fn escape(&mut self, payload: &[u8], timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.usb.write(&escape_message(seq, payload)).await?;
        let r = self.usb.read(timeout_ms + TIMEOUT_MS).await?;
        let bad = || TransportError::Reader("the reader's escape reply is malformed".into());
        if r.len() < 10 || r[0] != ESCAPE_REPLY || r[6] != seq {
            return Err(bad());
        }
        let len = u32::from_le_bytes([r[1], r[2], r[3], r[4]]) as usize;
        let body = r.get(10..10 + len).ok_or_else(bad)?;
        match body {
            [rest @ .., 0x90, 0x00] => Ok(rest.to_vec()),
            _ => Err(TransportError::Reader(format!(
                "the reader refused a command ({:02X?})",
                &body[body.len().saturating_sub(2)..]
            ))),
        }
    }

    async fn session(&mut self, tag: u8) -> Result<(), TransportError> {
        self.escape(&[0xFF, 0x50, 0x00, 0x00, 0x02, tag, 0x00, 0x00], 0).await.map(drop)
    }

    /// Opens a transparent session with RF on, switched to Type B.
    pub async fn open(&mut self) -> Result<(), TransportError> {
        for tag in [session::END, session::START, session::RF_OFF, session::RF_ON] {
            self.session(tag).await?;
        }
        self.escape(&SWITCH_TO_TYPE_B, 0).await.map(drop)
    }

    async fn rf(&mut self, frame: &[u8], timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        let reply = self.escape(&transceive_command(frame, timeout_ms), timeout_ms).await?;
        find_tlv(&reply, 0x97)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| TransportError::Reader("no answer from the card".into()))
    }

    /// Polls once for a Type B card and activates it.
    pub async fn poll_type_b(&mut self) -> Result<Option<TypeB>, TransportError> {
        super::typeb::poll(self).await
    }

    /// Polls and, with a card present, returns the ISO-DEP transport to it.
    pub async fn connect(self) -> Result<IsoDep<Self>, (Self, TransportError)> {
        super::typeb::connect(self).await
    }

    /// RF off and end the session, before the bridge releases the interface.
    pub async fn close(&mut self) -> Result<(), TransportError> {
        self.session(session::RF_OFF).await?;
        self.session(session::END).await
    }

    /// The USB endpoints back, for the bridge to release.
    pub fn into_usb(self) -> U {
        self.usb
    }
}

impl<U: UsbBulk> RfLink for Rcs300<U> {
    async fn exchange(&mut self, frame: &[u8], timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        self.rf(frame, timeout_ms).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::jpki::{authenticate, read_auth_certificate, Pin};
    use super::super::sim::{run, JpkiCard, SimRcs300};
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn messages_follow_the_ccid_escape_and_transceive_layouts() {
        assert_eq!(escape_message(5, &[0xAA, 0xBB]), [0x6B, 2, 0, 0, 0, 0, 5, 0, 0, 0, 0xAA, 0xBB]);
        let t = transceive_command(&[0x05, 0x00, 0x10], 30);
        assert_eq!(&t[..7], &[0xFF, 0x50, 0x00, 0x01, 0x00, 0x00, 0x0E]);
        assert_eq!(&t[7..10], &[0x5F, 0x46, 0x04]);
        assert_eq!(&t[10..14], &30_000u32.to_le_bytes());
        assert_eq!(&t[14..21], &[0x95, 0x82, 0x00, 0x03, 0x05, 0x00, 0x10]);
        assert_eq!(&t[21..], &[0, 0, 0]);
        assert_eq!(find_tlv(&[0x96, 0x01, 0x00, 0x97, 0x81, 0x02, 0xAB, 0xCD], 0x97), Some(&[0xAB, 0xCD][..]));
        assert_eq!(find_tlv(&[0x97, 0x05, 0x00], 0x97), None, "cut short");
    }

    #[test]
    fn a_jpki_login_runs_through_the_transparent_session() {
        let card = std::rc::Rc::new(std::cell::RefCell::new(JpkiCard::new()));
        let mut reader = Rcs300::new(SimRcs300::with_card(card.clone()));
        run(reader.open()).unwrap();
        let mut iso = run(reader.connect()).map_err(|(_, e)| e).unwrap();
        assert_eq!(run(read_auth_certificate(&mut iso)).unwrap(), card.borrow().cert);
        let sig =
            run(authenticate(&mut iso, "https://mykey.example", "bm9uY2U=", &Pin::parse("1234").unwrap())).unwrap();
        assert_eq!(sig.len(), 256);
        let mut reader = iso.into_link();
        run(reader.close()).unwrap();
        let usb = reader.into_usb();
        assert_eq!(usb.sessions, vec![0x82, 0x81, 0x83, 0x84, 0x83, 0x82], "session control in the usual order");
    }

    #[test]
    fn an_empty_field_is_no_card() {
        let mut reader = Rcs300::new(SimRcs300::empty());
        run(reader.open()).unwrap();
        assert_eq!(run(reader.poll_type_b()).unwrap(), None);
    }
}
