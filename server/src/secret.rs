//! Key files: written once, readable by their owner only, refused when others may read them;
//! secrets compared in constant time.

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

/// Reads a secret file, refusing one that others than its owner may read or write (as ssh
/// refuses such a private key): a key anyone on the machine can read is no longer secret.
pub fn read_secret_file(path: &std::path::Path) -> anyhow::Result<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.permissions().mode();
        anyhow::ensure!(
            mode & 0o077 == 0,
            "{} may be read or changed by others (mode {:o}); make it the owner's only: chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// True when two secrets are equal, in time that does not depend on where they differ.
/// Both are hashed first, so the time does not reveal the length either.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq as _;
    Sha256::digest(a).ct_eq(&Sha256::digest(b)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret(b"token", b"token"));
        assert!(!same_secret(b"token", b"tokeN"));
        assert!(!same_secret(b"token", b"token2"));
        assert!(!same_secret(b"", b"x"));
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_file_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("mykey-secret-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k");
        create_secret_file(&path, "secret\n").unwrap();
        assert_eq!(read_secret_file(&path).unwrap(), "secret\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_secret_file(&path).unwrap_err().to_string();
        assert!(e.contains("mode 644") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620)).unwrap();
        assert!(read_secret_file(&path).is_err(), "group-writable is refused too");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
