//! Sony RC-S380 "Port-100" framing (facts: `docs/card.md`, after nfcpy's `rcs380.py` and
//! Linux's `port100.c`): extended frames with length and data checksums, and the commands a
//! Type B exchange needs. The USB transfers themselves belong to the bridge (WebUSB).

/// The ACK frame; also cancels the last command.
pub const ACK: [u8; 6] = [0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00];
/// Host-to-reader marker.
pub const TO_READER: u8 = 0xD6;
/// Reader-to-host marker.
pub const FROM_READER: u8 = 0xD7;

/// Command codes.
pub mod code {
    /// Set the RF (bit rate and modulation).
    pub const IN_SET_RF: u8 = 0x00;
    /// Set protocol parameters.
    pub const IN_SET_PROTOCOL: u8 = 0x02;
    /// Exchange bytes over RF.
    pub const IN_COMM_RF: u8 = 0x04;
    /// RF on or off.
    pub const SWITCH_RF: u8 = 0x06;
    /// Firmware version.
    pub const GET_FIRMWARE_VERSION: u8 = 0x20;
    /// Command type.
    pub const SET_COMMAND_TYPE: u8 = 0x2A;
}

/// Why a frame is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not an extended frame.
    #[error("not a Port-100 frame")]
    NotAFrame,
    /// Length or data checksum wrong.
    #[error("a Port-100 checksum does not match")]
    Checksum,
    /// A reply to another command, or not a reply.
    #[error("the reader answered another command")]
    WrongReply,
    /// The RF exchange reported an error (mask): a timeout means no card in the field.
    #[error("the RF exchange failed (error mask {0:08X}); is the card on the reader?")]
    Rf(u32),
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)).wrapping_neg()
}

/// Wraps data in an extended frame.
pub fn encode(data: &[u8]) -> Vec<u8> {
    assert!(data.len() <= 0xFFFF, "a frame carries at most 65535 bytes");
    let len = (data.len() as u16).to_le_bytes();
    let mut f = vec![0x00, 0x00, 0xFF, 0xFF, 0xFF, len[0], len[1], checksum(&len)];
    f.extend_from_slice(data);
    f.push(checksum(data));
    f.push(0x00);
    f
}

/// Unwraps an extended frame, checking both checksums.
pub fn decode(frame: &[u8]) -> Result<&[u8], FrameError> {
    let rest = frame.strip_prefix(&[0x00, 0x00, 0xFF, 0xFF, 0xFF]).ok_or(FrameError::NotAFrame)?;
    if rest.len() < 3 {
        return Err(FrameError::NotAFrame);
    }
    if checksum(&rest[..2]) != rest[2] {
        return Err(FrameError::Checksum);
    }
    let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
    let body = rest.get(3..3 + len + 1).ok_or(FrameError::NotAFrame)?;
    let (data, dcs) = body.split_at(len);
    if checksum(data) != dcs[0] {
        return Err(FrameError::Checksum);
    }
    Ok(data)
}

/// A command frame: `D6`, the code, its parameters.
pub fn command(code: u8, params: &[u8]) -> Vec<u8> {
    let mut data = vec![TO_READER, code];
    data.extend_from_slice(params);
    encode(&data)
}

/// The parameters of a reply frame to `code` (whose reply code is `code + 1`).
pub fn reply(frame: &[u8], code: u8) -> Result<&[u8], FrameError> {
    match decode(frame)? {
        [FROM_READER, c, rest @ ..] if *c == code.wrapping_add(1) => Ok(rest),
        _ => Err(FrameError::WrongReply),
    }
}

/// InCommRF parameters: timeout in 0.1 ms units, `(ms + 1) * 10` capped at `FFFF`, little
/// endian, then the bytes to send.
pub fn in_comm_rf(timeout_ms: u32, send: &[u8]) -> Vec<u8> {
    let t = ((timeout_ms + 1) * 10).min(0xFFFF) as u16;
    let mut p = t.to_le_bytes().to_vec();
    p.extend_from_slice(send);
    command(code::IN_COMM_RF, &p)
}

/// The received bytes of an InCommRF reply: a 4-byte error mask (0 = fine), one byte to skip,
/// the data.
pub fn in_comm_rf_reply(frame: &[u8]) -> Result<&[u8], FrameError> {
    let p = reply(frame, code::IN_COMM_RF)?;
    if p.len() < 5 {
        return Err(FrameError::WrongReply);
    }
    let mask = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
    if mask != 0 {
        return Err(FrameError::Rf(mask));
    }
    Ok(&p[5..])
}

/// SENSB_REQ: poll for a Type B card (AFI 00, one slot).
pub const SENSB_REQ: [u8; 3] = [0x05, 0x00, 0x10];

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()).collect()
    }

    // The worked frames of docs/card.md.
    #[test]
    fn frames_match_the_worked_examples() {
        assert_eq!(encode(&[0x31, 0x32]), hex("00 00 FF FF FF 02 00 FE 31 32 9D 00"));
        assert_eq!(
            command(code::IN_SET_RF, &hex("03 07 0F 07")),
            hex("00 00 FF FF FF 06 00 FA D6 00 03 07 0F 07 0A 00")
        );
        assert_eq!(in_comm_rf(30, &SENSB_REQ), hex("00 00 FF FF FF 07 00 F9 D6 04 36 01 05 00 10 DA 00"));
        assert_eq!(command(code::GET_FIRMWARE_VERSION, &[]), hex("00 00 FF FF FF 02 00 FE D6 20 0A 00"));
        let answer = hex("00 00 FF FF FF 04 00 FC D7 21 11 01 F6 00");
        assert_eq!(reply(&answer, code::GET_FIRMWARE_VERSION).unwrap(), &[0x11, 0x01]);
    }

    #[test]
    fn bad_frames_are_refused() {
        let mut f = encode(&[1, 2, 3]);
        assert_eq!(decode(&f).unwrap(), &[1, 2, 3]);
        f[9] ^= 1;
        assert_eq!(decode(&f), Err(FrameError::Checksum));
        assert_eq!(decode(&ACK), Err(FrameError::NotAFrame));
        let answer = hex("00 00 FF FF FF 04 00 FC D7 21 11 01 F6 00");
        assert_eq!(reply(&answer, code::SWITCH_RF), Err(FrameError::WrongReply));
        // An RF timeout (mask 0x80): no card.
        let timeout = encode(&[FROM_READER, 0x05, 0x80, 0, 0, 0, 0]);
        assert_eq!(in_comm_rf_reply(&timeout), Err(FrameError::Rf(0x80)));
        let data = encode(&[FROM_READER, 0x05, 0, 0, 0, 0, 0, 0x50, 1, 2]);
        assert_eq!(in_comm_rf_reply(&data).unwrap(), &[0x50, 1, 2]);
    }
}
