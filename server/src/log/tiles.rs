//! C2SP tlog-tiles: tile paths and entry bundles.

/// Tile height of the C2SP tlog-tiles layout: 256 hashes per tile.
pub const TILE_HEIGHT: u8 = 8;

/// The C2SP path of a hash tile (`tile/<L>/<N>[.p/<W>]`) or an entry bundle
/// (`tile/entries/<N>[.p/<W>]`), without the `/log/` prefix.
pub fn tile_path(level: Option<u8>, n: u64, width: u32) -> String {
    let mut digits = format!("{:03}", n % 1000);
    let mut rest = n / 1000;
    while rest > 0 {
        digits = format!("x{:03}/{digits}", rest % 1000);
        rest /= 1000;
    }
    let partial = if width == 1 << TILE_HEIGHT { String::new() } else { format!(".p/{width}") };
    match level {
        Some(l) => format!("tile/{l}/{digits}{partial}"),
        None => format!("tile/entries/{digits}{partial}"),
    }
}

/// Parses a C2SP tile path: (level or None for entries, index, width).
pub fn parse_tile_path(path: &str) -> Option<(Option<u8>, u64, u32)> {
    let rest = path.strip_prefix("tile/")?;
    let (level, rest) = rest.split_once('/')?;
    let level = if level == "entries" { None } else { Some(level.parse::<u8>().ok().filter(|l| *l < 8)?) };
    let (digits, width) = match rest.split_once(".p/") {
        Some((d, w)) => (d, w.parse::<u32>().ok().filter(|w| (1..(1 << TILE_HEIGHT)).contains(w))?),
        None => (rest, 1 << TILE_HEIGHT),
    };
    let parts: Vec<&str> = digits.split('/').collect();
    let mut n: u64 = 0;
    for (i, p) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        let d = if last { *p } else { p.strip_prefix('x')? };
        if d.len() != 3 || !d.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n = n.checked_mul(1000)?.checked_add(d.parse().ok()?)?;
    }
    // Canonical form only: no leading zero groups.
    (tile_path(level, n, width) == path).then_some((level, n, width))
}

/// Splits a C2SP entry bundle into its leaves; refuses a bundle cut short.
pub fn parse_entry_bundle(bundle: &[u8]) -> anyhow::Result<Vec<&[u8]>> {
    let mut leaves = Vec::new();
    let mut rest = bundle;
    // Bounded by the bundle's length: every round consumes at least two bytes.
    while !rest.is_empty() {
        anyhow::ensure!(rest.len() >= 2, "an entry bundle is cut short");
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        anyhow::ensure!(rest.len() >= 2 + len, "an entry bundle is cut short");
        leaves.push(&rest[2..2 + len]);
        rest = &rest[2 + len..];
    }
    Ok(leaves)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_round_trip() {
        assert_eq!(tile_path(Some(0), 1_234_067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(None, 5, 17), "tile/entries/005.p/17");
        for (l, n, w) in [(Some(0), 0, 256), (Some(3), 1_234_067, 1), (None, 999, 255), (None, 1000, 256)] {
            assert_eq!(parse_tile_path(&tile_path(l, n, w)), Some((l, n, w)));
        }
        assert_eq!(parse_tile_path("tile/0/x000/001"), None, "not canonical");
        assert_eq!(parse_tile_path("tile/0/001.p/256"), None);
        assert_eq!(parse_tile_path("tile/9/001"), None);
    }
}
