//! The connection ledger and the report it becomes.
//!
//! Contract: [`Ledger`] is the [`StreamSink`] of a normal run; it keeps one
//! [`ConnectionRecord`] per connection, and [`Ledger::into_report`] orders them by id
//! (first-packet order) so the report is the same whatever order connections ended in.
//! The JSON form of [`Report`] is a contract (`docs/report-schema.md`): fields are added,
//! never renamed.

use crate::anomaly::AnomalyCounts;
use crate::capture::InputSummary;
use crate::flow::{
    Close, ConnId, Connection, Direction, DirectionStats, EventMeta, Orientation, StreamEvent,
    StreamSink,
};
use crate::pipeline::RunStats;
use crate::wire::DecodeStats;
use crate::Timestamp;
use serde::Serialize;
use std::net::SocketAddr;

/// Version of the JSON report schema; bumped on any change (minor: additions).
pub const SCHEMA_VERSION: &str = "0.1.0";

/// Everything misdirect says about a capture.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema_version: &'static str,
    pub tool: Tool,
    pub inputs: Vec<InputSummary>,
    pub summary: Summary,
    /// Named anomalies over the whole capture, by name.
    pub anomalies: AnomalyCounts,
    pub connections: Vec<ConnectionRecord>,
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
}

/// One TCP connection as reported.
#[derive(Clone, Debug, Serialize)]
pub struct ConnectionRecord {
    pub id: ConnId,
    #[serde(serialize_with = "display")]
    pub client: SocketAddr,
    #[serde(serialize_with = "display")]
    pub server: SocketAddr,
    pub orientation: Orientation,
    /// True when the capture did not see the start of a direction (no SYN).
    pub mid_stream: bool,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub first_packet: u64,
    pub last_packet: u64,
    pub close: Close,
    pub client_to_server: DirectionStats,
    pub server_to_client: DirectionStats,
}

impl ConnectionRecord {
    pub fn from_connection(c: &Connection) -> Self {
        ConnectionRecord {
            id: c.id,
            client: c.client,
            server: c.server,
            orientation: c.orientation,
            mid_stream: c.dirs.iter().any(|d| d.mid_stream),
            first_seen: c.first_ts,
            last_seen: c.last_ts,
            first_packet: c.first_packet,
            last_packet: c.last_packet,
            close: c.close,
            client_to_server: c.dir(Direction::ClientToServer).stats.clone(),
            server_to_client: c.dir(Direction::ServerToClient).stats.clone(),
        }
    }

    pub fn stats(&self, dir: Direction) -> &DirectionStats {
        match dir {
            Direction::ClientToServer => &self.client_to_server,
            Direction::ServerToClient => &self.server_to_client,
        }
    }
}

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Collects connection records as the flow table closes connections.
#[derive(Default)]
pub struct Ledger {
    connections: Vec<ConnectionRecord>,
}

impl StreamSink for Ledger {
    fn open(&mut self, _conn: &Connection, _at: EventMeta) {}

    fn stream(&mut self, _id: ConnId, _dir: Direction, _event: StreamEvent<'_>, _at: EventMeta) {}

    fn close(&mut self, conn: Connection, _at: EventMeta) {
        self.connections
            .push(ConnectionRecord::from_connection(&conn));
    }
}

impl Ledger {
    pub fn into_report(mut self, inputs: Vec<InputSummary>, run: RunStats) -> Report {
        self.connections.sort_unstable_by_key(|c| c.id);
        Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: env!("CARGO_PKG_NAME"),
                version: env!("CARGO_PKG_VERSION"),
            },
            inputs,
            summary: Summary {
                first_seen: run.first_ts,
                last_seen: run.last_ts,
                packets: run.decode,
                tcp_connections: run.connections,
                evicted_connections: run.evicted,
            },
            anomalies: run.anomalies,
            connections: self.connections,
        }
    }
}
