//! HTTP on one connection: HTTP/1.x, HTTP/2, and the handover between them (h2c Upgrade).
//!
//! Contract: [`HttpConn`] takes both directions' bytes in order (cleartext TCP or decrypted
//! TLS) and keeps the connection's [`Exchange`]s, one per request (or per response whose
//! request was never seen), in request order. HTTP/1.x and HTTP/2 parsers write to the same
//! list, so a request upgraded to h2c keeps its exchange when its response comes on stream 1.
//! What was sent is kept as sent (bytes as lossy UTF-8, cut at the field limit and said so);
//! interpretation (comparing authorities as hosts) is the analysis' job.

pub mod http1;
pub mod http2;

use crate::anomaly::{Anomaly, AnomalyCounts};
use crate::flow::Direction;
use crate::intern::ArcStr;
use crate::Timestamp;
use serde::Serialize;
use std::borrow::Cow;
use std::num::NonZeroU32;
use std::sync::Arc;

/// Bounds of the HTTP parsers (see [`crate::Limits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Bytes of an HTTP/1 message head (start line and headers).
    pub max_head_bytes: usize,
    /// Bytes of an HTTP/2 header block (HEADERS plus CONTINUATIONs), and of any other HTTP/2
    /// frame payload kept.
    pub max_header_block: usize,
    /// CONTINUATION frames of one HTTP/2 header block.
    pub max_continuations: usize,
    /// Decoded bytes of one HTTP/2 header list (names, values, 32 per field).
    pub max_header_list: usize,
    /// Bytes an HPACK dynamic table may hold in this observer.
    pub max_hpack_table: usize,
    /// Exchanges listed per connection.
    pub max_exchanges: usize,
    /// Bytes kept of one header value or request target.
    pub max_field_bytes: usize,
    /// The bounds of the connection's TLS session, when it has one.
    pub tls: crate::proto::tls::session::TlsLimits,
}

/// HTTP version of an exchange, as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum HttpVersion {
    #[serde(rename = "HTTP/1.0")]
    Http10,
    #[serde(rename = "HTTP/1.1")]
    Http11,
    #[serde(rename = "HTTP/2")]
    Http2,
}

/// How a response was paired with its request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Pairing {
    /// By protocol: HTTP/2 stream id, or HTTP/1 order with nothing lost in between.
    #[default]
    Exact,
    /// HTTP/1 after bytes were lost: responses after the loss were paired from the end of
    /// the connection, assuming the server answered its last requests.
    Inferred,
}

/// One request and its response, as far as each was seen.
///
/// Serialized with its rare fields in their places among the others (see the `Serialize`
/// impl): the report's field order is the same as when they were fields of their own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exchange {
    /// HTTP/2 stream id; null for HTTP/1. Never 0 (the connection's own stream), which
    /// keeps it in 4 bytes: an exchange is 136 bytes, not 144.
    pub stream_id: Option<NonZeroU32>,
    pub version: Option<HttpVersion>,
    /// False when only the response was seen (capture started late, or bytes were lost).
    pub request_seen: bool,
    /// Time of the request's first byte (HTTP/1) or of its header block (HTTP/2).
    pub request_time: Option<Timestamp>,
    pub method: Option<ArcStr>,
    /// HTTP/2 `:scheme`, or the scheme of an absolute-form HTTP/1 target.
    pub scheme: Option<ArcStr>,
    /// The authority the request names, as sent: HTTP/2 `:authority`, else the authority of
    /// an absolute-form target (which the server must use, RFC 9112 §3.2.2), else `Host`.
    pub authority: Option<ArcStr>,
    /// The `Host` header as sent, when there was one.
    pub host: Option<ArcStr>,
    /// The target: HTTP/2 `:path`, the HTTP/1 request target as sent.
    pub path: Option<ArcStr>,
    /// Header fields of the request whose names could not be decoded (HPACK references to
    /// dynamic-table entries never seen): the request is only partly known.
    pub unknown_fields: u32,
    /// Final status; null when unanswered.
    pub status: Option<u16>,
    pub reason: Option<ArcStr>,
    pub response_time: Option<Timestamp>,
    pub server: Option<ArcStr>,
    pub content_length: Option<u64>,
    pub response_unknown_fields: u32,
    /// HTTP/2 server push: the request is the server's PUSH_PROMISE.
    pub pushed: bool,
    pub pairing: Pairing,
    /// Set by the analysis: the authority's host is the one the connection was opened for
    /// (its SNI, or without SNI its first request's); null when the authority is unknown.
    pub first_party: Option<bool>,
    /// Made when one of its fields is set; read through [`Exchange::rare`].
    rare: crate::rare::RareBox<Rare>,
}

/// The fields of an exchange that most leave empty. Boxed: they were 120 of an exchange's
/// 312 bytes, and a capture's report keeps every exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rare {
    pub forwarded: Option<ArcStr>,
    pub x_forwarded_host: Option<ArcStr>,
    pub via: Option<ArcStr>,
    /// Interim (1xx) statuses before the final one, the first [`Exchange::MAX_INTERIM`].
    pub interim: Vec<u16>,
    /// RST_STREAM on this stream: who sent it and its error code name.
    pub reset: Option<Reset>,
    /// The protocol the connection switched to after this request (`101`, or a CONNECT
    /// tunnel): `h2c`, `websocket`, `tunnel`, or the Upgrade token.
    pub upgraded_to: Option<ArcStr>,
}

/// What an exchange without rare fields reads.
impl crate::rare::Rare for Rare {
    const NONE: &'static Self = &Rare {
        forwarded: None,
        x_forwarded_host: None,
        via: None,
        interim: Vec::new(),
        reset: None,
        upgraded_to: None,
    };
}

impl Serialize for Exchange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let r = self.rare();
        let mut st = s.serialize_struct("Exchange", 25)?;
        st.serialize_field("stream_id", &self.stream_id)?;
        st.serialize_field("version", &self.version)?;
        st.serialize_field("request_seen", &self.request_seen)?;
        st.serialize_field("request_time", &self.request_time)?;
        st.serialize_field("method", &self.method)?;
        st.serialize_field("scheme", &self.scheme)?;
        st.serialize_field("authority", &self.authority)?;
        st.serialize_field("host", &self.host)?;
        st.serialize_field("path", &self.path)?;
        st.serialize_field("forwarded", &r.forwarded)?;
        st.serialize_field("x_forwarded_host", &r.x_forwarded_host)?;
        st.serialize_field("via", &r.via)?;
        st.serialize_field("unknown_fields", &self.unknown_fields)?;
        st.serialize_field("status", &self.status)?;
        st.serialize_field("reason", &self.reason)?;
        st.serialize_field("response_time", &self.response_time)?;
        st.serialize_field("interim", &r.interim)?;
        st.serialize_field("server", &self.server)?;
        st.serialize_field("content_length", &self.content_length)?;
        st.serialize_field("response_unknown_fields", &self.response_unknown_fields)?;
        st.serialize_field("pushed", &self.pushed)?;
        st.serialize_field("reset", &r.reset)?;
        st.serialize_field("upgraded_to", &r.upgraded_to)?;
        st.serialize_field("pairing", &self.pairing)?;
        st.serialize_field("first_party", &self.first_party)?;
        st.end()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reset {
    pub by: Direction,
    pub error: String,
}

impl Exchange {
    /// Interim statuses kept per exchange: a server may send 1xx responses without end, a
    /// few bytes each.
    pub const MAX_INTERIM: usize = 16;

    pub fn add_interim(&mut self, status: u16) {
        if self.rare().interim.len() < Self::MAX_INTERIM {
            self.rare_mut().interim.push(status);
        }
    }

    /// Proxy headers, 1xx statuses, reset and upgrade: empty on most exchanges.
    pub fn rare(&self) -> &Rare {
        self.rare.read()
    }

    pub fn rare_mut(&mut self) -> &mut Rare {
        self.rare.write()
    }

    /// The rare fields' box as it is, made or not: for the spill codec
    /// (`analysis::codec`), which keeps a box that was never made unmade.
    pub(crate) fn rare_box(&self) -> &crate::rare::RareBox<Rare> {
        &self.rare
    }

    /// Puts back a box [`Exchange::rare_box`] gave (the spill codec's inverse).
    pub(crate) fn set_rare_box(&mut self, rare: crate::rare::RareBox<Rare>) {
        self.rare = rare;
    }

    /// Whether the request is only partly known.
    pub fn partial(&self) -> bool {
        !self.request_seen || self.unknown_fields > 0
    }
}

/// HTTP/2 connection-level facts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Http2Info {
    /// The client connection preface was seen (false for a capture that started later).
    pub preface_seen: bool,
    /// Origins the server declared with ORIGIN frames (RFC 8336), in order; null when the
    /// server sent none (an empty ORIGIN frame gives an empty list).
    pub origin_set: Option<Vec<String>>,
    /// ALTSVC frame field values (RFC 7838), at most a few.
    pub alt_svc: Vec<String>,
    pub goaway: Vec<Goaway>,
    /// SETTINGS_HEADER_TABLE_SIZE announced by each side, when announced.
    pub client_header_table_size: Option<u32>,
    pub server_header_table_size: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Goaway {
    pub by: Direction,
    pub time: Timestamp,
    pub last_stream_id: u32,
    pub error: String,
    /// Debug data, as text, cut to 256 bytes.
    pub debug: Option<String>,
}

/// Name of an HTTP/2 error code (RFC 9113 §7).
pub fn h2_error_name(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    match NAMES.get(code as usize) {
        Some(n) => (*n).to_string(),
        None => format!("0x{code:x}"),
    }
}

/// The exchanges of one connection, shared by the HTTP/1 and HTTP/2 parsers.
pub struct ExchangeLog {
    pub exchanges: Vec<Exchange>,
    /// Exchanges past the limit: counted, not kept.
    pub dropped: u64,
    pub anomalies: AnomalyCounts,
    pub limits: Arc<HttpLimits>,
}

impl ExchangeLog {
    pub fn new(limits: Arc<HttpLimits>) -> Self {
        ExchangeLog {
            exchanges: Vec::new(),
            dropped: 0,
            anomalies: AnomalyCounts::default(),
            limits,
        }
    }

    /// Adds an exchange; `None` when the list is full.
    pub fn push(&mut self, e: Exchange) -> Option<usize> {
        if self.exchanges.len() >= self.limits.max_exchanges {
            if self.dropped == 0 {
                self.anomalies.add(Anomaly::HttpExchangeLimit);
            }
            self.dropped += 1;
            return None;
        }
        // Grown one by one at first: most connections carry a request or two, and a
        // `Vec`'s first growth would make room for four (1.6 kB) on every connection.
        if self.exchanges.len() == self.exchanges.capacity() && self.exchanges.len() < 4 {
            self.exchanges.reserve_exact(1);
        }
        self.exchanges.push(e);
        Some(self.exchanges.len() - 1)
    }

    pub fn get_mut(&mut self, i: Option<usize>) -> Option<&mut Exchange> {
        i.and_then(|i| self.exchanges.get_mut(i))
    }

    /// Bytes of a field as kept in the report: lossy UTF-8, cut at the field limit.
    pub fn text(&mut self, bytes: &[u8]) -> ArcStr {
        text(bytes, self.limits.max_field_bytes, &mut self.anomalies)
    }
}

/// Bytes as text, cut at `max` bytes (on a character boundary) with the cut counted.
/// Shared with the thread's earlier equal texts ([`crate::intern`]): exchanges keep a dozen
/// of these for as long as their connection is open and then in the report, and most
/// repeat (methods, authorities, server names, common paths).
pub fn text(bytes: &[u8], max: usize, anomalies: &mut AnomalyCounts) -> ArcStr {
    shared_text(&cut_text(bytes, max, anomalies))
}

/// [`text`], for a text kept once (not shared).
pub fn text_owned(bytes: &[u8], max: usize, anomalies: &mut AnomalyCounts) -> String {
    cut_text(bytes, max, anomalies).into_owned()
}

fn cut_text<'a>(bytes: &'a [u8], max: usize, anomalies: &mut AnomalyCounts) -> Cow<'a, str> {
    let kept = String::from_utf8_lossy(bytes.get(..max).unwrap_or(bytes));
    if bytes.len() <= max {
        return kept;
    }
    anomalies.add(Anomaly::HttpFieldTruncated);
    let mut s = String::with_capacity(kept.len() + '…'.len_utf8());
    s.push_str(&kept);
    s.push('…');
    Cow::Owned(s)
}

crate::intern::thread_interner!(fn shared_text(str) -> ArcStr);

/// Both boxed: a connection keeps one of them, and the other's room would be wasted on it.
enum Mode {
    Http1(Box<http1::Http1>),
    Http2(Box<http2::Http2>),
}

/// HTTP on one connection.
pub struct HttpConn {
    mode: Mode,
    pub log: ExchangeLog,
}

/// What the first bytes of a stream say it is.
pub enum Start {
    /// The client's HTTP/2 preface.
    Http2Preface,
    /// HTTP/2 frames from the server (ALPN h2 without the client's preface in view).
    Http2Frames,
    Http1,
}

impl HttpConn {
    pub fn new(start: Start, mid_stream: bool, limits: Arc<HttpLimits>) -> Self {
        let mode = match start {
            Start::Http1 => Mode::Http1(Box::new(http1::Http1::new(mid_stream))),
            Start::Http2Preface => Mode::Http2(Box::new(http2::Http2::new(true, false, &limits))),
            Start::Http2Frames => {
                Mode::Http2(Box::new(http2::Http2::new(false, mid_stream, &limits)))
            }
        };
        HttpConn {
            mode,
            log: ExchangeLog::new(limits),
        }
    }

    /// Takes bytes of one direction; returns the handover when a CONNECT tunnel starts
    /// (the bytes that follow belong to the tunnelled connection).
    pub fn data(&mut self, dir: Direction, data: &[u8], at: Timestamp) -> Option<http1::Handover> {
        match &mut self.mode {
            Mode::Http1(h1) => {
                let up = h1.data(dir, data, at, &mut self.log)?;
                if up.to == http1::SwitchTo::Tunnel {
                    return Some(up);
                }
                let mut h2 = http2::Http2::after_upgrade(up.exchange, &self.log.limits);
                let log = &mut self.log;
                h2.data(Direction::ClientToServer, &up.client_bytes, at, log);
                h2.data(Direction::ServerToClient, &up.server_bytes, at, log);
                self.mode = Mode::Http2(Box::new(h2));
            }
            Mode::Http2(h2) => h2.data(dir, data, at, &mut self.log),
        }
        None
    }

    pub fn gap(&mut self, dir: Direction, len: u64, at: Timestamp) {
        match &mut self.mode {
            Mode::Http1(h1) => h1.gap(dir, len),
            Mode::Http2(h2) => h2.gap(dir, len, at, &mut self.log),
        }
    }

    /// The direction ended (FIN, RST, or end of capture).
    pub fn end(&mut self, dir: Direction) {
        if let Mode::Http1(h1) = &mut self.mode {
            h1.end(dir);
        }
    }

    pub fn version(&self) -> HttpVersion {
        match self.mode {
            Mode::Http1(_) => HttpVersion::Http11,
            Mode::Http2(_) => HttpVersion::Http2,
        }
    }

    pub fn finish(mut self) -> (ExchangeLog, Option<Http2Info>) {
        let info = match self.mode {
            Mode::Http1(h1) => {
                h1.finish(&mut self.log);
                None
            }
            Mode::Http2(h2) => Some(h2.finish()),
        };
        // Request order; a response seen without its request sorts by its own time.
        self.log
            .exchanges
            .sort_by_key(|e| e.request_time.or(e.response_time));
        (self.log, info)
    }
}
