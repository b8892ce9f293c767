//! The log's signer of C2SP checkpoints, and its key file.

use super::tree::Hash;

/// The log's identity: its origin (the checkpoint's first line and the key name) and the
/// Ed25519 key that signs its checkpoints.
pub struct LogSigner {
    key: mykey_core::note::SignerKey,
}

impl LogSigner {
    /// A signer for `origin` from a 32-byte seed.
    pub fn new(origin: &str, seed: [u8; 32]) -> anyhow::Result<LogSigner> {
        Ok(LogSigner { key: mykey_core::note::SignerKey::log(origin, seed).map_err(|e| anyhow::anyhow!("{e}"))? })
    }

    /// A fresh random key (tests, benchmarks).
    pub fn generate(origin: &str) -> LogSigner {
        use rand::RngCore;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Self::new(origin, seed).expect("valid origin")
    }

    /// Reads the key file (a C2SP skey), or creates it with a new key, readable by the owner
    /// only. The origin comes from the file when it exists.
    pub fn from_file(path: &std::path::Path, origin: &str) -> anyhow::Result<LogSigner> {
        let key = key_file(path, || Self::generate(origin).key)?;
        anyhow::ensure!(
            key.kind() == mykey_core::note::TYPE_ED25519,
            "{} is not a log key (type 0x01)",
            path.display()
        );
        Ok(LogSigner { key })
    }

    /// The public key as a C2SP vkey, for witnesses and clients.
    pub fn vkey(&self) -> String {
        self.key.verifier().encode()
    }

    /// The origin line.
    pub fn origin(&self) -> String {
        self.key.verifier().name().to_owned()
    }

    /// A signed checkpoint note for a tree of `size` leaves with head `root`.
    pub fn checkpoint(&self, size: u64, root: Hash) -> String {
        let cp = mykey_core::note::Checkpoint { origin: self.origin(), size, root, extensions: Vec::new() };
        mykey_core::note::Note::sign(&cp.to_text(), &[&self.key]).expect("checkpoint text is a valid note text")
    }
}

/// Reads a C2SP skey file, or creates it with `new()` readable by the owner only.
pub fn key_file(
    path: &std::path::Path,
    new: impl FnOnce() -> mykey_core::note::SignerKey,
) -> anyhow::Result<mykey_core::note::SignerKey> {
    if path.exists() {
        let text = crate::secret::read_secret_file(path)?;
        return mykey_core::note::SignerKey::parse(text.trim()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
    }
    let key = new();
    crate::secret::create_secret_file(path, &format!("{}\n", key.encode()))?;
    Ok(key)
}
