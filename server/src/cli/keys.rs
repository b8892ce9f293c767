//! Key and secret files the subcommands create.

/// A new witness key named `name`.
pub(crate) fn new_witness_key(name: &str) -> mykey_core::note::SignerKey {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    mykey_core::note::SignerKey::witness(name, seed).expect("a witness name without spaces or '+'")
}

/// Loads the demo CA, or creates and saves one.
#[cfg(feature = "demo")]
pub(crate) fn demo_ca(path: &std::path::Path) -> anyhow::Result<mykey_virtual_card::DemoCa> {
    if path.exists() {
        // The demo CA is no secret worth refusing over (the tests keep one in the repository,
        // where git gives every file mode 0644); it is trusted by the demo only.
        let json = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        return mykey_virtual_card::DemoCa::from_json(&json);
    }
    let ca = mykey_virtual_card::DemoCa::generate(&mut rand::rngs::OsRng, std::time::SystemTime::now())?;
    mykey_server::secret::replace_secret_file(path, &ca.to_json()?)?;
    Ok(ca)
}
