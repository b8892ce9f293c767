//! ISO 14443-3 Type B activation, reader side: what SENSB_RES says about the card, and the
//! ATTRIB that selects it. Shared by the reader drivers.

use super::isodep::{IsoDep, RfLink};
use super::port100::SENSB_REQ;
use super::TransportError;

/// Frame sizes by FSCI (ISO 14443-3).
const FSC: [usize; 9] = [16, 24, 32, 40, 48, 64, 96, 128, 256];

/// A Type B card found in the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeB {
    /// Pseudo-unique PICC identifier.
    pub pupi: [u8; 4],
    /// Largest frame the card accepts.
    pub fsc: usize,
    /// Frame waiting time.
    pub fwt_ms: u32,
}

impl TypeB {
    /// Reads a SENSB_RES (at least 12 bytes starting `50`); `None` for anything else.
    pub fn from_sensb_res(res: &[u8]) -> Option<TypeB> {
        if res.len() < 12 || res[0] != 0x50 {
            return None;
        }
        let fsc = FSC[usize::from(res[10] >> 4).min(FSC.len() - 1)];
        let fwi = u32::from(res[11] >> 4).min(14);
        // FWT = (256 * 16 / fc) * 2^FWI, fc = 13.56 MHz: about 0.302 ms * 2^FWI.
        let fwt_ms = ((302u64 << fwi) / 1000).max(1) as u32;
        Some(TypeB { pupi: [res[1], res[2], res[3], res[4]], fsc, fwt_ms })
    }

    /// ATTRIB for this card: default timings, 256-byte frames from the card (FSDI 8),
    /// ISO 14443-4, no CID.
    pub fn attrib(&self) -> Vec<u8> {
        [&[0x1D][..], &self.pupi, &[0x00, 0x08, 0x01, 0x00]].concat()
    }
}

/// Polls once for a Type B card over `link` and activates it; `None` when the field is empty.
pub async fn poll<L: RfLink>(link: &mut L) -> Result<Option<TypeB>, TransportError> {
    link.prepare_type_b().await?;
    let card = match link.exchange(&SENSB_REQ, 30).await {
        Ok(r) => match TypeB::from_sensb_res(&r) {
            Some(card) => card,
            None => return Ok(None),
        },
        Err(TransportError::Reader(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    if link.exchange(&card.attrib(), card.fwt_ms).await?.is_empty() {
        return Err(TransportError::Reader("the card did not answer ATTRIB".into()));
    }
    Ok(Some(card))
}

/// Polls and, with a card present, returns the ISO-DEP transport to it (the link back with
/// the error otherwise, so the bridge can close it).
pub async fn connect<L: RfLink>(mut link: L) -> Result<IsoDep<L>, (L, TransportError)> {
    match poll(&mut link).await {
        Ok(Some(card)) => Ok(IsoDep::new(link, card.fsc, card.fwt_ms)),
        Ok(None) => Err((link, TransportError::Reader("no card on the reader".into()))),
        Err(e) => Err((link, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn reads_frame_size_and_waiting_time() {
        let card = TypeB::from_sensb_res(&[0x50, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0x81, 0x71]).unwrap();
        assert_eq!(card, TypeB { pupi: [1, 2, 3, 4], fsc: 256, fwt_ms: 38 });
        assert_eq!(card.attrib(), [0x1D, 1, 2, 3, 4, 0x00, 0x08, 0x01, 0x00]);
        assert_eq!(TypeB::from_sensb_res(&[0x50, 1, 2]), None);
        assert_eq!(TypeB::from_sensb_res(&[0x51; 12]), None);
    }
}
