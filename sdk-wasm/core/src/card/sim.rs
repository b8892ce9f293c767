//! Simulated cards for the card stack's tests: a JPKI card (files, PIN counter, a record of
//! what it signed), the card side of ISO-DEP, and RC-S380 / RC-S300 readers at their bulk
//! endpoints. Test code only (they panic on what a test should never send): the demo's
//! virtual card is a separate, complete card (`mykey-virtual-card`).
#![allow(missing_docs)]

use super::isodep::RfLink;
use super::jpki::{EF_AUTH_CERT, EF_AUTH_KEY, EF_AUTH_PIN, JPKI_AID};
use super::{Transport, TransportError};

const PCB_I: u8 = 0x02;
const PCB_CHAINING: u8 = 0x10;
const PCB_R_ACK: u8 = 0xA2;
const PCB_R_NAK: u8 = 0xB2;

pub fn is_i_block(pcb: u8) -> bool {
    pcb & 0xE2 == 0x02
}

pub fn is_r_ack(pcb: u8) -> bool {
    pcb & 0xF6 == 0xA2
}

fn is_wtx(pcb: u8) -> bool {
    pcb & 0xFE == 0xF2
}

/// What a simulated card answers to an APDU.
pub type Handler = Box<dyn FnMut(&[u8]) -> Vec<u8>>;

/// Runs a future that never waits (everything here answers at once).
pub fn run<F: std::future::Future>(f: F) -> F::Output {
    // The fake card never waits, so one poll finishes every future here.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the fake card does not wait"),
    }
}

/// Just enough of a JPKI card to exercise the host side: files, PIN counter, and a
/// record of what it was asked to sign.
pub struct JpkiCard {
    pub jpki: bool,
    pub selected_ap: bool,
    pub ef: u16,
    pub cert: Vec<u8>,
    pub tries: u8,
    pub verified: bool,
    pub signed: Vec<Vec<u8>>,
    pub exchanges: usize,
}

impl JpkiCard {
    pub fn new() -> JpkiCard {
        let mut cert = vec![0x30, 0x82, 0x02, 0xB8];
        cert.extend((0..0x2B8).map(|i| (i % 251) as u8));
        JpkiCard {
            jpki: true,
            selected_ap: false,
            ef: 0,
            cert,
            tries: 3,
            verified: false,
            signed: vec![],
            exchanges: 0,
        }
    }
}

impl Default for JpkiCard {
    fn default() -> Self {
        Self::new()
    }
}

impl JpkiCard {
    /// Answers one APDU.
    pub fn handle(&mut self, c: &[u8]) -> Vec<u8> {
        self.exchanges += 1;
        let sw = |v: u16| v.to_be_bytes().to_vec();
        match (c[0], c[1], c[2], c[3]) {
            (0x00, 0xA4, 0x04, 0x0C) => {
                self.selected_ap = self.jpki && c[5..] == JPKI_AID;
                sw(if self.selected_ap { 0x9000 } else { 0x6A82 })
            }
            (0x00, 0xA4, 0x02, 0x0C) if self.selected_ap => {
                self.ef = u16::from_be_bytes([c[5], c[6]]);
                sw(0x9000)
            }
            (0x00, 0xB0, hi, lo) if self.ef == EF_AUTH_CERT => {
                let off = usize::from(u16::from_be_bytes([hi, lo]));
                let le = if c[4] == 0 { 256 } else { usize::from(c[4]) };
                let end = (off + le).min(self.cert.len());
                [self.cert[off..end].to_vec(), sw(0x9000)].concat()
            }
            (0x00, 0x20, 0x00, 0x80) if self.ef == EF_AUTH_PIN => {
                if c.len() == 4 {
                    sw(if self.verified {
                        0x9000
                    } else if self.tries == 0 {
                        0x6984
                    } else {
                        0x63C0 | u16::from(self.tries)
                    })
                } else if self.tries == 0 {
                    sw(0x6984)
                } else if &c[5..9] == b"1234" {
                    self.tries = 3;
                    self.verified = true;
                    sw(0x9000)
                } else {
                    self.tries -= 1;
                    sw(0x63C0 | u16::from(self.tries))
                }
            }
            (0x80, 0x2A, 0x00, 0x80) if self.ef == EF_AUTH_KEY && self.verified => {
                self.signed.push(c[5..5 + usize::from(c[4])].to_vec());
                [vec![0xAB; 256], sw(0x9000)].concat()
            }
            _ => sw(0x6D00),
        }
    }
}

impl Transport for JpkiCard {
    async fn transmit(&mut self, c: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(self.handle(c))
    }
}

/// The card side of ISO-DEP (ISO 14443-4 rules C to E: its block number starts at 1 and
/// toggles on every I-block it receives, and on an R(ACK) that is not its own number),
/// answering each APDU with `reply(apdu)`, with knobs for what real cards do: a
/// waiting-time extension, a frame lost on the way in.
pub struct Picc {
    handler: Handler,
    pub fsd: usize,
    pub block: u8,
    pub incoming: Vec<u8>,
    pub outgoing: Vec<Vec<u8>>,
    pub last_sent: Option<Vec<u8>>,
    pub wtx_pending: bool,
    pub lose_next: bool,
    pub log: Vec<Vec<u8>>,
}

impl Picc {
    /// A card answering with `reply` (echo x 3).
    pub fn new(fsd: usize) -> Self {
        Picc::with(fsd, Box::new(Picc::reply))
    }

    /// A card answering each APDU with `handler`.
    pub fn with(fsd: usize, handler: Handler) -> Self {
        Picc {
            handler,
            fsd,
            block: 1,
            incoming: vec![],
            outgoing: vec![],
            last_sent: None,
            wtx_pending: false,
            lose_next: false,
            log: vec![],
        }
    }

    /// The echo answer.
    pub fn reply(apdu: &[u8]) -> Vec<u8> {
        // Echo the APDU three times, then 90 00: long enough to need chaining.
        [apdu.repeat(3), vec![0x90, 0x00]].concat()
    }

    fn next_out(&mut self) -> Vec<u8> {
        let chunk = self.outgoing.remove(0);
        let more = !self.outgoing.is_empty();
        let frame = [vec![PCB_I | self.block | if more { PCB_CHAINING } else { 0 }], chunk].concat();
        self.last_sent = Some(frame.clone());
        frame
    }

    fn send(&mut self, frame: Vec<u8>) -> Vec<u8> {
        self.last_sent = Some(frame.clone());
        frame
    }
}

impl RfLink for Picc {
    async fn exchange(&mut self, frame: &[u8], _timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        self.log.push(frame.to_vec());
        if self.lose_next {
            self.lose_next = false;
            return Err(TransportError::Reader("timeout".into()));
        }
        let pcb = frame[0];
        if is_wtx(pcb) {
            // The reader granted more time: now answer.
            return Ok(self.next_out());
        }
        if pcb & 0xF6 == PCB_R_NAK & 0xF6 {
            // Our last block was lost: send it again; else we never got the reader's block.
            return Ok(match (&self.last_sent, pcb & 1 == self.block) {
                (Some(last), true) => last.clone(),
                _ => vec![PCB_R_ACK | self.block],
            });
        }
        if is_r_ack(pcb) {
            if pcb & 1 != self.block {
                self.block ^= 1;
            }
            return Ok(self.next_out());
        }
        assert!(is_i_block(pcb), "unexpected PCB {pcb:02X}");
        self.block ^= 1;
        self.incoming.extend_from_slice(&frame[1..]);
        if pcb & PCB_CHAINING != 0 {
            return Ok(self.send(vec![PCB_R_ACK | self.block]));
        }
        let apdu = std::mem::take(&mut self.incoming);
        let room = self.fsd - 3;
        self.outgoing = (self.handler)(&apdu).chunks(room).map(<[u8]>::to_vec).collect();
        if self.wtx_pending {
            self.wtx_pending = false;
            return Ok(vec![0xF2, 0x05]);
        }
        Ok(self.next_out())
    }
}

/// A Type B answer to SENSB_REQ: PUPI 01 02 03 04, FSCI 8 (256 bytes), FWI 7 (about 39 ms).
pub const SENSB_RES: [u8; 12] = [0x50, 1, 2, 3, 4, 0, 0, 0, 0, 0x00, 0x81, 0x71];

/// An RC-S380 as its bulk endpoints see it: checks every frame's checksums, acknowledges,
/// answers the commands, and passes RF frames to the card in its field (if any).
pub struct SimRcs380 {
    picc: Option<Picc>,
    queue: std::collections::VecDeque<Vec<u8>>,
    /// Command frames received.
    pub frames: usize,
}

impl SimRcs380 {
    /// A reader with a JPKI card in its field.
    pub fn with_card(card: std::rc::Rc<std::cell::RefCell<JpkiCard>>) -> Self {
        Self::with_handler(Box::new(move |apdu| card.borrow_mut().handle(apdu)))
    }

    /// A reader with a card in its field that answers APDUs with `handler`.
    pub fn with_handler(handler: Handler) -> Self {
        SimRcs380 { picc: Some(Picc::with(256, handler)), queue: Default::default(), frames: 0 }
    }

    /// A reader with nothing in its field.
    pub fn empty() -> Self {
        SimRcs380 { picc: None, queue: Default::default(), frames: 0 }
    }
}

impl super::UsbBulk for SimRcs380 {
    async fn write(&mut self, data: &[u8]) -> Result<(), TransportError> {
        use super::port100::{self, code};
        if data == port100::ACK {
            self.queue.clear();
            return Ok(());
        }
        let d = port100::decode(data).expect("the driver sends valid frames");
        assert_eq!(d[0], port100::TO_READER);
        self.frames += 1;
        let (c, params) = (d[1], &d[2..]);
        let reply: Vec<u8> = match c {
            code::GET_FIRMWARE_VERSION => vec![0x11, 0x01],
            code::IN_COMM_RF => {
                let rf = &params[2..];
                let answer = match &mut self.picc {
                    None => None,
                    Some(_) if rf == port100::SENSB_REQ => Some(SENSB_RES.to_vec()),
                    Some(_) if rf[0] == 0x1D => Some(vec![0x00]),
                    Some(p) => p.exchange(rf, 0).await.ok(),
                };
                match answer {
                    Some(a) => [vec![0, 0, 0, 0, 0], a].concat(),
                    None => vec![0x80, 0, 0, 0, 0],
                }
            }
            _ => vec![0x00],
        };
        self.queue.push_back(port100::ACK.to_vec());
        self.queue.push_back(port100::encode(&[&[port100::FROM_READER, c + 1][..], &reply].concat()));
        Ok(())
    }

    async fn read(&mut self, _timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        self.queue.pop_front().ok_or_else(|| TransportError::Reader("nothing to read".into()))
    }
}

/// An RC-S300's vendor interface: parses escape messages, answers the transparent-session
/// commands, and passes transceived RF frames to the card in its field (if any).
pub struct SimRcs300 {
    picc: Option<Picc>,
    queue: std::collections::VecDeque<Vec<u8>>,
    /// Session-control tags received, in order.
    pub sessions: Vec<u8>,
}

impl SimRcs300 {
    /// A reader with a JPKI card in its field.
    pub fn with_card(card: std::rc::Rc<std::cell::RefCell<JpkiCard>>) -> Self {
        Self::with_handler(Box::new(move |apdu| card.borrow_mut().handle(apdu)))
    }

    /// A reader with a card in its field that answers APDUs with `handler`.
    pub fn with_handler(handler: Handler) -> Self {
        SimRcs300 { picc: Some(Picc::with(256, handler)), queue: Default::default(), sessions: vec![] }
    }

    /// A reader with nothing in its field.
    pub fn empty() -> Self {
        SimRcs300 { picc: None, queue: Default::default(), sessions: vec![] }
    }
}

impl super::UsbBulk for SimRcs300 {
    async fn write(&mut self, m: &[u8]) -> Result<(), TransportError> {
        assert_eq!(m[0], super::rcs300::ESCAPE, "only escape messages");
        let len = u32::from_le_bytes([m[1], m[2], m[3], m[4]]) as usize;
        let seq = m[6];
        let p = &m[10..10 + len];
        let body: Vec<u8> = match p {
            [0xFF, 0x50, 0x00, 0x00, 0x02, tag, 0x00, 0x00] => {
                self.sessions.push(*tag);
                vec![0x90, 0x00]
            }
            p if p == super::rcs300::SWITCH_TO_TYPE_B => vec![0x90, 0x00],
            [0xFF, 0x50, 0x00, 0x01, 0x00, hi, lo, rest @ ..] => {
                let data = &rest[..usize::from(u16::from_be_bytes([*hi, *lo]))];
                assert_eq!(&data[..3], &[0x5F, 0x46, 0x04]);
                assert_eq!(&data[7..9], &[0x95, 0x82]);
                let flen = usize::from(u16::from_be_bytes([data[9], data[10]]));
                let rf = &data[11..11 + flen];
                let answer = match &mut self.picc {
                    None => None,
                    Some(_) if rf == super::port100::SENSB_REQ => Some(SENSB_RES.to_vec()),
                    Some(_) if rf[0] == 0x1D => Some(vec![0x00]),
                    Some(p) => p.exchange(rf, 0).await.ok(),
                };
                match answer {
                    Some(a) => {
                        let l = (a.len() as u16).to_be_bytes();
                        [&[0x96, 0x01, 0x00, 0x97, 0x82][..], &l, &a, &[0x90, 0x00]].concat()
                    }
                    None => vec![0x96, 0x01, 0x01, 0x90, 0x00],
                }
            }
            other => panic!("unexpected escape payload {other:02X?}"),
        };
        let blen = (body.len() as u32).to_le_bytes();
        self.queue
            .push_back([&[super::rcs300::ESCAPE_REPLY][..], &blen, &[0x00, seq, 0x00, 0x00, 0x00], &body].concat());
        Ok(())
    }

    async fn read(&mut self, _timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        self.queue.pop_front().ok_or_else(|| TransportError::Reader("nothing to read".into()))
    }
}
