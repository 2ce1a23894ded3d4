//! TLS: records, handshake messages, key material and decryption (RFC 8446, RFC 5246).

pub mod certs;
pub mod decrypt;
pub mod handshake;
pub mod hello;
pub mod keylog;
pub mod keys;
pub mod opening;
pub mod record;
pub mod session;

use std::borrow::Cow;
use std::fmt;

/// A TLS version as the wire gives it, written by name ("TLS 1.3") or in hex when unknown.
/// A number, not a string: every TLS connection keeps several (its offered versions and the
/// negotiated one) for as long as it is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TlsVersion(pub u16);

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0x0300 => f.write_str("SSL 3.0"),
            0x0301 => f.write_str("TLS 1.0"),
            0x0302 => f.write_str("TLS 1.1"),
            0x0303 => f.write_str("TLS 1.2"),
            0x0304 => f.write_str("TLS 1.3"),
            other => write!(f, "0x{other:04x}"),
        }
    }
}

/// A cipher suite by its IANA name, or in hex when unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CipherSuite(pub u16);

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match keys::suite_name(self.0) {
            Some(name) => f.write_str(name),
            None => write!(f, "0x{:04x}", self.0),
        }
    }
}

macro_rules! serialize_by_display {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}
serialize_by_display!(TlsVersion, CipherSuite);

/// An ALPN protocol name (lossy UTF-8). The names nearly every client offers are not copied
/// out of the hello: a browser's TLS connection would otherwise keep two small allocations
/// for "h2" and "http/1.1" while it is open.
pub type ProtocolName = Cow<'static, str>;

/// Well-known ALPN ids (IANA "TLS Application-Layer Protocol Negotiation (ALPN) Protocol
/// IDs"), those a capture of web traffic is full of.
const COMMON_PROTOCOLS: [&str; 5] = ["h2", "http/1.1", "http/1.0", "h3", "acme-tls/1"];

pub fn protocol_name(bytes: &[u8]) -> ProtocolName {
    match COMMON_PROTOCOLS.iter().find(|p| p.as_bytes() == bytes) {
        Some(p) => Cow::Borrowed(p),
        None => Cow::Owned(String::from_utf8_lossy(bytes).into_owned()),
    }
}

impl crate::intern::Weigh for [ProtocolName] {
    fn weight(&self) -> usize {
        self.iter()
            .map(|p| std::mem::size_of::<ProtocolName>() + p.len())
            .sum()
    }
}
