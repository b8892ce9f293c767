//! ISO 14443-4 (ISO-DEP) half-duplex block transmission, reader side: an APDU goes out as one
//! or more I-blocks (chaining when longer than the card's frame size), the answer comes back
//! the same way; waiting-time extensions are echoed; a lost or damaged frame is asked for again
//! with R(NAK), a bounded number of times. The reader chip adds and checks CRC_B, so frames
//! here are PCB + information field only. Facts: `docs/card.md` (after nfcpy's `tt4.py`).

use super::{Transport, TransportError};

/// R(NAK)s sent for one block before giving up.
pub const MAX_RETRIES: usize = 3;
/// Blocks one APDU exchange may take in either direction (bounds chaining and WTX loops).
pub const MAX_BLOCKS: usize = 512;

/// One RF frame out, one in, within a time limit. The reader bridge implements it (Port-100
/// InCommRF, or a CCID transparent session); `Err(TransportError::Reader)` means no valid
/// frame arrived in time.
#[allow(async_fn_in_trait)] // callers are generic; no `dyn RfLink` is needed
pub trait RfLink {
    /// Sends `frame`, returns the card's frame.
    async fn exchange(&mut self, frame: &[u8], timeout_ms: u32) -> Result<Vec<u8>, TransportError>;

    /// Sets the reader up for 106 kbps Type B before polling (nothing by default).
    async fn prepare_type_b(&mut self) -> Result<(), TransportError> {
        Ok(())
    }
}

/// An activated ISO-DEP card.
pub struct IsoDep<L> {
    link: L,
    /// Block number of the next I-block (0 or 1).
    block: u8,
    /// Largest frame the card accepts (FSC), CRC included.
    fsc: usize,
    /// Frame waiting time.
    fwt_ms: u32,
}

const PCB_I: u8 = 0x02;
const PCB_CHAINING: u8 = 0x10;
const PCB_R_ACK: u8 = 0xA2;
const PCB_R_NAK: u8 = 0xB2;

fn is_i_block(pcb: u8) -> bool {
    pcb & 0xE2 == 0x02
}

fn is_r_ack(pcb: u8) -> bool {
    pcb & 0xF6 == 0xA2
}

fn is_wtx(pcb: u8) -> bool {
    pcb & 0xFE == 0xF2
}

impl<L: RfLink> IsoDep<L> {
    /// Wraps a link to a card activated with frame size `fsc` and frame waiting time `fwt_ms`.
    pub fn new(link: L, fsc: usize, fwt_ms: u32) -> Self {
        assert!((16..=4096).contains(&fsc), "FSC is 16 to 4096 bytes");
        IsoDep { link, block: 0, fsc, fwt_ms: fwt_ms.max(1) }
    }

    /// The link, for the bridge to close.
    pub fn into_link(self) -> L {
        self.link
    }

    /// Sends a block and gets a valid answer, asking again with R(NAK) when nothing or
    /// garbage comes back. S(WTX) requests are answered here, each extending only its wait.
    async fn exchange_block(&mut self, frame: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        let mut timeout = self.fwt_ms;
        let original = frame.clone();
        let mut out = frame;
        let mut failures = 0;
        // Bounded: WTX rounds and retries both count.
        for _ in 0..MAX_BLOCKS {
            match self.link.exchange(&out, timeout).await {
                // After our R(NAK), an R(ACK) says the card never got the block: send it again.
                Ok(r) if failures > 0 && r.len() == 1 && is_r_ack(r[0]) && is_i_block(original[0]) => {
                    out = original.clone();
                }
                Ok(r) if r.first().is_some_and(|p| is_wtx(*p)) && r.len() == 2 => {
                    let wtxm = u32::from(r[1] & 0x3F).max(1);
                    timeout = self.fwt_ms.saturating_mul(wtxm);
                    out = r;
                }
                Ok(r) if !r.is_empty() => return Ok(r),
                Ok(_) | Err(TransportError::Reader(_)) => {
                    failures += 1;
                    if failures > MAX_RETRIES {
                        return Err(TransportError::CardRemoved);
                    }
                    timeout = self.fwt_ms;
                    out = vec![PCB_R_NAK | self.block];
                }
                Err(e) => return Err(e),
            }
        }
        Err(TransportError::Reader("the card kept asking for more time".into()))
    }
}

impl<L: RfLink> Transport for IsoDep<L> {
    async fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        // PCB and the two CRC bytes take three bytes of each frame.
        let room = self.fsc - 3;
        let chunks: Vec<&[u8]> = apdu.chunks(room).collect();
        assert!(chunks.len() <= MAX_BLOCKS, "an APDU fits in a bounded number of blocks");
        let mut answer = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            let pcb = PCB_I | self.block | if last { 0 } else { PCB_CHAINING };
            let frame = [&[pcb][..], chunk].concat();
            let r = self.exchange_block(frame).await?;
            if !last {
                if !is_r_ack(r[0]) || r[0] & 1 != self.block {
                    return Err(TransportError::Reader(format!(
                        "expected R(ACK) while chaining, got PCB {:02X}",
                        r[0]
                    )));
                }
                self.block ^= 1;
                continue;
            }
            answer = r;
        }
        // Receive the answer, following the card's chaining.
        let mut data = Vec::new();
        for _ in 0..MAX_BLOCKS {
            let pcb = answer[0];
            if !is_i_block(pcb) {
                return Err(TransportError::Reader(format!("expected an I-block, got PCB {pcb:02X}")));
            }
            self.block ^= 1;
            data.extend_from_slice(&answer[1..]);
            if pcb & PCB_CHAINING == 0 {
                return Ok(data);
            }
            answer = self.exchange_block(vec![PCB_R_ACK | self.block]).await?;
        }
        Err(TransportError::Reader("the card's answer did not end".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::super::sim::{is_i_block, is_r_ack, run, Picc};

    #[test]
    fn short_apdus_go_in_one_block_and_block_numbers_toggle() {
        let mut d = IsoDep::new(Picc::new(256), 256, 10);
        let apdu = [0x00, 0xA4, 0x04, 0x0C, 0x02, 0x00, 0x0A];
        // The answer (3 x 7 + 2 bytes) fits one frame.
        assert_eq!(run(d.transmit(&apdu)).unwrap(), Picc::reply(&apdu));
        assert_eq!(run(d.transmit(&apdu)).unwrap(), Picc::reply(&apdu));
        let picc = d.into_link();
        assert_eq!(picc.log[0][0], 0x02);
        assert_eq!(picc.log[1][0], 0x03);
    }

    #[test]
    fn long_apdus_and_answers_are_chained_both_ways() {
        // A 32-byte frame size: 29 bytes per block.
        let mut d = IsoDep::new(Picc::new(32), 32, 10);
        let apdu: Vec<u8> = (0..100).collect();
        assert_eq!(run(d.transmit(&apdu)).unwrap(), Picc::reply(&apdu));
        // The block numbers stayed in step: the next exchange works too.
        assert_eq!(run(d.transmit(&apdu[..10])).unwrap(), Picc::reply(&apdu[..10]));
        let picc = d.into_link();
        let sent_chained = picc.log.iter().filter(|f| is_i_block(f[0]) && f[0] & PCB_CHAINING != 0).count();
        assert_eq!(sent_chained, 3, "100 bytes in 4 blocks of at most 29");
        assert!(picc.log.iter().any(|f| is_r_ack(f[0])), "the answer came chained");
    }

    #[test]
    fn waiting_time_extensions_are_echoed_and_lost_frames_sent_again() {
        let mut picc = Picc::new(256);
        picc.wtx_pending = true;
        let mut d = IsoDep::new(picc, 256, 10);
        assert_eq!(run(d.transmit(&[1, 2, 3])).unwrap(), Picc::reply(&[1, 2, 3]));
        assert!(d.link.log.iter().any(|f| f == &[0xF2, 0x05]), "the WTX was echoed");
        // The next I-block is lost on the way: R(NAK), the card's R(ACK), the block again.
        d.link.lose_next = true;
        assert_eq!(run(d.transmit(&[4, 5])).unwrap(), Picc::reply(&[4, 5]));
        assert!(d.link.log.iter().any(|f| f[0] & 0xF6 == 0xB2), "an R(NAK) asked again");
    }

    #[test]
    fn a_card_that_stays_silent_is_reported_removed() {
        struct Silent;
        impl RfLink for Silent {
            async fn exchange(&mut self, _: &[u8], _: u32) -> Result<Vec<u8>, TransportError> {
                Err(TransportError::Reader("timeout".into()))
            }
        }
        let mut d = IsoDep::new(Silent, 256, 10);
        assert_eq!(run(d.transmit(&[0, 0xB0, 0, 0, 4])), Err(TransportError::CardRemoved));
    }
}
