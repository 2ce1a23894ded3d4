//! Authorities and host names compared the way servers and browsers compare them.
//!
//! Contract: an authority as sent (`Host`, `:authority`, SNI, a certificate name) is split into
//! host and port; hosts compare case-insensitively without a trailing dot, IPv6 literals keep
//! their brackets, and a missing port is the scheme's default. Certificate names match per
//! RFC 6125 §6.4: a wildcard only as the whole left-most label, standing for exactly one label.

use std::collections::HashSet;

/// An authority split into a normalised host and its port, if any.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Authority {
    /// Lower case, no trailing dot; IPv6 literals in brackets.
    pub host: String,
    pub port: Option<u16>,
}

impl Authority {
    /// Splits `host[:port]`, `[v6]:port`, or a bare host. A port that is not a number stays
    /// part of the host (the comparison then fails, as it should).
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            match rest.split_once(']') {
                Some((v6, after)) => (
                    format!("[{v6}]"),
                    after.strip_prefix(':').and_then(|p| p.parse().ok()),
                ),
                None => (s.to_string(), None),
            }
        } else {
            match s.rsplit_once(':') {
                // One colon: host and port. More: an unbracketed IPv6 literal.
                Some((h, p)) if !h.contains(':') => match p.parse() {
                    Ok(port) => (h.to_string(), Some(port)),
                    Err(_) => (s.to_string(), None),
                },
                Some(_) => (format!("[{s}]"), None),
                None => (s.to_string(), None),
            }
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        Authority { host, port }
    }

    /// Same host and the same port, a missing port being `default_port`.
    pub fn same_origin(&self, other: &Authority, default_port: u16) -> bool {
        self.host == other.host
            && self.port.unwrap_or(default_port) == other.port.unwrap_or(default_port)
    }
}

/// Whether two names (authorities or SNI) denote the same host.
pub fn same_host(a: &str, b: &str) -> bool {
    Authority::parse(a).host == Authority::parse(b).host
}

/// Whether a certificate whose DNS names are `names` is valid for `host` (RFC 6125 §6.4.3).
pub fn certificate_covers(names: &[String], host: &str) -> bool {
    NameSet::new(names).covers(host)
}

/// A certificate's DNS names indexed for [`NameSet::covers`]: a connection can carry
/// thousands of requests to check against thousands of names, so the names are normalised
/// once and each check is a lookup.
#[derive(Debug, Default)]
pub struct NameSet {
    exact: HashSet<String>,
    /// What follows `*.` in a wildcard name; `*.com`, which would cover a whole public
    /// suffix, is never accepted, so never kept.
    wildcard: HashSet<String>,
}

impl NameSet {
    pub fn new(names: &[String]) -> Self {
        let mut set = NameSet::default();
        for n in names {
            let n = n.trim_end_matches('.').to_ascii_lowercase();
            match n.strip_prefix("*.") {
                Some(rest) if rest.contains('.') => {
                    set.wildcard.insert(rest.to_string());
                }
                Some(_) => {}
                None => {
                    set.exact.insert(n);
                }
            }
        }
        set
    }

    pub fn covers(&self, host: &str) -> bool {
        let host = Authority::parse(host).host;
        if self.exact.contains(&host) {
            return true;
        }
        // A wildcard stands for exactly one non-empty label, never in an IP literal.
        match host.split_once('.') {
            Some((first, rest)) => {
                !first.is_empty() && !host.starts_with('[') && self.wildcard.contains(rest)
            }
            None => false,
        }
    }
}

/// An HTTP/2 ORIGIN set (RFC 8336) indexed for [`OriginSet::contains`], for the same reason
/// as [`NameSet`].
#[derive(Debug, Default)]
pub struct OriginSet {
    /// Host and port (the default port when the origin names none).
    origins: HashSet<(String, u16)>,
    default_port: u16,
}

impl OriginSet {
    /// `origins` as the frames carried them (`scheme://host[:port]`).
    pub fn new(origins: &[String], default_port: u16) -> Self {
        let origins = origins
            .iter()
            .map(|o| {
                let o = o.split_once("://").map_or(o.as_str(), |(_, rest)| rest);
                let a = Authority::parse(o);
                (a.host, a.port.unwrap_or(default_port))
            })
            .collect();
        OriginSet {
            origins,
            default_port,
        }
    }

    /// Whether the set has the origin of `a` (same host and port, RFC 6454).
    pub fn contains(&self, a: &Authority) -> bool {
        let key = (a.host.clone(), a.port.unwrap_or(self.default_port));
        self.origins.contains(&key)
    }
}

/// The default port of a connection: 443 over TLS, 80 in clear.
pub fn default_port(tls: bool) -> u16 {
    if tls {
        443
    } else {
        80
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_split_and_normalise() {
        let a = Authority::parse("A.Example.TEST.:8443");
        assert_eq!(a.host, "a.example.test");
        assert_eq!(a.port, Some(8443));
        let v6 = Authority::parse("[::1]:443");
        assert_eq!((v6.host.as_str(), v6.port), ("[::1]", Some(443)));
        assert_eq!(Authority::parse("::1").host, "[::1]");
        assert_eq!(Authority::parse("host:notaport").port, None);
        assert!(Authority::parse("a.example:443").same_origin(&Authority::parse("A.EXAMPLE."), 443));
        assert!(
            !Authority::parse("a.example:8443").same_origin(&Authority::parse("a.example"), 443)
        );
        assert!(same_host("a.example.test:7443", "a.example.test"));
        assert!(!same_host("a.example.test", "b.example.test"));
    }

    #[test]
    fn wildcards_per_rfc_6125() {
        let names = vec!["*.example.test".to_string(), "example.test".to_string()];
        assert!(certificate_covers(&names, "b.example.test:7443"));
        assert!(certificate_covers(&names, "EXAMPLE.test."));
        assert!(
            !certificate_covers(&names, "x.b.example.test"),
            "one label only"
        );
        assert!(!certificate_covers(&names, "other.test"));
        assert!(
            !certificate_covers(&["*.test".to_string()], "a.test"),
            "no bare suffix"
        );
        assert!(!certificate_covers(
            &["a.example.test".to_string()],
            "b.example.test"
        ));
    }
}
