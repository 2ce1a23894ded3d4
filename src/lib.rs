//! misdirect: explains HTTP 421 Misdirected Request errors from packet captures.
//!
//! Data flows one way through layers (see `docs/architecture.md`):
//!
//! ```text
//! capture ─► wire (decode) ─► flow (TCP reassembly) ─► proto ─► analysis ─► report
//! ```
//!
//! Every layer below `capture` is sans-IO: bytes and capture time in, values out.
//! Malformed traffic never produces an `Err`; it becomes a named [`Anomaly`] and analysis
//! goes on. `Err` is kept for the tool's own input (an unreadable file, a bad flag).
#![forbid(unsafe_code)]
// Captures are hostile input: no code path below may panic on what a packet says.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)
)]

pub mod analysis;
pub mod anomaly;
pub mod capture;
pub mod cli;
pub mod flow;
#[doc(hidden)]
pub mod fuzzing;
pub mod limits;
#[cfg(feature = "live")]
pub mod live;
pub mod pipeline;
pub mod proto;
pub mod report;
pub mod timestamp;
pub mod wire;

pub use anomaly::Anomaly;
pub use limits::Limits;
pub use timestamp::Timestamp;
/// Every open connection pays for these, so their sizes are watched: 100k concurrent
/// connections are 100k of each (docs/performance.md, "Memory").
#[cfg(test)]
mod per_connection_state {
    use std::mem::size_of;

    #[test]
    fn stays_small() {
        assert!(size_of::<crate::flow::Connection>() <= 512);
        // ConnProto and HttpConn each carry a copy of `HttpLimits` (10 words).
        assert!(size_of::<crate::proto::ConnProto>() <= 232);
        // With the 76 bytes of hello facts it keeps instead of both hellos (about 0.7 kB
        // with their lists, in boxes of their own).
        assert!(size_of::<crate::proto::tls::session::TlsSession>() <= 1456);
        assert!(size_of::<crate::proto::http::HttpConn>() <= 336);
    }
}
#[cfg(test)]
mod tmp_sizes {
    #[test]
    fn p() {
        use std::mem::size_of;
        eprintln!("TlsSession {} ConnProto {} HttpConn {} Connection {} TlsInfo {} Reassembler {} HttpLimits {} Exchange {} ExchangeLog {} Http1 {} DirStats {}",
            size_of::<crate::proto::tls::session::TlsSession>(), size_of::<crate::proto::ConnProto>(), size_of::<crate::proto::http::HttpConn>(),
            size_of::<crate::flow::Connection>(), size_of::<crate::proto::tls::session::TlsInfo>(), size_of::<crate::flow::Reassembler>(),
            size_of::<crate::proto::http::HttpLimits>(), size_of::<crate::proto::http::Exchange>(), size_of::<crate::proto::http::ExchangeLog>(),
            size_of::<crate::proto::http::http1::Http1>(), size_of::<crate::flow::DirectionStats>());
    }
}
