//! Key files: written once, readable by their owner only.

use anyhow::Context;

/// Writes a new secret file (a key) that only its owner may read; refuses to replace one.
pub fn create_secret_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("writing a new key to {}", path.display()))
}
