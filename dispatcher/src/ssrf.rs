//! The SSRF guard: deliveries never reach loopback, private, link-local, CGNAT, or
//! cloud-metadata addresses unless the operator allows a range by CIDR
//! (`dispatcher.allow_cidrs`).
//!
//! It is checked twice: when an endpoint is saved (its host is resolved and every
//! address must be allowed), and on every connection, through the HTTP client's DNS
//! resolver ([`GuardedResolver`]), so a name that later resolves somewhere else (DNS
//! rebinding) is refused at connect time. URLs with an IP literal skip DNS, so
//! [`DestinationPolicy::check_literal`] runs before each request too.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;

/// Ranges refused unless allowed. Sources: RFC 6890 (special-purpose registries),
/// RFC 6598 (CGNAT 100.64/10), RFC 4193 (unique local fc00::/7), RFC 4291 (link-local
/// fe80::/10, multicast ff00::/8); cloud metadata services listen on 169.254.169.254
/// (link-local) and fd00:ec2::254 (unique local).
const REFUSED: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    // Local-use NAT64 (RFC 8215): where the IPv4 address sits depends on the operator's
    // prefix length, so it cannot be judged by the address it carries; never public.
    "64:ff9b:1::/48",
    // Teredo (RFC 4380): the client's IPv4 address rides inverted in the last 32 bits
    // and the server's in bits 32..64; a tunnel's end, never a webhook receiver.
    "2001::/32",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
    "2001:db8::/32",
];

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("dispatcher.allow_cidrs: {0:?} is not a CIDR range such as \"10.1.0.0/16\"")]
    BadCidr(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{host} resolves to {ip}, a private, loopback or link-local address; allow its range in dispatcher.allow_cidrs if this is intended")]
    Private { host: String, ip: IpAddr },
    #[error("{host} does not resolve: {detail}")]
    Unresolved { host: String, detail: String },
}

/// Which destination addresses deliveries may reach.
#[derive(Debug, Clone)]
pub struct DestinationPolicy {
    refused: Arc<Vec<IpNet>>,
    allowed: Arc<Vec<IpNet>>,
}

impl DestinationPolicy {
    pub fn new(allow_cidrs: &[String]) -> Result<Self, PolicyError> {
        let allowed = allow_cidrs
            .iter()
            .map(|c| c.parse::<IpNet>().map_err(|_| PolicyError::BadCidr(c.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let refused = REFUSED
            .iter()
            .map(|c| c.parse().expect("the built-in ranges parse"))
            .collect();
        Ok(Self {
            refused: Arc::new(refused),
            allowed: Arc::new(allowed),
        })
    }

    /// Whether a delivery may connect to `ip`.
    ///
    /// An address is judged both as written and as the IPv4 address it carries
    /// ([`canonical`]): allowed when either is in `allow_cidrs` (so `::1/128` still
    /// allows `::1`), else refused when either is in a refused range.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let carried = canonical(ip);
        let any_of = |nets: &[IpNet]| nets.iter().any(|n| n.contains(&ip) || n.contains(&carried));
        if any_of(&self.allowed) {
            return true;
        }
        !any_of(&self.refused)
    }

    /// Check an IP-literal host (no DNS involved); names are checked by the resolver.
    pub fn check_literal(&self, url: &reqwest::Url) -> Result<(), Refused> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        if self.allows(ip) {
            Ok(())
        } else {
            Err(Refused::Private {
                host: ip.to_string(),
                ip,
            })
        }
    }

    /// Resolve the URL's host now and require every address to be allowed (when an
    /// endpoint is saved).
    pub async fn check_url(&self, url: &reqwest::Url) -> Result<(), Refused> {
        self.check_literal(url)?;
        let Some(url::Host::Domain(host)) = url.host() else {
            return Ok(());
        };
        self.resolve(host).await.map(|_| ())
    }

    async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, Refused> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|e| Refused::Unresolved {
                host: host.to_string(),
                detail: e.to_string(),
            })?
            .collect();
        if addrs.is_empty() {
            return Err(Refused::Unresolved {
                host: host.to_string(),
                detail: "no addresses".into(),
            });
        }
        // All or nothing: a name with one private address among public ones is refused.
        if let Some(bad) = addrs.iter().find(|a| !self.allows(a.ip())) {
            return Err(Refused::Private {
                host: host.to_string(),
                ip: bad.ip(),
            });
        }
        Ok(addrs)
    }
}

/// An IPv6 address that carries an IPv4 address is judged as that IPv4 address, so
/// `[::ffff:127.0.0.1]` is loopback and `[2002:a9fe:a9fe::]` is the metadata service:
/// - IPv4-mapped `::ffff:0:0/96` and IPv4-compatible `::/96` (RFC 4291 §2.5.5; `::` and
///   `::1` fall in it too and come out as `0.0.0.0` and `0.0.0.1`, both refused);
/// - well-known NAT64 `64:ff9b::/96` (RFC 6052): the last 32 bits;
/// - 6to4 `2002::/16` (RFC 3056): bits 16..48.
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    let s = v6.segments();
    let o = v6.octets();
    let last32 = || IpAddr::V4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] {
        return last32();
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return last32();
    }
    if s[0] == 0x2002 {
        return IpAddr::V4(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    ip
}

/// The HTTP client's resolver: resolves with the system resolver, refuses the
/// connection when any address is not allowed.
pub struct GuardedResolver(pub DestinationPolicy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = policy
                .resolve(&host)
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn private_and_metadata_ranges_are_refused() {
        let p = DestinationPolicy::new(&[]).unwrap();
        for bad in [
            "127.0.0.1",
            "10.2.3.4",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!p.allows(ip(bad)), "{bad} must be refused");
        }
        for good in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"] {
            assert!(p.allows(ip(good)), "{good} must be allowed");
        }
    }

    #[test]
    fn ipv6_embeddings_of_refused_ipv4_addresses_are_refused() {
        let p = DestinationPolicy::new(&[]).unwrap();
        let cases: &[(&str, &[&str], &[&str])] = &[
            // (range, refused because of the IPv4 they carry, allowed: public IPv4)
            (
                "::ffff:0:0/96 IPv4-mapped",
                &["::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254"],
                &["::ffff:8.8.8.8"],
            ),
            (
                "::/96 IPv4-compatible",
                &["::127.0.0.1", "::10.1.2.3", "::192.168.0.1", "::a9fe:a9fe", "::", "::1"],
                &["::8.8.8.8"],
            ),
            (
                "64:ff9b::/96 NAT64",
                &["64:ff9b::127.0.0.1", "64:ff9b::10.0.0.1", "64:ff9b::a9fe:a9fe"],
                &["64:ff9b::8.8.8.8"],
            ),
            (
                "2002::/16 6to4",
                &[
                    "2002:7f00:1::",
                    "2002:0a00:0001::1",
                    "2002:a9fe:a9fe::",
                    "2002:c0a8:0101:5::9",
                ],
                &["2002:0808:0808::1"],
            ),
        ];
        for (range, refused, allowed) in cases {
            for bad in *refused {
                assert!(!p.allows(ip(bad)), "{range}: {bad} must be refused");
            }
            for good in *allowed {
                assert!(p.allows(ip(good)), "{range}: {good} must be allowed");
            }
        }
        // Local-use NAT64 (RFC 8215) is refused whole, whatever it carries.
        for bad in ["64:ff9b:1::127.0.0.1", "64:ff9b:1::8.8.8.8", "64:ff9b:1:ffff::1"] {
            assert!(!p.allows(ip(bad)), "64:ff9b:1::/48: {bad} must be refused");
        }
        // Teredo is refused whole: here the client carried is 127.0.0.1 (inverted).
        for bad in ["2001:0:4136:e378:8000:63bf:80ff:fffe", "2001::1"] {
            assert!(!p.allows(ip(bad)), "2001::/32: {bad} must be refused");
        }
        // Neighbours of those ranges are not swept up.
        for good in ["64:ff9b:2::1", "2003::1", "2001:4860:4860::8888", "2001:1::1"] {
            assert!(p.allows(ip(good)), "{good} must be allowed");
        }
        // An operator's allowed IPv4 range allows its IPv6 embeddings too.
        let loopback = DestinationPolicy::new(&["127.0.0.0/8".into()]).unwrap();
        assert!(loopback.allows(ip("2002:7f00:1::")));
        assert!(loopback.allows(ip("::127.0.0.1")));
        let v6_loopback = DestinationPolicy::new(&["::1/128".into()]).unwrap();
        assert!(v6_loopback.allows(ip("::1")), "judged as written too");
    }

    #[test]
    fn the_operator_can_allow_a_range() {
        let p = DestinationPolicy::new(&["127.0.0.0/8".into()]).unwrap();
        assert!(p.allows(ip("127.0.0.1")));
        assert!(!p.allows(ip("10.0.0.1")));
        assert!(DestinationPolicy::new(&["nonsense".into()]).is_err());
    }

    #[tokio::test]
    async fn urls_are_checked_by_literal_and_by_name() {
        let p = DestinationPolicy::new(&[]).unwrap();
        let literal: reqwest::Url = "http://127.0.0.1:9/x".parse().unwrap();
        assert!(matches!(p.check_url(&literal).await, Err(Refused::Private { .. })));
        let name: reqwest::Url = "http://localhost:9/x".parse().unwrap();
        assert!(p.check_url(&name).await.is_err());
        let v6: reqwest::Url = "http://[::1]:9/x".parse().unwrap();
        assert!(p.check_literal(&v6).is_err());
    }
}
