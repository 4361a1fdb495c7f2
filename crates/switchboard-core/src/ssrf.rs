//! SSRF rules for URLs that arrive through an API: which addresses are off limits, and the
//! allow/deny lists that change that. Pure functions; resolving host names is the caller's job.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `::1/128`, or a bare address (a host route).
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("bad prefix length in {text:?}"))?,
            None => max,
        };
        Ok(Cidr { addr, prefix })
    }

    /// True when `ip` is inside the network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    if a[..full] != b[..full] {
        return false;
    }
    let rest = prefix % 8;
    rest == 0 || (a[full] ^ b[full]) & (0xffu8 << (8 - rest)) == 0
}

/// Parses a comma-separated CIDR list, ignoring blanks.
pub fn parse_cidrs(list: &str) -> Result<Vec<Cidr>, String> {
    list.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(Cidr::parse)
        .collect()
}

const V4_RULES: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified (\"this network\")"),
    ("10.0.0.0/8", "private network"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.169.254/32", "cloud metadata service"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private network"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private network"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    // Before 240.0.0.0/4, which contains it: the first matching rule names the refusal.
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "broadcast"),
];

const V6_RULES: &[(&str, &str)] = &[
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fd00:ec2::254/128", "cloud metadata service"),
    ("fc00::/7", "private network (unique local)"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
    ("2001:db8::/32", "documentation"),
    ("100::/64", "discard-only"),
    ("fec0::/10", "site-local (deprecated)"),
    ("2001::/32", "Teredo tunnel"),
    ("2001:2::/48", "benchmarking"),
];

/// The rule that forbids `ip`, if any. Addresses that embed an IPv4 address (IPv4-mapped,
/// IPv4-compatible, NAT64, 6to4) are judged by the embedded address.
pub fn forbidden_by(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => rule_for(IpAddr::V4(v4), V4_RULES),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => forbidden_by(IpAddr::V4(v4)),
            None => rule_for(IpAddr::V6(v6), V6_RULES),
        },
    }
}

fn rule_for(ip: IpAddr, rules: &[(&str, &'static str)]) -> Option<&'static str> {
    rules
        .iter()
        .find(|(cidr, _)| Cidr::parse(cidr).expect("built-in rule").contains(ip))
        .map(|(_, why)| *why)
}

/// The IPv4 address inside an IPv6 one that carries it.
pub fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let o = v6.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    let seg = v6.segments();
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    // IPv4-translated ::ffff:0:a.b.c.d (RFC 2765).
    if seg[..4] == [0; 4] && seg[4] == 0xffff && seg[5] == 0 {
        return Some(tail);
    }
    // IPv4-compatible ::a.b.c.d (but not :: or ::1).
    if seg[..6] == [0; 6] && u32::from(tail) > 1 {
        return Some(tail);
    }
    // NAT64 well-known prefix 64:ff9b::/96 and local-use 64:ff9b:1::/48.
    if seg[0] == 0x64 && seg[1] == 0xff9b && (seg[2..6] == [0; 4] || seg[2] == 1) {
        return Some(tail);
    }
    // 6to4 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
    if seg[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// What the operator allows and denies beyond the built-in rules.
#[derive(Debug, Clone, Default)]
pub struct SsrfPolicy {
    /// Networks allowed even though a built-in rule forbids them (`SWITCHBOARD_SSRF_ALLOW_CIDRS`).
    pub allow_cidrs: Vec<Cidr>,
    /// Networks always refused (`SWITCHBOARD_SSRF_DENY_CIDRS`).
    pub deny_cidrs: Vec<Cidr>,
    /// Host names always refused, matched case-insensitively with subdomains (`SWITCHBOARD_SSRF_DENY_HOSTS`).
    pub deny_hosts: Vec<String>,
}

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The rule that matched.
    pub rule: String,
    /// The setting that would allow it, if any.
    pub setting: Option<String>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.rule)?;
        if let Some(s) = &self.setting {
            write!(f, "; to allow it, set {s}")?;
        }
        Ok(())
    }
}

impl SsrfPolicy {
    /// Checks a host name before resolution.
    pub fn check_host(&self, host: &str) -> Result<(), Refusal> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        for denied in &self.deny_hosts {
            let d = denied.trim_end_matches('.').to_ascii_lowercase();
            if host == d || host.ends_with(&format!(".{d}")) {
                return Err(Refusal {
                    rule: format!(
                        "host {host:?} is on the deny list (SWITCHBOARD_SSRF_DENY_HOSTS)"
                    ),
                    setting: None,
                });
            }
        }
        Ok(())
    }

    /// Checks one resolved address.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        let canonical = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if self
            .deny_cidrs
            .iter()
            .any(|c| c.contains(ip) || c.contains(canonical))
        {
            return Err(Refusal {
                rule: format!("address {ip} is on the deny list (SWITCHBOARD_SSRF_DENY_CIDRS)"),
                setting: None,
            });
        }
        let Some(rule) = forbidden_by(ip) else {
            return Ok(());
        };
        if self
            .allow_cidrs
            .iter()
            .any(|c| c.contains(ip) || c.contains(canonical))
        {
            return Ok(());
        }
        let net = if canonical.is_ipv4() {
            format!("{canonical}/32")
        } else {
            format!("{canonical}/128")
        };
        Err(Refusal {
            rule: format!("address {ip} is {rule}"),
            setting: Some(format!(
                "SWITCHBOARD_SSRF_ALLOW_CIDRS={net} (or a wider range)"
            )),
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
    fn forbids_internal_ranges_and_embedded_forms() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.7",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "::ffff:169.254.169.254",
        ] {
            assert!(forbidden_by(ip(bad)).is_some(), "{bad} must be refused");
        }
        for good in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(forbidden_by(ip(good)).is_none(), "{good} must pass");
        }
        assert_eq!(
            forbidden_by(ip("169.254.169.254")),
            Some("cloud metadata service")
        );
    }

    #[test]
    fn forbids_translated_teredo_and_site_local_forms() {
        assert_eq!(
            embedded_v4("::ffff:0:7f00:1".parse().unwrap()),
            Some(Ipv4Addr::LOCALHOST)
        );
        assert_eq!(forbidden_by(ip("::ffff:0:7f00:1")), Some("loopback"));
        assert_eq!(forbidden_by(ip("::ffff:0:808:808")), None);
        assert_eq!(
            forbidden_by(ip("2001:0:4136:e378:8000:63bf:3fff:fdd2")),
            Some("Teredo tunnel")
        );
        assert_eq!(forbidden_by(ip("fec0::1")), Some("site-local (deprecated)"));
        assert_eq!(forbidden_by(ip("2001:2::1")), Some("benchmarking"));
        assert_eq!(forbidden_by(ip("255.255.255.255")), Some("broadcast"));
        assert_eq!(forbidden_by(ip("240.0.0.1")), Some("reserved"));
        assert_eq!(forbidden_by(ip("2001:4860:4860::8888")), None);
    }

    #[test]
    fn allow_and_deny_lists_apply() {
        let policy = SsrfPolicy {
            allow_cidrs: parse_cidrs("127.0.0.0/8, 10.0.0.0/24").unwrap(),
            deny_cidrs: parse_cidrs("1.1.1.0/24").unwrap(),
            deny_hosts: vec!["internal.example".into()],
        };
        assert!(policy.check_ip(ip("127.0.0.1")).is_ok());
        assert!(policy.check_ip(ip("::ffff:127.0.0.1")).is_ok());
        assert!(policy.check_ip(ip("10.0.0.5")).is_ok());
        let refusal = policy.check_ip(ip("10.0.1.5")).unwrap_err();
        assert!(
            refusal
                .to_string()
                .contains("SWITCHBOARD_SSRF_ALLOW_CIDRS=10.0.1.5/32"),
            "{refusal}"
        );
        assert!(policy.check_ip(ip("1.1.1.1")).is_err());
        assert!(policy.check_host("api.internal.example.").is_err());
        assert!(policy.check_host("example.com").is_ok());
    }

    #[test]
    fn cidrs_parse_and_match() {
        let c = Cidr::parse("172.16.0.0/12").unwrap();
        assert!(c.contains(ip("172.31.255.255")));
        assert!(!c.contains(ip("172.32.0.0")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
    }
}
