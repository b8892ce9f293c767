//! C2SP signed notes (`signed-note`), checkpoints (`tlog-checkpoint`) and Ed25519
//! cosignatures (`tlog-cosignature`, `cosignature/v1`): signing for the log and its witnesses,
//! verification for everyone (server, browser, partner).
//!
//! A note is UTF-8 text ending in a newline, a blank line, then signature lines
//! `— <key name> base64(key ID || signature)`. Key IDs are the first four bytes of
//! `SHA-256(name || "\n" || type || public key)`, type 0x01 for a log's Ed25519 key and 0x04
//! for a witness's Ed25519 cosignature key.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// Signature type of a plain Ed25519 note key.
pub const TYPE_ED25519: u8 = 0x01;
/// Signature type of an Ed25519 cosignature/v1 key.
pub const TYPE_COSIGNATURE_V1: u8 = 0x04;
/// Most signature lines read from one note (as the Go implementation).
pub const MAX_SIGNATURES: usize = 100;
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a note, key or checkpoint is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Not a well-formed note.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// Not a well-formed key.
    #[error("malformed key: {0}")]
    Key(&'static str),
    /// No signature by the key asked for, or it does not verify.
    #[error("no valid signature by {0}")]
    Unverified(String),
    /// Fewer valid cosignatures than the quorum.
    #[error("{got} valid cosignatures, {want} needed")]
    Quorum {
        /// Valid cosignatures found.
        got: usize,
        /// Quorum.
        want: usize,
    },
    /// Not a well-formed checkpoint.
    #[error("malformed checkpoint: {0}")]
    Checkpoint(&'static str),
}

fn key_id(name: &str, kind: u8, key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([kind]);
    h.update(key);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

/// A public key that checks signatures: a log key (type 0x01) or a witness key (type 0x04).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    kind: u8,
    id: [u8; 4],
    key: VerifyingKey,
}

impl VerifierKey {
    /// Parses a vkey: `<name>+<hex key ID>+<base64(type || public key)>`.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::Key("expected name+id+key"));
        };
        if !valid_name(name) || id_hex.len() != 8 {
            return Err(NoteError::Key("bad name or key ID"));
        }
        let raw = B64.decode(b64).map_err(|_| NoteError::Key("key is not base64"))?;
        let (kind, key) = raw.split_first().ok_or(NoteError::Key("empty key"))?;
        if *kind != TYPE_ED25519 && *kind != TYPE_COSIGNATURE_V1 {
            return Err(NoteError::Key("unsupported signature type"));
        }
        let key: [u8; 32] = key.try_into().map_err(|_| NoteError::Key("an Ed25519 key has 32 bytes"))?;
        let vk = VerifyingKey::from_bytes(&key).map_err(|_| NoteError::Key("not an Ed25519 point"))?;
        let id = key_id(name, *kind, &key);
        if hex4(&id) != id_hex {
            return Err(NoteError::Key("key ID does not match the key"));
        }
        Ok(VerifierKey { name: name.to_owned(), kind: *kind, id, key: vk })
    }

    /// The signature type: [`TYPE_ED25519`] or [`TYPE_COSIGNATURE_V1`].
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// The key's name (a log origin or witness name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The vkey text.
    pub fn encode(&self) -> String {
        let mut raw = vec![self.kind];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex4(&self.id), B64.encode(raw))
    }
}

fn hex4(id: &[u8; 4]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// A private key that signs notes (log, type 0x01) or cosigns checkpoints (witness, 0x04).
pub struct SignerKey {
    name: String,
    kind: u8,
    id: [u8; 4],
    key: SigningKey,
}

impl SignerKey {
    /// A log key from a 32-byte seed.
    pub fn log(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        Self::new(name, TYPE_ED25519, seed)
    }

    /// A witness cosignature key from a 32-byte seed.
    pub fn witness(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        Self::new(name, TYPE_COSIGNATURE_V1, seed)
    }

    fn new(name: &str, kind: u8, seed: [u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Key("a key name has no spaces or '+'"));
        }
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(name, kind, key.verifying_key().as_bytes());
        Ok(SignerKey { name: name.to_owned(), kind, id, key })
    }

    /// Parses an skey: `PRIVATE+KEY+<name>+<hex key ID>+<base64(type || seed)>`.
    pub fn parse(skey: &str) -> Result<Self, NoteError> {
        let rest = skey.strip_prefix("PRIVATE+KEY+").ok_or(NoteError::Key("expected PRIVATE+KEY+"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::Key("expected name+id+key"));
        };
        let raw = B64.decode(b64).map_err(|_| NoteError::Key("key is not base64"))?;
        let (kind, seed) = raw.split_first().ok_or(NoteError::Key("empty key"))?;
        let seed: [u8; 32] = seed.try_into().map_err(|_| NoteError::Key("an Ed25519 seed has 32 bytes"))?;
        let k = Self::new(name, *kind, seed)?;
        if hex4(&k.id) != id_hex || (*kind != TYPE_ED25519 && *kind != TYPE_COSIGNATURE_V1) {
            return Err(NoteError::Key("key ID or type does not match"));
        }
        Ok(k)
    }

    /// The signature type: [`TYPE_ED25519`] or [`TYPE_COSIGNATURE_V1`].
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// The skey text (secret: keep it out of logs).
    pub fn encode(&self) -> String {
        let mut raw = vec![self.kind];
        raw.extend_from_slice(&self.key.to_bytes());
        format!("PRIVATE+KEY+{}+{}+{}", self.name, hex4(&self.id), B64.encode(raw))
    }

    /// The matching public key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey { name: self.name.clone(), kind: self.kind, id: self.id, key: self.key.verifying_key() }
    }

    fn line(&self, sig: &[u8]) -> String {
        let mut raw = self.id.to_vec();
        raw.extend_from_slice(sig);
        format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(raw))
    }
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureLine {
    /// Key name.
    pub name: String,
    /// Key ID.
    pub id: [u8; 4],
    /// The rest: the signature (with a timestamp first for cosignatures).
    pub signature: Vec<u8>,
}

/// A note split into its text and signature lines (nothing verified yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in a newline.
    pub text: String,
    /// Signature lines, in order.
    pub signatures: Vec<SignatureLine>,
}

impl Note {
    /// Splits a signed note.
    pub fn parse(msg: &str) -> Result<Note, NoteError> {
        let split = msg.rfind("\n\n").ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let text = &msg[..split + 1];
        let sigs = &msg[split + 2..];
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(NoteError::Malformed("control characters in the text"));
        }
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(NoteError::Malformed("signature lines end with a newline"));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::Malformed("too many signatures"));
            }
            let rest =
                line.strip_prefix(SIG_PREFIX).ok_or(NoteError::Malformed("a signature line starts with an em dash"))?;
            let (name, b64) = rest.split_once(' ').ok_or(NoteError::Malformed("signature line without a signature"))?;
            let raw = B64.decode(b64).map_err(|_| NoteError::Malformed("signature is not base64"))?;
            if !valid_name(name) || raw.len() < 5 {
                return Err(NoteError::Malformed("bad signature line"));
            }
            signatures.push(SignatureLine {
                name: name.to_owned(),
                id: [raw[0], raw[1], raw[2], raw[3]],
                signature: raw[4..].to_vec(),
            });
        }
        Ok(Note { text: text.to_owned(), signatures })
    }

    /// Signs `text` (which must end in a newline) with each key.
    pub fn sign(text: &str, keys: &[&SignerKey]) -> Result<String, NoteError> {
        if !text.ends_with('\n') || text.contains("\n\n") {
            return Err(NoteError::Malformed("text ends in one newline and has no blank line"));
        }
        let mut out = format!("{text}\n");
        for k in keys {
            if k.kind != TYPE_ED25519 {
                return Err(NoteError::Key("cosignature keys sign with cosign()"));
            }
            out.push_str(&k.line(&k.key.sign(text.as_bytes()).to_bytes()));
        }
        Ok(out)
    }

    fn find<'a>(&'a self, key: &VerifierKey) -> impl Iterator<Item = &'a SignatureLine> {
        let (name, id) = (key.name.clone(), key.id);
        self.signatures.iter().filter(move |s| s.name == name && s.id == id)
    }

    /// Checks the signature of a log key (type 0x01) over the text.
    pub fn verify(&self, key: &VerifierKey) -> Result<(), NoteError> {
        let ok = key.kind == TYPE_ED25519
            && self.find(key).any(|s| {
                <[u8; 64]>::try_from(s.signature.as_slice()).is_ok_and(|sig| {
                    key.key.verify_strict(self.text.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig)).is_ok()
                })
            });
        if ok {
            Ok(())
        } else {
            Err(NoteError::Unverified(key.name.clone()))
        }
    }

    /// Checks a witness's cosignature/v1 over the text; returns its timestamp.
    pub fn verify_cosignature(&self, key: &VerifierKey) -> Result<u64, NoteError> {
        if key.kind != TYPE_COSIGNATURE_V1 {
            return Err(NoteError::Unverified(key.name.clone()));
        }
        for s in self.find(key) {
            if s.signature.len() != 8 + 64 {
                continue;
            }
            let time = u64::from_be_bytes(s.signature[..8].try_into().expect("8 bytes"));
            let sig: [u8; 64] = s.signature[8..].try_into().expect("64 bytes");
            let msg = cosigned_message(time, &self.text);
            if time < 1 << 63
                && key.key.verify_strict(msg.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig)).is_ok()
            {
                return Ok(time);
            }
        }
        Err(NoteError::Unverified(key.name.clone()))
    }

    /// Checks the log's signature and at least `quorum` distinct witnesses' cosignatures.
    pub fn verify_witnessed(
        &self,
        log: &VerifierKey,
        witnesses: &[VerifierKey],
        quorum: usize,
    ) -> Result<Checkpoint, NoteError> {
        self.verify(log)?;
        let checkpoint = Checkpoint::parse(&self.text)?;
        if checkpoint.origin != log.name {
            return Err(NoteError::Checkpoint("the origin is not the log key's name"));
        }
        let mut names: Vec<&str> =
            witnesses.iter().filter(|w| self.verify_cosignature(w).is_ok()).map(|w| w.name()).collect();
        names.sort_unstable();
        names.dedup();
        if names.len() < quorum {
            return Err(NoteError::Quorum { got: names.len(), want: quorum });
        }
        Ok(checkpoint)
    }
}

/// Evidence that a log showed two histories: two checkpoints of one origin and size with
/// different tree heads, both validly signed by the log. Witnesses (or anyone holding
/// cosigned checkpoints from different witnesses) compare notes with this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitView {
    /// The log's origin.
    pub origin: String,
    /// The size both checkpoints claim.
    pub size: u64,
    /// One tree head.
    pub first_root: Hash,
    /// The other.
    pub second_root: Hash,
}

/// Compares two signed checkpoints of the same log: `Some` is proof of misbehaviour.
/// Checkpoints of different sizes need a consistency proof instead (`merkle`).
pub fn split_view(a: &Note, b: &Note, log: &VerifierKey) -> Option<SplitView> {
    a.verify(log).ok()?;
    b.verify(log).ok()?;
    let (ca, cb) = (Checkpoint::parse(&a.text).ok()?, Checkpoint::parse(&b.text).ok()?);
    (ca.origin == cb.origin && ca.size == cb.size && ca.root != cb.root).then_some(SplitView {
        origin: ca.origin,
        size: ca.size,
        first_root: ca.root,
        second_root: cb.root,
    })
}

fn cosigned_message(time: u64, text: &str) -> String {
    format!("cosignature/v1\ntime {time}\n{text}")
}

/// A witness's cosignature line for a checkpoint note's text at `time` (POSIX seconds).
pub fn cosign(key: &SignerKey, checkpoint_text: &str, time: u64) -> Result<String, NoteError> {
    if key.kind != TYPE_COSIGNATURE_V1 {
        return Err(NoteError::Key("only a cosignature key cosigns"));
    }
    let sig = key.key.sign(cosigned_message(time, checkpoint_text).as_bytes());
    let mut raw = time.to_be_bytes().to_vec();
    raw.extend_from_slice(&sig.to_bytes());
    Ok(key.line(&raw))
}

/// A tree head as C2SP `tlog-checkpoint` text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin (its key name).
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 9162 root hash.
    pub root: Hash,
    /// Extension lines, without newlines.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text.
    pub fn to_text(&self) -> String {
        let mut s = format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root));
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parses note text.
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let body = text.strip_suffix('\n').ok_or(NoteError::Checkpoint("text ends in a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or(NoteError::Checkpoint("no origin"))?;
        let size_s = lines.next().ok_or(NoteError::Checkpoint("no size"))?;
        if size_s.is_empty()
            || (size_s.len() > 1 && size_s.starts_with('0'))
            || !size_s.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(NoteError::Checkpoint("size is a decimal without leading zeroes"));
        }
        let size: u64 = size_s.parse().map_err(|_| NoteError::Checkpoint("size out of range"))?;
        let root = B64
            .decode(lines.next().ok_or(NoteError::Checkpoint("no root hash"))?)
            .ok()
            .and_then(|r| <Hash>::try_from(r).ok())
            .ok_or(NoteError::Checkpoint("root hash is 32 bytes of base64"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(NoteError::Checkpoint("empty extension line"));
        }
        Ok(Checkpoint { origin: origin.to_owned(), size, root, extensions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    // The signed-note example of golang.org/x/mod/sumdb/note.
    const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const SIGNED: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn signs_and_verifies_the_reference_note() {
        let skey = SignerKey::parse(SKEY).unwrap();
        assert_eq!(skey.encode(), SKEY);
        assert_eq!(skey.verifier().encode(), VKEY);
        assert_eq!(Note::sign(TEXT, &[&skey]).unwrap(), SIGNED);
        let vkey = VerifierKey::parse(VKEY).unwrap();
        let note = Note::parse(SIGNED).unwrap();
        assert_eq!(note.text, TEXT);
        note.verify(&vkey).unwrap();
        let tampered = Note::parse(&SIGNED.replace("cryptography", "cryptographY")).unwrap();
        assert!(tampered.verify(&vkey).is_err());
    }

    #[test]
    fn bad_keys_and_notes_are_refused() {
        assert!(VerifierKey::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").is_err());
        assert!(VerifierKey::parse("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW").is_err());
        assert!(VerifierKey::parse(&VKEY[..VKEY.len() - 4]).is_err());
        assert!(Note::parse(TEXT).is_err(), "no signatures");
        assert!(Note::parse(&SIGNED.replace('\u{2014}', "-")).is_err());
    }

    fn seed(b: u8) -> [u8; 32] {
        [b; 32]
    }

    #[test]
    fn checkpoints_round_trip_and_need_a_quorum_of_witnesses() {
        let log = SignerKey::log("mykey.example/log", seed(1)).unwrap();
        let cp = Checkpoint { origin: "mykey.example/log".into(), size: 20852163, root: [7; 32], extensions: vec![] };
        assert_eq!(Checkpoint::parse(&cp.to_text()).unwrap(), cp);
        let w: Vec<SignerKey> =
            (2..5).map(|i| SignerKey::witness(&format!("w{i}.example"), seed(i)).unwrap()).collect();
        let wv: Vec<VerifierKey> = w.iter().map(SignerKey::verifier).collect();
        let mut signed = Note::sign(&cp.to_text(), &[&log]).unwrap();
        signed.push_str(&cosign(&w[0], &cp.to_text(), 1_700_000_000).unwrap());
        let note = Note::parse(&signed).unwrap();
        assert_eq!(note.verify_cosignature(&wv[0]), Ok(1_700_000_000));
        assert_eq!(note.verify_witnessed(&log.verifier(), &wv, 2), Err(NoteError::Quorum { got: 1, want: 2 }));
        signed.push_str(&cosign(&w[1], &cp.to_text(), 1_700_000_001).unwrap());
        let note = Note::parse(&signed).unwrap();
        assert_eq!(note.verify_witnessed(&log.verifier(), &wv, 2).unwrap(), cp);
        // A cosignature over another checkpoint does not count.
        let other = Checkpoint { size: 20852164, ..cp.clone() };
        let mut forged = Note::sign(&other.to_text(), &[&log]).unwrap();
        forged.push_str(&cosign(&w[0], &cp.to_text(), 1).unwrap());
        forged.push_str(&cosign(&w[1], &other.to_text(), 1).unwrap());
        let forged = Note::parse(&forged).unwrap();
        assert_eq!(forged.verify_witnessed(&log.verifier(), &wv, 2), Err(NoteError::Quorum { got: 1, want: 2 }));
        // Keys of the wrong type never verify.
        assert!(note.verify(&wv[0]).is_err());
        assert!(note.verify_cosignature(&log.verifier()).is_err());
    }

    #[test]
    fn two_signed_heads_of_one_size_are_a_split_view() {
        let log = SignerKey::log("mykey.example/log", seed(1)).unwrap();
        let a = Checkpoint { origin: "mykey.example/log".into(), size: 5, root: [1; 32], extensions: vec![] };
        let b = Checkpoint { root: [2; 32], ..a.clone() };
        let na = Note::parse(&Note::sign(&a.to_text(), &[&log]).unwrap()).unwrap();
        let nb = Note::parse(&Note::sign(&b.to_text(), &[&log]).unwrap()).unwrap();
        let found = split_view(&na, &nb, &log.verifier()).unwrap();
        assert_eq!((found.size, found.first_root, found.second_root), (5, [1; 32], [2; 32]));
        assert_eq!(split_view(&na, &na, &log.verifier()), None);
        // Not evidence unless the log itself signed both.
        let other = SignerKey::log("mykey.example/log", seed(9)).unwrap();
        let forged = Note::parse(&Note::sign(&b.to_text(), &[&other]).unwrap()).unwrap();
        assert_eq!(split_view(&na, &forged, &log.verifier()), None);
    }

    #[test]
    fn checkpoint_text_is_strict() {
        assert!(Checkpoint::parse("o\n01\nAAAA\n").is_err());
        assert!(Checkpoint::parse("o\n1\nAAAA\n").is_err(), "short hash");
        assert!(Checkpoint::parse("\n1\n").is_err());
        let root = B64.encode([0u8; 32]);
        assert!(Checkpoint::parse(&format!("o\n1\n{root}\n")).is_ok());
        assert!(Checkpoint::parse(&format!("o\n1\n{root}")).is_err(), "final newline");
    }
}
