//! Connections: the TCP connection table, client/server orientation, per-direction reassembly.
//!
//! Contract: [`FlowTable::process`] takes decoded TCP segments in capture order and calls the
//! [`StreamSink`] with, per connection, `open` once, then each direction's [`StreamEvent`]s
//! (in-order bytes, gaps, FIN, RST), then `close` once with the connection's summary. Every
//! connection is closed exactly once: by a new SYN on its 5-tuple, by eviction when the
//! table is full, or at [`FlowTable::finish`], which closes the rest in id order. A
//! connection is its 5-tuple within a tunnel context ([`FlowPacket`]): the same addresses in
//! two tunnels are two connections.

mod reassembly;
mod seq;
mod table;

pub use reassembly::{BufferBudget, Ctx, DirectionStats, Reassembler, Segment, StreamEvent};
pub use seq::SeqSpace;
pub use table::{Close, Connection, FlowPacket, FlowTable, Orientation};

use crate::Timestamp;
use serde::Serialize;

/// Sequential connection id, in first-packet order, starting at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ConnId(pub u64);

/// Which way bytes travel on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

impl Direction {
    pub fn opposite(self) -> Self {
        match self {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }
}

/// When and where an event happened in the capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventMeta {
    pub ts: Timestamp,
    /// Index of the packet that caused the event.
    pub packet: u64,
}

/// What a sink keeps for one connection, carried in the connection itself ([`Connection`]'s
/// `sink_state`), so that reaching it costs no lookup of the sink's own; opaque to the
/// table, and dropped with the connection unless the sink takes it at `close`.
pub type SinkState = Option<Box<dyn std::any::Any + Send>>;

/// Receives what the flow table makes of the traffic.
pub trait StreamSink {
    /// A connection was seen for the first time.
    fn open(&mut self, conn: &Connection, at: EventMeta);
    /// Reassembled stream content of one direction, with the connection's sink state.
    fn stream(
        &mut self,
        state: &mut SinkState,
        id: ConnId,
        dir: Direction,
        event: StreamEvent<'_>,
        at: EventMeta,
    );
    /// The connection is finished; no more events will name its id.
    fn close(&mut self, conn: Connection, at: EventMeta);
    /// Key material found in the capture itself (pcapng Decryption Secrets Blocks), delivered
    /// before any packet that follows it.
    fn key_material(&mut self, _secret: &crate::capture::DecryptionSecret) {}
}
