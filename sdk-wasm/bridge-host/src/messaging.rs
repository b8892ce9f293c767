//! Native messaging framing: a 32-bit length in native byte order, then that many bytes of
//! UTF-8 JSON. Requests above [`MAX_REQUEST`] are refused; answers stay far below the
//! browser's 1 MB limit (a certificate is about 2 KB).

use std::io::{Read, Write};

use mykey_core::card::bridge::MAX_REQUEST;

/// Reads one message; `None` at the end of input (the browser closed the port).
pub fn read_message(r: &mut impl Read) -> anyhow::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_ne_bytes(len) as usize;
    anyhow::ensure!(len <= MAX_REQUEST, "a message of {len} bytes is above the {MAX_REQUEST}-byte limit");
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

/// Writes one message.
pub fn write_message(w: &mut impl Write, body: &[u8]) -> anyhow::Result<()> {
    let len = u32::try_from(body.len())?;
    w.write_all(&len.to_ne_bytes())?;
    w.write_all(body)?;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_ones_are_refused() {
        let mut buf = Vec::new();
        write_message(&mut buf, br#"{"id":1}"#).unwrap();
        assert_eq!(&buf[..4], &8u32.to_ne_bytes());
        let mut r = buf.as_slice();
        assert_eq!(read_message(&mut r).unwrap().unwrap(), br#"{"id":1}"#);
        assert_eq!(read_message(&mut r).unwrap(), None);
        let big = ((MAX_REQUEST + 1) as u32).to_ne_bytes();
        assert!(read_message(&mut big.as_slice()).is_err());
    }
}
