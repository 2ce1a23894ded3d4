//! A server's Certificate message, parsed once and shared by every connection that got it.
//!
//! Contract: [`server_certificate`] gives what [`hello::parse_certificate`] gives, with the
//! names behind an `Arc`. A server sends the same chain on each of its connections, and its
//! names (subject, issuer, SANs, validity as text) were about 500 bytes in a dozen
//! allocations per connection: 37 MB for 72k open TLS connections, kept again in each
//! connection's record. Each thread keeps the messages it parsed recently, by their bytes;
//! a message is found only when byte-identical, so the result is the same as parsing it, and
//! the report does not depend on what the cache held. Errors and empty chains are not kept.
//!
//! Bounds: at most [`MAX_KEPT`] messages and [`MAX_KEPT_BYTES`] of them per thread; the
//! cache is emptied when either would be passed, and messages longer than
//! [`MAX_MESSAGE`] are parsed each time.

use super::hello::{self, CertificateNames, HelloError};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// The leaf certificate's names, and the DNS names the connection is taken to be for
/// (SAN dNSNames, else subject CNs: RFC 6125 §6.4.4).
#[derive(Clone, Debug)]
pub struct ServerCertificate {
    pub names: Arc<CertificateNames>,
    pub server_names: Arc<[String]>,
}

/// Messages kept per thread.
pub const MAX_KEPT: usize = 256;
/// Bytes of kept messages per thread.
pub const MAX_KEPT_BYTES: usize = 1 << 20;
/// Longer messages are not kept (a chain is a few kB; the bound on a handshake message is
/// far larger).
pub const MAX_MESSAGE: usize = 32 << 10;

type Kept = HashMap<Box<[u8]>, ServerCertificate, foldhash::fast::RandomState>;

#[derive(Default)]
struct Cache {
    /// By message body, TLS 1.2 and earlier, then TLS 1.3: the version changes how the
    /// same bytes are read.
    kept: [Kept; 2],
    bytes: usize,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// The names of a Certificate message's leaf; `None` when its list is empty.
pub fn server_certificate(
    body: &[u8],
    tls13: bool,
) -> Result<Option<ServerCertificate>, HelloError> {
    if body.len() > MAX_MESSAGE {
        return Ok(hello::parse_certificate(body, tls13)?.map(shared));
    }
    let v = usize::from(tls13);
    let hit = CACHE.with(|c| c.borrow().kept.get(v).and_then(|k| k.get(body)).cloned());
    if hit.is_some() {
        return Ok(hit);
    }
    let Some(cert) = hello::parse_certificate(body, tls13)?.map(shared) else {
        return Ok(None);
    };
    CACHE.with(|c| {
        let c = &mut *c.borrow_mut();
        let kept = c.kept.iter().map(HashMap::len).sum::<usize>();
        if kept >= MAX_KEPT || c.bytes + body.len() > MAX_KEPT_BYTES {
            *c = Cache::default();
        }
        if let Some(k) = c.kept.get_mut(v) {
            c.bytes += body.len();
            k.insert(body.into(), cert.clone());
        }
    });
    Ok(Some(cert))
}

fn shared(names: CertificateNames) -> ServerCertificate {
    let server_names: Arc<[String]> = if names.san_dns.is_empty() {
        names.subject_cn.as_slice().into()
    } else {
        names.san_dns.as_slice().into()
    };
    ServerCertificate {
        names: Arc::new(names),
        server_names,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::proto::tls::hello::tests::fixture;

    #[test]
    fn the_same_message_is_parsed_once_and_gives_what_parsing_gives() {
        let b = fixture("apache-tls12-certificate");
        let parsed = hello::parse_certificate(&b, false).unwrap().unwrap();
        let first = server_certificate(&b, false).unwrap().unwrap();
        let second = server_certificate(&b, false).unwrap().unwrap();
        assert!(Arc::ptr_eq(&first.names, &second.names));
        assert_eq!(*first.names, parsed);
        assert_eq!(&*first.server_names, parsed.san_dns.as_slice());
        // Read as TLS 1.3, the same bytes are another message, and a malformed one.
        assert!(server_certificate(&b, true).is_err());
    }

    #[test]
    fn the_cache_stays_within_its_bounds() {
        for i in 0..MAX_KEPT + 10 {
            // Distinct messages: trailing bytes after the list are an anomaly, not an error.
            let mut b = fixture("apache-tls12-certificate");
            b.extend_from_slice(&(i as u32).to_be_bytes());
            assert!(server_certificate(&b, false).unwrap().is_some());
        }
        CACHE.with(|c| {
            let c = c.borrow();
            let kept = c.kept.iter().map(HashMap::len).sum::<usize>();
            assert!(kept <= MAX_KEPT && c.bytes <= MAX_KEPT_BYTES);
        });
    }
}
