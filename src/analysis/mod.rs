//! The connection ledger and the report it becomes.
//!
//! Contract: [`Ledger`] is the [`StreamSink`] of a normal run; it keeps one
//! [`ConnectionRecord`] per connection, and [`Ledger::into_report`] orders them by id
//! (first-packet order) so the report is the same whatever order connections ended in.
//! The JSON form of [`Report`] is a contract (`docs/report-schema.md`): fields are added,
//! never renamed.

pub mod authority;
mod codec;
pub mod diagnose;
mod merge;
pub mod spill;
pub mod totals;
mod window;

pub use merge::{LedgerPart, Listing, Partial};
pub use spill::{SpillError, Spilled};

use crate::anomaly::AnomalyCounts;
use crate::capture::{DecryptionSecret, InputSummary};
use crate::flow::{
    Close, ConnId, Connection, Direction, DirectionStats, EventMeta, Orientation, SinkState,
    StreamEvent, StreamSink,
};
use crate::pipeline::RunStats;
use crate::proto::control::ControlInfo;
use crate::proto::http::{Exchange, Http2Info, HttpLimits};
use crate::proto::tls::keylog::{KeyLog, KeyLogStats};
use crate::proto::tls::session::TlsInfo;
use crate::proto::{AppProtocol, ConnProto, ProtoSummary};
use crate::wire::DecodeStats;
use crate::Timestamp;
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// Version of the JSON report schema; bumped on any change (minor: additions).
pub const SCHEMA_VERSION: &str = "0.6.0";

/// The connection records of a report. Each is boxed: records are made as connections close,
/// most of them at the end of a run, and a box takes the place a closed connection freed,
/// where one list of records would be a new block of 384 B each (50 MB at 100k
/// connections) beside the freed pieces.
#[allow(clippy::vec_box)]
pub type Records = Vec<Box<ConnectionRecord>>;

/// Everything misdirect says about a capture. Its connections are a list ([`Records`]), or
/// records spilled to a temporary file and read back as they are written ([`Spilled`]).
#[derive(Clone, Debug, Serialize)]
pub struct Report<C = Records> {
    pub schema_version: &'static str,
    pub tool: Tool,
    pub inputs: Vec<InputSummary>,
    pub summary: Summary,
    /// Named anomalies over the whole capture, by name.
    pub anomalies: AnomalyCounts,
    pub connections: C,
    /// Every HTTP 421 with its causes, requests answered under another name than their SNI,
    /// and FTP/SMTP 421 replies: in connection, then request order.
    pub findings: Vec<diagnose::Finding>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
    pub packets: DecodeStats,
    pub tcp_connections: u64,
    /// Connections dropped from the full table (`flow_table_limit`).
    pub evicted_connections: u64,
    /// Connections that carried no payload byte and were not listed, past
    /// `Limits::max_empty_connection_records` (`connection_record_limit`); counted in
    /// `tcp_connections`, without an id.
    pub unlisted_connections: u64,
    pub tls: TlsSummary,
    /// The findings counted: by kind, and HTTP 421s by cause, server and authority.
    pub findings: totals::FindingTotals,
    /// Live capture only: libpcap's counters; omitted for files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture: Option<CaptureCounters>,
}

/// Packets a live capture received and lost (libpcap's statistics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CaptureCounters {
    pub received: u64,
    /// Dropped by the kernel because the buffer was full (the analysis did not keep up).
    pub dropped: u64,
    /// Dropped by the interface or its driver.
    pub interface_dropped: u64,
}

/// Key-log coverage: how many TLS connections there were, had keys, and were decrypted.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TlsSummary {
    pub connections: u64,
    /// Connections whose session secrets were found in a key log.
    pub with_keys: u64,
    pub decrypted: u64,
    /// Key-log lines read (from `--keylog` files and pcapng Decryption Secrets Blocks).
    pub keylog: KeyLogStats,
}

/// One TCP connection as reported.
#[derive(Clone, Debug, Serialize)]
pub struct ConnectionRecord {
    pub id: ConnId,
    #[serde(serialize_with = "display")]
    pub client: SocketAddr,
    #[serde(serialize_with = "display")]
    pub server: SocketAddr,
    /// The tunnels the connection was found in, outermost first (VXLAN, GRE, MPLS, ...), as
    /// its first packet showed them; absent when it was captured bare. `client` and `server`
    /// are the inner addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub encapsulation: Vec<crate::wire::tunnel::Layer>,
    pub orientation: Orientation,
    /// True when the capture did not see the start of a direction (no SYN).
    pub mid_stream: bool,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub first_packet: u64,
    pub last_packet: u64,
    /// Where the first packet is: the input (an index into `inputs`) and its number in that
    /// file. With `first_packet` (the number in the merged packet order) it names the
    /// connection within this run; see `uid` in the NDJSON records for across runs.
    pub source: crate::capture::Origin,
    pub close: Close,
    pub client_to_server: DirectionStats,
    pub server_to_client: DirectionStats,
    /// The application protocol, recognised by content (inside TLS when decrypted).
    pub protocol: AppProtocol,
    /// TLS facts; null for a connection that is not TLS. Boxed: most of a record's size
    /// otherwise, paid by every cleartext connection too.
    pub tls: Option<Box<TlsInfo>>,
    /// HTTP exchanges in request order (an answer whose request was not seen sorts by its
    /// own time).
    pub requests: Vec<Exchange>,
    /// Exchanges beyond the per-connection limit, counted only.
    #[serde(skip_serializing_if = "is_zero")]
    pub requests_dropped: u64,
    /// HTTP/2 connection facts (ORIGIN set, GOAWAY, ...); null unless HTTP/2.
    pub http2: Option<Box<Http2Info>>,
    /// FTP/SMTP replies; null unless a control connection.
    pub control: Option<Box<ControlInfo>>,
    /// What a CONNECT tunnel on this connection carried; null when there was none.
    pub tunnel: Option<Box<TunnelRecord>>,
    /// Anomalies of this connection's application protocol, by name.
    #[serde(skip_serializing_if = "AnomalyCounts::is_empty")]
    pub anomalies: AnomalyCounts,
}

impl ConnectionRecord {
    pub fn from_connection(c: &Connection) -> Self {
        ConnectionRecord {
            encapsulation: c.encapsulation.to_vec(),
            orientation: c.orientation,
            mid_stream: c.dirs.iter().any(|d| d.mid_stream),
            first_seen: c.first_ts,
            last_seen: c.last_ts,
            first_packet: c.first_packet,
            last_packet: c.last_packet,
            source: c.origin,
            close: c.close,
            client_to_server: c.dir(Direction::ClientToServer).report(),
            server_to_client: c.dir(Direction::ServerToClient).report(),
            ..Self::bare(c.id, c.client(), c.server())
        }
    }

    /// A record of a connection between two addresses that carried nothing and was seen
    /// at no time (the start of [`Self::from_connection`], and of tests' records).
    pub(crate) fn bare(id: ConnId, client: SocketAddr, server: SocketAddr) -> Self {
        ConnectionRecord {
            id,
            client,
            server,
            encapsulation: Vec::new(),
            orientation: crate::flow::Orientation::Syn,
            mid_stream: false,
            first_seen: Timestamp(0),
            last_seen: Timestamp(0),
            first_packet: 0,
            last_packet: 0,
            source: Default::default(),
            close: crate::flow::Close::Fin,
            client_to_server: DirectionStats::default(),
            server_to_client: DirectionStats::default(),
            protocol: AppProtocol::None,
            tls: None,
            requests: Vec::new(),
            requests_dropped: 0,
            http2: None,
            control: None,
            tunnel: None,
            anomalies: AnomalyCounts::default(),
        }
    }

    pub fn stats(&self, dir: Direction) -> &DirectionStats {
        match dir {
            Direction::ClientToServer => &self.client_to_server,
            Direction::ServerToClient => &self.server_to_client,
        }
    }
}

/// The connection inside a CONNECT tunnel (RFC 9110 §9.3.6): the same facts as a
/// connection's, for the bytes after the proxy's 2xx.
#[derive(Clone, Debug, Serialize)]
pub struct TunnelRecord {
    pub protocol: AppProtocol,
    pub tls: Option<Box<TlsInfo>>,
    pub requests: Vec<Exchange>,
    pub http2: Option<Box<Http2Info>>,
    pub tunnel: Option<Box<TunnelRecord>>,
}

impl TunnelRecord {
    fn from_summary(p: ProtoSummary) -> Self {
        TunnelRecord {
            protocol: p.protocol,
            tls: p.tls,
            requests: p.app.exchanges,
            http2: p.app.http2,
            tunnel: p
                .app
                .tunnel
                .map(|t| Box::new(TunnelRecord::from_summary(*t))),
        }
    }
}

impl Watch {
    fn look(&mut self, id: ConnId, p: &ConnProto) {
        let (tls, requests) = p.peek();
        let Some(&(client, server)) = self.endpoints.get(&id) else {
            return;
        };
        let from = requests.len().saturating_sub(WATCH_TAIL);
        for (i, e) in requests.iter().enumerate().skip(from) {
            if e.status != Some(421) || !self.reported.entry(id).or_default().insert(i) {
                continue;
            }
            if let Some(f) = diagnose::preliminary(id, client, server, tls, None, requests, i) {
                (self.on_421)(&f);
            }
        }
    }
}

/// The FTP/SMTP dialect the connections to each server showed, where they agree: an
/// FTP/SMTP connection that showed nothing telling the two apart (a lone 421 greeting, say)
/// takes it. Gathered by each ledger as connections close and joined for the report.
#[derive(Clone, Debug, Default)]
pub struct Dialects(HashMap<SocketAddr, Option<AppProtocol>>);

impl Dialects {
    fn note(&mut self, c: &ConnectionRecord) {
        if matches!(c.protocol, AppProtocol::Ftp | AppProtocol::Smtp) {
            let seen = self.0.entry(c.server).or_insert(Some(c.protocol));
            if *seen != Some(c.protocol) {
                *seen = None;
            }
        }
    }

    fn join(&mut self, other: Dialects) {
        for (server, p) in other.0 {
            let seen = self.0.entry(server).or_insert(p);
            if *seen != p {
                *seen = None;
            }
        }
    }

    fn settle(&self, c: &mut ConnectionRecord) {
        if c.protocol != AppProtocol::FtpOrSmtp {
            return;
        }
        if let Some(Some(p)) = self.0.get(&c.server) {
            c.protocol = *p;
            if let Some(ctl) = c.control.as_mut() {
                ctl.dialect = Some(match p {
                    AppProtocol::Ftp => crate::proto::control::Dialect::Ftp,
                    _ => crate::proto::control::Dialect::Smtp,
                });
                ctl.dialect_from = Some("same_server");
            }
        }
    }
}

/// A record as the report lists it: its id given, its dialect settled, its requests
/// marked first-party or not.
fn ready(c: &mut ConnectionRecord, id: ConnId, dialects: &Dialects) {
    c.id = id;
    dialects.settle(c);
    diagnose::mark_first_party(c);
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Collects connection records as the flow table closes connections, running each
/// connection's protocol layer on the way.
pub struct Ledger {
    connections: Records,
    /// Where records go instead of `connections` when they are spilled.
    spill: Option<spill::Spill>,
    dialects: Dialects,
    /// Records kept of connections without payload, against their limit (those dropped are
    /// counted as `connection_record_limit` anomalies).
    empty_listed: usize,
    max_empty_listed: usize,
    /// Open connections whose start the capture did not see and that have no protocol layer
    /// yet. A connection's protocol layer (`ConnProto`) is its sink state in the flow table,
    /// made at its first stream event (data, gap, FIN or RST): a connection with none, a SYN
    /// flood's, costs nothing here.
    mid_stream: std::collections::HashSet<ConnId, foldhash::fast::RandomState>,
    /// This owner's copy: the secrets are shared, the record budget is its own.
    keylog: KeyLog,
    limits: Arc<HttpLimits>,
    anomalies: AnomalyCounts,
    watch: Option<Watch>,
}

/// Live capture: each HTTP 421 is handed to a callback as soon as its response is parsed.
struct Watch {
    on_421: Box<dyn FnMut(&diagnose::Finding) + Send>,
    endpoints: HashMap<ConnId, (SocketAddr, SocketAddr)>,
    /// Request indexes already handed out, by connection (a closed connection's go with
    /// it in one step).
    reported: HashMap<ConnId, std::collections::HashSet<usize>>,
}

/// Requests looked at per event for new 421s: answers come near the end of the list.
const WATCH_TAIL: usize = 64;

impl StreamSink for Ledger {
    fn open(&mut self, conn: &Connection, _at: EventMeta) {
        if let Some(w) = &mut self.watch {
            w.endpoints.insert(conn.id, (conn.client(), conn.server()));
        }
        // Without a SYN or SYN-ACK the capture started inside the connection.
        if matches!(
            conn.orientation,
            Orientation::Ports | Orientation::FirstPacket
        ) {
            self.mid_stream.insert(conn.id);
        }
    }

    fn stream(
        &mut self,
        state: &mut SinkState,
        id: ConnId,
        dir: Direction,
        event: StreamEvent<'_>,
        at: EventMeta,
    ) {
        let state = state.get_or_insert_with(|| {
            let mid_stream = self.mid_stream.remove(&id);
            Box::new(ConnProto::new(mid_stream, self.limits.clone()))
        });
        // Only a ledger puts state there, and only this.
        debug_assert!(
            state.is::<ConnProto>(),
            "a connection's sink state is its ConnProto"
        );
        let Some(p) = state.downcast_mut::<ConnProto>() else {
            return;
        };
        p.event(dir, event, at.ts, &self.keylog, &mut |_, _| {});
        if let Some(w) = &mut self.watch {
            w.look(id, p);
        }
    }

    fn close(&mut self, mut conn: Connection, at: EventMeta) {
        self.mid_stream.remove(&conn.id);
        let carried = conn.dirs.iter().any(|d| d.stats.payload_bytes > 0);
        if !carried {
            if self.empty_listed >= self.max_empty_listed {
                self.anomalies
                    .add(crate::anomaly::Anomaly::ConnectionRecordLimit);
                self.unwatch(conn.id);
                return;
            }
            self.empty_listed += 1;
        }
        let mut record = ConnectionRecord::from_connection(&conn);
        let proto = conn.sink_state.take().map(|s| s.downcast::<ConnProto>());
        if let Some(Ok(mut p)) = proto {
            p.cut(at.ts, &self.keylog);
            // A 421 in a record that the end of the connection cut short shows only now.
            if let Some(w) = &mut self.watch {
                w.look(conn.id, &p);
            }
            let summary = p.finish(carried);
            record.protocol = summary.protocol;
            record.tls = summary.tls;
            self.anomalies.merge(&summary.anomalies);
            record.anomalies = summary.anomalies;
            let mut app = summary.app;
            if let Some(t) = app.tunnel.take() {
                self.anomalies.merge(&t.anomalies);
                record.tunnel = Some(Box::new(TunnelRecord::from_summary(*t)));
            }
            record.requests = std::mem::take(&mut app.exchanges);
            record.requests_dropped = app.exchanges_dropped;
            record.http2 = app.http2;
            // A control connection that went on in TLS: the cleartext part has the replies.
            let mut control = summary.before_tls.and_then(|b| b.control);
            if let Some(inner) = app.control {
                match &mut control {
                    Some(c) => c.replies.extend(inner.replies),
                    None => control = Some(inner),
                }
            }
            record.control = control;
        }
        self.unwatch(conn.id);
        self.dialects.note(&record);
        match &mut self.spill {
            Some(s) => s.put(&record),
            None => self.connections.push(Box::new(record)),
        }
    }

    fn key_material(&mut self, secret: &DecryptionSecret) {
        if secret.secrets_type == DecryptionSecret::TLS_KEY_LOG {
            self.keylog.add(&secret.data);
        }
    }
}

impl Ledger {
    /// A ledger that decrypts with `keylog` (plus any secrets the capture carries). Workers
    /// and partitions share its secrets; a ledger copies them only to add to them.
    pub fn new(keylog: &KeyLog, limits: &crate::Limits) -> Self {
        let keylog = keylog.with_record_budget(limits.max_tls_records_held);
        Ledger {
            connections: Vec::new(),
            spill: limits.spill_records.then(spill::Spill::new),
            dialects: Dialects::default(),
            empty_listed: 0,
            max_empty_listed: limits.max_empty_connection_records,
            mid_stream: Default::default(),
            keylog,
            limits: limits.http(),
            anomalies: AnomalyCounts::default(),
            watch: None,
        }
    }

    /// Calls `on_421` with each HTTP 421 as soon as its response is parsed, with the causes
    /// its connection shows so far (the final report has the whole picture).
    pub fn watch(&mut self, on_421: Box<dyn FnMut(&diagnose::Finding) + Send>) {
        self.watch = Some(Watch {
            on_421,
            endpoints: HashMap::new(),
            reported: Default::default(),
        });
    }

    /// The watcher forgets a closed connection.
    fn unwatch(&mut self, id: ConnId) {
        if let Some(w) = &mut self.watch {
            w.endpoints.remove(&id);
            w.reported.remove(&id);
        }
    }

    /// The key log will grow while the capture runs: sessions without keys hold up to
    /// `per_session` bytes of encrypted records until theirs come, all together up to
    /// `Limits::max_held_for_keys`. Call it before the first packet: a session that found no
    /// keys before it keeps no key state, and no later key decrypts it ([`Ledger::add_keys`]).
    pub fn follow_keylog(&mut self, per_session: usize, limits: &crate::Limits) {
        self.keylog
            .set_growing(per_session, limits.max_held_for_keys);
    }

    /// New key-log lines: sessions waiting for these keys decrypt what they held. `open` is
    /// the open connections' sink states (`FlowTable::sink_states`).
    pub fn add_keys<'c>(
        &mut self,
        text: &[u8],
        at: Timestamp,
        open: impl Iterator<Item = (ConnId, &'c mut SinkState)>,
    ) {
        self.keylog.add(text);
        for (id, state) in open {
            let Some(p) = state.as_mut().and_then(|s| s.downcast_mut::<ConnProto>()) else {
                continue;
            };
            p.keys_arrived(&self.keylog, at);
            if let Some(w) = &mut self.watch {
                w.look(id, p);
            }
        }
    }

    /// The connections and counts of this ledger, for [`Report::assemble`].
    pub fn into_part(self) -> LedgerPart {
        LedgerPart {
            connections: self.connections,
            spill: self.spill,
            dialects: self.dialects,
            anomalies: self.anomalies,
            keylog: self.keylog.stats().clone(),
        }
    }

    pub fn into_report(self, inputs: Vec<InputSummary>, run: RunStats) -> Report {
        let partial = Partial {
            inputs,
            parts: vec![self.into_part()],
            run,
        };
        Report::assemble(partial, 1)
    }
}
