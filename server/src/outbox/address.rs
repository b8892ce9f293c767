//! Where the server may send a webhook: public addresses, and loopback for development. A
//! store's or partner's URL must not make the server post into the operator's own network
//! (a cloud's metadata service, a database, an admin page), whether by an address literal or
//! by a name that resolves there; the name is checked on every connection, so a name that
//! changes its answer after registration (DNS rebinding) is caught too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether a webhook may be posted to `ip`: a public address or a loopback one.
pub fn may_receive(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.is_loopback() || public_v4(v4),
            None => v6.is_loopback() || public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local, fc00::/7.
        || (first & 0xfe00) == 0xfc00
        // Link-local, fe80::/10.
        || (first & 0xffc0) == 0xfe80
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

/// Resolves webhook hosts and keeps only the addresses a webhook may go to; a name that
/// resolves to none of them fails the delivery with a sentence saying so. `localhost` may
/// resolve to loopback (development); any other name must resolve to public addresses.
#[derive(Clone, Copy, Debug, Default)]
pub struct Resolver;

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept = keep(&host, found)?;
            let addrs: reqwest::dns::Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// The addresses `host` resolved to that a webhook may go to, or why none.
fn keep(host: &str, found: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let local_name = host.eq_ignore_ascii_case("localhost");
    let kept: Vec<SocketAddr> =
        found.into_iter().filter(|a| if local_name { a.ip().is_loopback() } else { public(a.ip()) }).collect();
    if kept.is_empty() {
        return Err(format!("{host} resolves to no public address; webhooks are not sent into private networks").into());
    }
    Ok(kept)
}

/// A public address (loopback is allowed only as a literal or as `localhost`).
fn public(ip: IpAddr) -> bool {
    let v4_loopback = matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()));
    may_receive(ip) && !ip.is_loopback() && !v4_loopback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused_public_and_loopback_kept() {
        for bad in [
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "192.0.2.1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!may_receive(bad.parse().unwrap()), "{bad}");
        }
        for good in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "127.0.0.1", "127.0.0.2", "::1", "::ffff:1.1.1.1"] {
            assert!(may_receive(good.parse().unwrap()), "{good}");
        }
        assert!(!public("127.0.0.1".parse().unwrap()) && !public("::ffff:127.0.0.1".parse().unwrap()));
        assert!(public("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn a_name_must_resolve_to_a_public_address_and_only_localhost_to_loopback() {
        let at = |ips: &[&str]| ips.iter().map(|i| SocketAddr::new(i.parse().unwrap(), 0)).collect::<Vec<_>>();
        let e = keep("hooks.store.example", at(&["10.1.2.3", "169.254.169.254"])).unwrap_err().to_string();
        assert!(e.contains("hooks.store.example resolves to no public address"), "{e}");
        assert!(keep("rebound.example", at(&["127.0.0.1"])).is_err(), "loopback only by its name");
        assert_eq!(keep("mixed.example", at(&["10.0.0.1", "93.184.216.34"])).unwrap(), at(&["93.184.216.34"]));
        assert_eq!(keep("localhost", at(&["127.0.0.1", "::1"])).unwrap(), at(&["127.0.0.1", "::1"]));
        assert!(keep("LOCALHOST", at(&["10.0.0.1"])).is_err());
    }
}
