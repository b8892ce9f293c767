//! Key files: written once, readable by their owner only.

use anyhow::Context;

/// Writes a new secret file (a key) that only its owner may read; refuses to replace one.
pub fn create_secret_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    write_owner_only(path, text).with_context(|| format!("writing a new key to {}", path.display()))
}

/// Writes a secret file (a demo's keys, a virtual card) that only its owner may read,
/// replacing an older one.
pub fn replace_secret_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    // A file left by someone else may be readable by others: start afresh with mode 0600.
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("replacing {}", path.display()))
        }
        _ => {}
    }
    write_owner_only(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Creates `path` with mode 0600 (on Unix) and writes `text`; fails if it exists.
fn write_owner_only(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).and_then(|mut f| f.write_all(text.as_bytes()))
}
