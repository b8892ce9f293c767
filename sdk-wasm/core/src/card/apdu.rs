//! ISO 7816-4 short APDUs: what JPKI needs, nothing more.

/// A command APDU (short form: at most 255 data bytes, at most 256 expected).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// Class byte.
    pub cla: u8,
    /// Instruction.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (Lc is its length).
    pub data: Vec<u8>,
    /// Expected response length; 256 is encoded as `00`.
    pub le: Option<u16>,
}

impl Command {
    /// A command without data or Le.
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Command { cla, ins, p1, p2, data: Vec::new(), le: None }
    }

    /// With command data.
    pub fn data(mut self, data: &[u8]) -> Self {
        assert!(data.len() <= 255, "short APDUs carry at most 255 bytes");
        self.data = data.to_vec();
        self
    }

    /// With an expected length (1 to 256).
    pub fn le(mut self, le: u16) -> Self {
        assert!((1..=256).contains(&le), "short APDUs expect 1 to 256 bytes");
        self.le = Some(le);
        self
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![self.cla, self.ins, self.p1, self.p2];
        if !self.data.is_empty() {
            out.push(self.data.len() as u8);
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            out.push((le % 256) as u8);
        }
        out
    }
}

/// A response APDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Response data.
    pub data: Vec<u8>,
    /// Status word (SW1 SW2).
    pub sw: u16,
}

impl Response {
    /// Splits the status word off; `None` when fewer than two bytes arrived.
    pub fn parse(bytes: &[u8]) -> Option<Response> {
        let n = bytes.len().checked_sub(2)?;
        Some(Response { data: bytes[..n].to_vec(), sw: u16::from_be_bytes([bytes[n], bytes[n + 1]]) })
    }

    /// True for `90 00`.
    pub fn ok(&self) -> bool {
        self.sw == 0x9000
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn encodes_the_four_cases() {
        assert_eq!(Command::new(0, 0x20, 0, 0x80).to_bytes(), [0, 0x20, 0, 0x80]);
        assert_eq!(Command::new(0, 0xB0, 0, 0).le(4).to_bytes(), [0, 0xB0, 0, 0, 4]);
        assert_eq!(Command::new(0, 0xB0, 1, 0).le(256).to_bytes(), [0, 0xB0, 1, 0, 0]);
        assert_eq!(Command::new(0, 0xA4, 2, 0x0C).data(&[0, 0x0A]).to_bytes(), [0, 0xA4, 2, 0x0C, 2, 0, 0x0A]);
        assert_eq!(
            Command::new(0x80, 0x2A, 0, 0x80).data(&[1, 2]).le(256).to_bytes(),
            [0x80, 0x2A, 0, 0x80, 2, 1, 2, 0]
        );
    }

    #[test]
    fn parses_status_words() {
        let r = Response::parse(&[1, 2, 0x90, 0]).unwrap();
        assert_eq!((r.data.as_slice(), r.sw, r.ok()), (&[1u8, 2][..], 0x9000, true));
        assert_eq!(Response::parse(&[0x63]), None);
        assert_eq!(Response::parse(&[0x63, 0xC2]).unwrap().sw, 0x63C2);
    }
}
