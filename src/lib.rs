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
pub mod bytes;
pub mod capture;
pub mod cli;
pub mod flow;
#[doc(hidden)]
pub mod fuzzing;
pub mod intern;
pub mod limits;
#[cfg(feature = "live")]
pub mod live;
pub mod pipeline;
pub mod proto;
pub mod rare;
pub mod report;
#[cfg(test)]
mod samples;
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
        // Out-of-order state and the rarely moved counters are boxed, made when first
        // needed (496 before the first, 416 before the second); the 16 bytes of its sink
        // state replace the ledger's own map of protocol layers. Addresses are 20 bytes each,
        // not a `SocketAddr`'s 32 (352 before). Each direction keeps its sequence space and
        // end in spare room, the tunnel layers are a `ThinVec` (328 before). The bytes a
        // direction delivered are where its stream is, less its gaps, not a counter (280
        // before).
        assert!(size_of::<crate::flow::Connection>() <= 264);
        // `HttpLimits` is shared, not copied (it was 72 bytes in ConnProto, App and
        // ExchangeLog each); detection buffers are boxed, made at the first stream event
        // (104 before). The clock that dates plaintext is made per event, not kept (80
        // before).
        assert!(size_of::<crate::proto::ConnProto>() <= 72);
        // Hello facts, key material and held records are in one box that a session without
        // keys drops (792 before), its facts' lists and texts are exact-sized boxes (616
        // before); certificate and ECH offer are boxed, versions and suite are numbers (944
        // before those). Each direction's record reader keeps when its record began, so that
        // a record's plaintext is dated alike held or streamed (544 before).
        // The suite's name is looked up, not copied into it (560 before); SNI, decryption
        // outcome and stop reasons are thin pointers, the rare facts (ECH offer, early data,
        // alerts) are boxed, and the ClientHello's four lists are one shared value (536
        // before).
        // Its handshake and record readers' buffers are one pointer each (`bytes::ThinBytes`;
        // 416 and 384 before). The capture time of the bytes read is the caller's clock, not
        // kept (336 before).
        assert!(size_of::<crate::proto::tls::session::TlsSession>() <= 328);
        // Two per decrypted connection (88 before the suite lost its name).
        assert!(size_of::<crate::proto::tls::decrypt::RecordDecrypter>() <= 64);
        // One per record being decrypted as it arrives, which at 100k connections is a third
        // of them: 32-bit lengths and the MAC as two fields, not an enum (336 before).
        assert!(size_of::<crate::proto::tls::opening::Opening>() <= 272);
        // HTTP/1 and HTTP/2 state both boxed (272 before).
        assert!(size_of::<crate::proto::http::HttpConn>() <= 80);
        // GOAWAYs, ORIGIN set and Alt-Svc boxed, made at the first (432 before); HPACK
        // table sizes and the frame payload bound are 32-bit numbers (360 before); frame
        // buffers and the list of streams are one pointer each (312 before); its HPACK
        // decoders' count of unknown fields is 32-bit (264 before); its frame readers' counts
        // are narrow and their payload limit is given with each piece (248 before).
        assert!(size_of::<crate::proto::http::http2::Http2>() <= 232);
        // Per request, kept to the end in the report: proxy headers, 1xx statuses, reset and
        // upgrade boxed (312 before); its texts thin pointers (`ArcStr`, 200 before); its
        // stream id never 0, so 4 bytes with its `Option` (144 before).
        assert!(size_of::<crate::proto::http::Exchange>() <= 136);
    }
}
