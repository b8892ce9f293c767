//! Where the server may send a webhook: public addresses, and this machine's loopback only
//! under the development option ([`Targets::PublicAndLoopback`], `--allow-loopback-webhooks`).
//! A store's or partner's URL must not make the server post into the operator's own network
//! (a cloud's metadata service, a database, an admin page, the cloud's own ports), whether by
//! an address literal, by an IPv6 form that embeds an IPv4 address, or by a name that
//! resolves there; the name is checked on every connection, so a name that changes its answer
//! after registration (DNS rebinding) is caught too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Which addresses webhooks may go to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Targets {
    /// Public addresses only: production.
    #[default]
    Public,
    /// Public addresses and this machine's loopback (literals, or the name `localhost`):
    /// development, the demo and the tests, where a store's receiver runs beside the cloud.
    PublicAndLoopback,
}

impl Targets {
    /// Whether a webhook may be posted to `ip`.
    pub fn may_receive(self, ip: IpAddr) -> bool {
        public(ip) || (self == Targets::PublicAndLoopback && loopback(ip))
    }
}

/// This machine: 127.0.0.0/8, `::1`, and 127.0.0.0/8 mapped into IPv6.
fn loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// A public address: global IPv4 unicast, or global IPv6 unicast that embeds no IPv4 address
/// (an IPv4-mapped address counts as the IPv4 address it carries).
pub fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
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
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b == 18 || b == 19))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

/// Only global unicast (2000::/3) is public, less the blocks in it that are not one host on
/// the Internet or that carry an IPv4 address a relay would reach for us: IETF protocol
/// assignments with Teredo (2001::/23), documentation (2001:db8::/32, 3fff::/20) and 6to4
/// (2002::/16). Everything outside 2000::/3 is refused with it: `::/96` (IPv4-compatible),
/// `::ffff:0:0:0/96` (IPv4-translated), NAT64's 64:ff9b::/96 and 64:ff9b:1::/48, unique local
/// fc00::/7, link-local fe80::/10, site-local fec0::/10, multicast, loopback, unspecified.
fn public_v6(ip: Ipv6Addr) -> bool {
    let [s0, s1, ..] = ip.segments();
    (s0 & 0xe000) == 0x2000
        && !(s0 == 0x2001 && s1 < 0x0200)
        && !(s0 == 0x2001 && s1 == 0x0db8)
        && s0 != 0x2002
        && (s0 & 0xfff0) != 0x3ff0
}

/// Why a webhook host was not connected to: it resolved to no address a webhook may go to.
/// What the owner sees names its own host only, never the addresses it resolved to.
#[derive(Debug)]
pub struct NotPublic {
    /// The host name in the webhook URL.
    pub host: String,
}

impl std::fmt::Display for NotPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves to no public address; webhooks are not sent into private networks", self.host)
    }
}

impl std::error::Error for NotPublic {}

/// Resolves webhook hosts and keeps only the addresses a webhook may go to; a name that
/// resolves to none of them fails the delivery with [`NotPublic`]. Under
/// [`Targets::PublicAndLoopback`], `localhost` may resolve to loopback; any other name must
/// resolve to public addresses.
#[derive(Clone, Copy, Debug, Default)]
pub struct Resolver {
    /// Which addresses are kept.
    pub targets: Targets,
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let targets = self.targets;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept = keep(&host, found, targets)?;
            let addrs: reqwest::dns::Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// The addresses `host` resolved to that a webhook may go to, or why none.
fn keep(host: &str, found: Vec<SocketAddr>, targets: Targets) -> Result<Vec<SocketAddr>, NotPublic> {
    let local_name = targets == Targets::PublicAndLoopback && host.eq_ignore_ascii_case("localhost");
    let kept: Vec<SocketAddr> =
        found.into_iter().filter(|a| if local_name { loopback(a.ip()) } else { public(a.ip()) }).collect();
    if kept.is_empty() {
        return Err(NotPublic { host: host.to_owned() });
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused_public_ones_kept_and_loopback_only_in_development() {
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
            "192.0.0.170",
            "::",
            "fd00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            // IPv4-compatible, IPv4-translated, NAT64 (well-known and local), 6to4, Teredo.
            "::10.0.0.1",
            "::8.8.8.8",
            "::ffff:0:10.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b::808:808",
            "64:ff9b:1::a00:1",
            "2002:a00:1::1",
            "2002:808:808::1",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            "2001:10::1",
            "100::1",
        ] {
            let ip: IpAddr = bad.parse().unwrap();
            for t in [Targets::Public, Targets::PublicAndLoopback] {
                assert!(!t.may_receive(ip), "{bad} under {t:?}");
            }
        }
        for good in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "2001:4860:4860::8888", "::ffff:1.1.1.1"] {
            let ip: IpAddr = good.parse().unwrap();
            assert!(Targets::Public.may_receive(ip) && Targets::PublicAndLoopback.may_receive(ip), "{good}");
        }
        for local in ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = local.parse().unwrap();
            assert!(!Targets::Public.may_receive(ip), "{local} in production");
            assert!(Targets::PublicAndLoopback.may_receive(ip), "{local} in development");
        }
    }

    #[test]
    fn a_name_must_resolve_to_a_public_address_and_only_localhost_to_loopback_in_development() {
        let at = |ips: &[&str]| ips.iter().map(|i| SocketAddr::new(i.parse().unwrap(), 0)).collect::<Vec<_>>();
        let dev = Targets::PublicAndLoopback;
        let e = keep("hooks.store.example", at(&["10.1.2.3", "169.254.169.254"]), dev).unwrap_err().to_string();
        assert_eq!(e, "hooks.store.example resolves to no public address; webhooks are not sent into private networks");
        assert!(!e.contains("10.1.2.3"), "the owner never learns the addresses");
        assert!(keep("rebound.example", at(&["127.0.0.1"]), dev).is_err(), "loopback only by its name");
        assert_eq!(keep("mixed.example", at(&["10.0.0.1", "93.184.216.34"]), dev).unwrap(), at(&["93.184.216.34"]));
        assert_eq!(keep("localhost", at(&["127.0.0.1", "::1"]), dev).unwrap(), at(&["127.0.0.1", "::1"]));
        assert!(keep("localhost", at(&["127.0.0.1", "::1"]), Targets::Public).is_err(), "not in production");
        assert!(keep("LOCALHOST", at(&["10.0.0.1"]), dev).is_err());
    }
}
