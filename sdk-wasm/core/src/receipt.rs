//! A log receipt as a printed receipt's QR code carries it: which transaction, where its leaf
//! sits in the tamper-evident log and the leaf's hash. Whoever holds the paper can ask any copy
//! of the log for an inclusion proof and check it against a signed checkpoint, without trusting
//! the shop or the points cloud's database (docs/log-format.md).
//!
//! The text is `mykey-receipt:1:<transaction>:<leaf index>:<leaf hash, base64>`; a receipt's QR
//! code carries it after `<origin>/app/receipt#`, so that a phone's camera opens the page that
//! checks it.

use base64::Engine as _;
use uuid::Uuid;

use crate::merkle::Hash;

/// What every receipt text starts with; the digit is the format's version.
pub const PREFIX: &str = "mykey-receipt:1:";

/// The path of the web app's page that checks a receipt (the text follows `#`).
pub const PAGE: &str = "/app/receipt";

/// The longest receipt text (the prefix, a hyphenated UUID, a u64, base64 of 32 bytes, colons).
pub const MAX_TEXT: usize = 16 + 36 + 1 + 20 + 1 + 44;

/// Why a text is not a receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Not `mykey-receipt:1:…` or too long.
    #[error("this is not a points cloud receipt (it should start with {PREFIX:?})")]
    NotAReceipt,
    /// The transaction id is not a UUID.
    #[error("the receipt's transaction id is not a UUID")]
    Transaction,
    /// The leaf index is not a number.
    #[error("the receipt's position in the log is not a number")]
    Index,
    /// The leaf hash is not base64 of 32 bytes.
    #[error("the receipt's leaf hash is not a base64 SHA-256 hash")]
    Hash,
}

/// A transaction's place in the log, as a receipt prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogReceipt {
    /// The transaction (the id its request carried).
    pub transaction: Uuid,
    /// Its leaf's position in the log.
    pub leaf_index: u64,
    /// `SHA-256(0x00 || leaf)`.
    pub leaf_hash: Hash,
}

impl LogReceipt {
    /// From a transaction answer's fields (`leaf_hash` in base64, as the API gives it).
    pub fn new(transaction: Uuid, leaf_index: u64, leaf_hash: &str) -> Result<LogReceipt, ReceiptError> {
        Ok(LogReceipt { transaction, leaf_index, leaf_hash: decode_hash(leaf_hash)? })
    }

    /// The receipt's text.
    pub fn text(&self) -> String {
        let hash = base64::engine::general_purpose::STANDARD.encode(self.leaf_hash);
        format!("{PREFIX}{}:{}:{hash}", self.transaction, self.leaf_index)
    }

    /// The address of the page that checks this receipt, at `origin` (`https://host`).
    pub fn url(&self, origin: &str) -> String {
        format!("{origin}{PAGE}#{}", self.text())
    }

    /// Reads a receipt's text, or the address of its page (what a QR code decodes to).
    pub fn parse(text: &str) -> Result<LogReceipt, ReceiptError> {
        let text = text.trim();
        let text = match text.find('#') {
            Some(at) => &text[at + 1..],
            None => text,
        };
        if text.len() > MAX_TEXT {
            return Err(ReceiptError::NotAReceipt);
        }
        let rest = text.strip_prefix(PREFIX).ok_or(ReceiptError::NotAReceipt)?;
        let mut parts = rest.split(':');
        let (Some(tx), Some(index), Some(hash), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(ReceiptError::NotAReceipt);
        };
        let transaction = Uuid::try_parse(tx).map_err(|_| ReceiptError::Transaction)?;
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ReceiptError::Index);
        }
        let leaf_index = index.parse().map_err(|_| ReceiptError::Index)?;
        Ok(LogReceipt { transaction, leaf_index, leaf_hash: decode_hash(hash)? })
    }
}

fn decode_hash(b64: &str) -> Result<Hash, ReceiptError> {
    base64::engine::general_purpose::STANDARD.decode(b64).ok().and_then(|v| v.try_into().ok()).ok_or(ReceiptError::Hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn sample() -> LogReceipt {
        LogReceipt { transaction: Uuid::from_u128(0x0123_4567_89ab_cdef), leaf_index: 42, leaf_hash: [7; 32] }
    }

    #[test]
    fn a_receipt_reads_back_from_its_text_and_its_page_address() {
        let r = sample();
        assert_eq!(LogReceipt::parse(&r.text()).unwrap(), r);
        let url = r.url("https://points.example.jp");
        assert!(url.starts_with("https://points.example.jp/app/receipt#mykey-receipt:1:"), "{url}");
        assert_eq!(LogReceipt::parse(&url).unwrap(), r);
        assert!(r.text().len() <= MAX_TEXT);
        let longest = LogReceipt { leaf_index: u64::MAX, ..r };
        assert_eq!(longest.text().len(), MAX_TEXT);
    }

    #[test]
    fn anything_else_is_refused_with_its_reason() {
        let text = sample().text();
        assert_eq!(LogReceipt::parse("hello"), Err(ReceiptError::NotAReceipt));
        assert_eq!(LogReceipt::parse(&text.replace(":1:", ":2:")), Err(ReceiptError::NotAReceipt));
        assert_eq!(LogReceipt::parse(&format!("{text}:extra")), Err(ReceiptError::NotAReceipt));
        assert_eq!(LogReceipt::parse(&text.replacen("00000000", "zzzzzzzz", 1)), Err(ReceiptError::Transaction));
        assert_eq!(LogReceipt::parse(&text.replace(":42:", ":-4:")), Err(ReceiptError::Index));
        assert_eq!(LogReceipt::parse(&text.replace(":42:", "::")), Err(ReceiptError::Index));
        let short = &text[..text.len() - 4];
        assert_eq!(LogReceipt::parse(short), Err(ReceiptError::Hash));
        assert_eq!(LogReceipt::new(Uuid::nil(), 1, "AAAA"), Err(ReceiptError::Hash));
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #[test]
        fn every_receipt_survives_its_text(tx: u128, index: u64, hash: [u8; 32]) {
            let r = LogReceipt { transaction: Uuid::from_u128(tx), leaf_index: index, leaf_hash: hash };
            proptest::prop_assert_eq!(LogReceipt::parse(&r.text()).unwrap(), r);
        }

        #[test]
        fn no_text_panics(s in "\\PC{0,200}") {
            let _ = LogReceipt::parse(&s);
        }
    }
}
