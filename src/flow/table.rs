//! The connection table: (tunnel context, 5-tuple) → connection, with a bounded size.
//!
//! The tunnel context (`docs/encapsulation.md`) keeps apart connections with the same
//! addresses in different tunnels: two tenants' `10.0.0.1:40000 → 10.0.0.2:443` in VXLAN
//! VNIs 42 and 43 are two connections. Each distinct context in use gets a number, and the
//! key holds that number, so a bare packet's lookup costs what it did before tunnels.

use super::reassembly::{BufferBudget, Ctx, Reassembler, Segment, StreamEvent};
use super::{ConnId, Direction, EventMeta, SinkState, StreamSink};
use crate::anomaly::{Anomaly, AnomalyCounts};
use crate::wire::tunnel::{KeyPart, Layer, Tunnel, BARE};
use crate::wire::{Decapsulated, Decoded, TcpSegment};
use crate::{Limits, Timestamp};
use hashbrown::HashTable;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasher;
use std::net::SocketAddr;
use thin_vec::ThinVec;

/// How the client was told from the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Orientation {
    /// The SYN's sender is the client.
    Syn,
    /// The SYN was not captured; the SYN-ACK's receiver is the client.
    SynAck,
    /// Neither was captured: the endpoint with the well-known or lower-range port is the
    /// server (see `docs/reassembly.md`).
    Ports,
    /// Nothing else helped: the sender of the first captured packet is the client.
    FirstPacket,
}

/// How a connection ended, as far as the capture shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Close {
    /// Both directions sent FIN.
    Fin,
    /// Only one direction sent FIN before the capture ended.
    HalfClosed,
    ResetByClient,
    ResetByServer,
    /// Still open when the capture ended.
    Open,
    /// Dropped from the full connection table while still open.
    Evicted,
    /// A new connection started on the same 5-tuple without a visible end of this one.
    Replaced,
}

/// One TCP connection and its reassembly state.
#[derive(Debug)]
pub struct Connection {
    pub id: ConnId,
    /// Read through [`Connection::client`] and [`Connection::server`].
    client: Endpoint,
    server: Endpoint,
    pub orientation: Orientation,
    pub first_ts: Timestamp,
    pub last_ts: Timestamp,
    pub first_packet: u64,
    pub last_packet: u64,
    /// The input and number there of the first packet.
    pub origin: crate::capture::Origin,
    pub close: Close,
    /// The tunnels the connection was found in, outermost first, as its first packet showed
    /// them (outer addresses in that packet's direction); empty when captured bare. Its
    /// tunnel context (see [`Tunnel::key`]) is made of these layers' key parts.
    /// One pointer (a `ThinVec`, made only for tunnelled connections).
    pub encapsulation: ThinVec<Layer>,
    /// The client's ISN as the SYN-ACK acknowledged it, when `synack_seen` and the SYN itself
    /// was not seen first. Two fields, not an `Option`, so that they fit in room the others
    /// leave (with the other changes of its last cut, a connection is 280 bytes, not 328).
    client_isn_from_synack: u32,
    synack_seen: bool,
    /// The number of its tunnel context in the table (see [`Contexts`]); with the addresses,
    /// its key there.
    context: u64,
    /// `[client→server, server→client]`; use [`Connection::dir`].
    pub dirs: [Reassembler; 2],
    /// What the sink keeps for this connection (see [`SinkState`]).
    pub sink_state: SinkState,
}

/// An address and port as a connection keeps them and the table finds them: 20 bytes, where
/// a `SocketAddr` takes 32 (an IPv6 address's flow label and scope, which are not part of a
/// connection's identity and which decoded packets do not set, and the enum's tag), for each
/// of two per connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Endpoint {
    /// An IPv4 address in the first four bytes.
    ip: [u8; 16],
    port: u16,
    v4: bool,
}

impl From<SocketAddr> for Endpoint {
    fn from(a: SocketAddr) -> Self {
        let (ip, v4) = match a.ip() {
            std::net::IpAddr::V4(v4) => {
                let mut ip = [0; 16];
                ip[..4].copy_from_slice(&v4.octets());
                (ip, true)
            }
            std::net::IpAddr::V6(v6) => (v6.octets(), false),
        };
        Endpoint {
            ip,
            port: a.port(),
            v4,
        }
    }
}

impl From<Endpoint> for SocketAddr {
    fn from(e: Endpoint) -> Self {
        let ip = if e.v4 {
            let [a, b, c, d, ..] = e.ip;
            std::net::IpAddr::from([a, b, c, d])
        } else {
            std::net::IpAddr::from(e.ip)
        };
        SocketAddr::new(ip, e.port)
    }
}

impl Connection {
    pub fn client(&self) -> SocketAddr {
        self.client.into()
    }

    pub fn server(&self) -> SocketAddr {
        self.server.into()
    }

    pub fn dir(&self, d: Direction) -> &Reassembler {
        let [c2s, s2c] = &self.dirs;
        match d {
            Direction::ClientToServer => c2s,
            Direction::ServerToClient => s2c,
        }
    }

    fn direction_of(&self, src: Endpoint) -> Direction {
        if src == self.client {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        }
    }

    /// Whether one direction was reset, or both ended (FIN delivered) and had their FIN
    /// acknowledged: the last packet a closing connection is due has been seen.
    fn has_ended(&self) -> bool {
        matches!(self.close, Close::ResetByClient | Close::ResetByServer)
            || self.dirs.iter().all(|d| d.is_finished() && d.fin_acked())
    }

    fn key(&self) -> FlowKey {
        FlowKey::new(self.client, self.server, self.context)
    }

    fn has_payload(&self) -> bool {
        self.dirs.iter().any(|d| d.stats.payload_bytes > 0)
    }

    /// Whether a SYN from `src` starts a new connection on this 5-tuple (RFC 9293 §3.10.7.4
    /// lets a closed or TIME-WAIT 5-tuple be reused).
    fn is_reused_by(&self, src: Endpoint, seg: &TcpSegment<'_>) -> bool {
        if !seg.flags.syn || seg.flags.ack {
            return false;
        }
        let ended = self.dirs.iter().all(|d| d.is_finished())
            || matches!(self.close, Close::ResetByClient | Close::ResetByServer);
        if ended || src != self.client {
            return true;
        }
        if let Some(isn) = self
            .dir(Direction::ClientToServer)
            .isn()
            .or(self.synack_seen.then_some(self.client_isn_from_synack))
        {
            return isn != seg.seq;
        }
        // Capture started mid-connection: a SYN shortly before the first byte seen is this
        // connection's own SYN written late (reordering); anything else is a new connection.
        match self
            .dir(Direction::ClientToServer)
            .offset_of(seg.seq.wrapping_add(1))
        {
            Some(off) => !(-LATE_SYN_WINDOW..=0).contains(&off),
            None => self.has_payload(),
        }
    }
}

/// How far before the first byte seen a late SYN may start and still be the same connection.
const LATE_SYN_WINDOW: i64 = 1 << 20;

/// Canonical 5-tuple key (TCP implied), the same for both directions, within a tunnel
/// context (0 when captured bare; see [`Contexts`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FlowKey(Endpoint, Endpoint, u64);

impl FlowKey {
    fn new(a: Endpoint, b: Endpoint, tunnel: u64) -> Self {
        if a <= b {
            FlowKey(a, b, tunnel)
        } else {
            FlowKey(b, a, tunnel)
        }
    }
}

/// A packet as the flow table takes it: the inner packet and the tunnel context it came in.
/// The decoder's [`Decapsulated`] has both; a bare [`Decoded`] (made by tests and fuzzers)
/// came in none.
pub trait FlowPacket {
    fn packet(&self) -> &Decoded<'_>;
    fn tunnel(&self) -> &Tunnel;
}

impl FlowPacket for Decoded<'_> {
    fn packet(&self) -> &Decoded<'_> {
        self
    }
    fn tunnel(&self) -> &Tunnel {
        &BARE
    }
}

impl FlowPacket for Decapsulated<'_> {
    fn packet(&self) -> &Decoded<'_> {
        &self.inner
    }
    fn tunnel(&self) -> &Tunnel {
        self.tunnel
    }
}

/// The tunnel contexts of the connections in the table, each under a number that the
/// connection keys hold (0 is "bare"). An entry lives as long as a connection uses it, so
/// there are never more than connections, and numbers are never reused.
#[derive(Default)]
struct Contexts {
    ids: HashMap<Box<[KeyPart]>, u64, foldhash::fast::RandomState>,
    /// By number: the connections using it, and its key (to forget it by).
    users: HashMap<u64, (usize, Box<[KeyPart]>), foldhash::fast::RandomState>,
    last: u64,
}

impl Contexts {
    /// The number of a context in use; `None` when no connection has it.
    fn find(&self, key: &[KeyPart]) -> Option<u64> {
        if key.is_empty() {
            return Some(0);
        }
        self.ids.get(key).copied()
    }

    /// The number of a context, for one more connection.
    fn acquire(&mut self, key: &[KeyPart]) -> u64 {
        if key.is_empty() {
            return 0;
        }
        if let Some(&id) = self.ids.get(key) {
            if let Some((users, _)) = self.users.get_mut(&id) {
                *users += 1;
            }
            return id;
        }
        self.last += 1;
        self.ids.insert(key.into(), self.last);
        self.users.insert(self.last, (1, key.into()));
        self.last
    }

    /// One connection fewer uses context `id`.
    fn release(&mut self, id: u64) {
        // Bare connections (most) have no entry to look up, as in `acquire`.
        if id == 0 {
            return;
        }
        let Some((users, _)) = self.users.get_mut(&id) else {
            return;
        };
        *users = users.saturating_sub(1);
        if *users == 0 {
            if let Some((_, key)) = self.users.remove(&id) {
                self.ids.remove(&key);
            }
        }
    }
}

/// The table of live connections.
pub struct FlowTable {
    /// Each connection is its own key ([`Connection::key`]), so a slot is a pointer: a table
    /// keeps up to twice its entries' room, and while it grows, the old and the new table
    /// are both alive (with 72-byte keys beside the pointers, that was 32 MB at 117k
    /// connections, now 3.5 MB). The price: growing rehashes every key through its box, a
    /// cache miss per connection, a few times in a table's life.
    conns: HashTable<Box<Connection>>,
    // Keys are chosen by whoever sends packets: a seeded hash keeps HashDoS away.
    hasher: foldhash::fast::RandomState,
    /// Eviction candidates by last-seen time; entries may be stale and are checked on pop.
    /// Built the first time the table is full, kept from then on: a table that never
    /// fills (most captures) does not pay for it (88 bytes a connection, twice over).
    idle: Option<BinaryHeap<Reverse<(Timestamp, ConnId, FlowKeyOrd)>>>,
    /// Connections that ended (FIN both ways, or RST), by when they were last seen: each is
    /// finished once `Limits::close_linger_ns` passed without a packet of it, so the table
    /// holds the connections open about now, not all the capture ended. Roughly in time
    /// order; an entry whose connection was seen since is queued again.
    ended: std::collections::VecDeque<(Timestamp, ConnId, FlowKey)>,
    next_id: u64,
    contexts: Contexts,
    budget: BufferBudget,
    limits: Limits,
    pub anomalies: AnomalyCounts,
    /// Connections ever opened.
    pub opened: u64,
    pub evicted: u64,
}

/// `FlowKey` ordered, for the heap (ties never matter, the id is unique).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FlowKeyOrd(FlowKey);
impl PartialOrd for FlowKeyOrd {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for FlowKeyOrd {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0 .0, self.0 .1, self.0 .2).cmp(&(other.0 .0, other.0 .1, other.0 .2))
    }
}

impl FlowTable {
    pub fn new(limits: &Limits) -> Self {
        FlowTable {
            conns: HashTable::new(),
            hasher: Default::default(),
            idle: None,
            ended: Default::default(),
            next_id: 1,
            contexts: Contexts::default(),
            budget: BufferBudget {
                used: 0,
                max: limits.max_ooo_bytes_total,
            },
            limits: limits.clone(),
            anomalies: AnomalyCounts::default(),
            opened: 0,
            evicted: 0,
        }
    }

    /// Connections currently tracked.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Out-of-order bytes buffered over all connections.
    pub fn buffered_bytes(&self) -> usize {
        self.budget.used
    }

    /// Takes one decoded TCP segment.
    pub fn process<P: FlowPacket + ?Sized>(
        &mut self,
        pkt: &P,
        seg: &TcpSegment<'_>,
        sink: &mut dyn StreamSink,
    ) {
        let tunnel = pkt.tunnel();
        let pkt = pkt.packet();
        let at = EventMeta {
            ts: pkt.ts,
            packet: pkt.index,
        };
        // Before this packet is looked up: one later than the linger starts a new
        // connection whichever other packets this table saw meanwhile (a thread's table sees
        // only its share), so the report is the same for any number of threads.
        self.finish_ended(pkt.ts, sink);
        // One lookup on the common path (a known connection); the rare ones pay more. A
        // context no connection uses yet means a new connection. The addresses are
        // converted once, for the key and for telling the direction.
        let src = Endpoint::from(pkt.src);
        let key = self
            .contexts
            .find(tunnel.key())
            .map(|t| FlowKey::new(src, pkt.dst.into(), t));
        let mut ctx = Ctx {
            now: pkt.ts,
            limits: &self.limits,
            budget: &mut self.budget,
            anomalies: &mut self.anomalies,
        };
        let found = key.and_then(|k| {
            let hash = self.hasher.hash_one(k);
            self.conns.find_mut(hash, |c| c.key() == k)
        });
        let reused = match found {
            Some(conn) if !conn.is_reused_by(src, seg) => {
                let was_ended = conn.has_ended();
                take_segment(conn, src, pkt, seg, &mut ctx, at, sink);
                if !was_ended && conn.has_ended() {
                    self.ended.push_back((conn.last_ts, conn.id, conn.key()));
                }
                return;
            }
            Some(_) => key,
            None => None,
        };
        if let Some(old) = reused.and_then(|k| self.remove(k)) {
            self.finish_conn(*old, Close::Replaced, at, sink);
        }
        if self.conns.len() >= self.limits.max_connections.max(1) {
            self.evict_idlest(at, sink);
        }
        // After eviction and replacement, which may have ended the context's last user.
        let context = self.contexts.acquire(tunnel.key());
        let mut conn = Box::new(self.new_conn(pkt, seg, tunnel, context));
        sink.open(&conn, at);
        self.push_idle(conn.last_ts, conn.id, conn.key());
        let mut ctx = Ctx {
            now: pkt.ts,
            limits: &self.limits,
            budget: &mut self.budget,
            anomalies: &mut self.anomalies,
        };
        take_segment(&mut conn, src, pkt, seg, &mut ctx, at, sink);
        if conn.has_ended() {
            self.ended.push_back((conn.last_ts, conn.id, conn.key()));
        }
        let hasher = &self.hasher;
        self.conns
            .insert_unique(hasher.hash_one(conn.key()), conn, |c| {
                hasher.hash_one(c.key())
            });
    }

    /// Takes the connection of `key` out of the table.
    fn remove(&mut self, key: FlowKey) -> Option<Box<Connection>> {
        let hash = self.hasher.hash_one(key);
        let entry = self.conns.find_entry(hash, |c| c.key() == key).ok()?;
        Some(entry.remove().0)
    }

    /// Finishes the connections that ended longer than the linger before `now`. Each is
    /// finished at its own last packet, so its record does not depend on when that is.
    fn finish_ended(&mut self, now: Timestamp, sink: &mut dyn StreamSink) {
        let linger = self.limits.close_linger_ns;
        while let Some(&(seen, id, key)) = self.ended.front() {
            if seen.0.saturating_add(linger) >= now.0 {
                break;
            }
            self.ended.pop_front();
            let hash = self.hasher.hash_one(key);
            let Ok(entry) = self
                .conns
                .find_entry(hash, |c| c.key() == key && c.id == id)
            else {
                // Replaced by a new connection on the same addresses meanwhile.
                continue;
            };
            let last = entry.get().last_ts;
            if last.0.saturating_add(linger) >= now.0 {
                self.ended.push_back((last, id, key));
                continue;
            }
            let conn = entry.remove().0;
            let at = EventMeta {
                ts: conn.last_ts,
                packet: conn.last_packet,
            };
            self.finish_conn(*conn, Close::Open, at, sink);
        }
    }

    /// Closes every connection still open, in id order, as the capture has ended.
    pub fn finish(&mut self, at: EventMeta, sink: &mut dyn StreamSink) {
        let mut rest: Vec<Box<Connection>> = self.conns.drain().collect();
        rest.sort_unstable_by_key(|c| c.id);
        self.idle = None;
        self.ended.clear();
        for conn in rest {
            self.finish_conn(*conn, Close::Open, at, sink);
        }
    }

    fn new_conn(
        &mut self,
        pkt: &Decoded<'_>,
        seg: &TcpSegment<'_>,
        tunnel: &Tunnel,
        context: u64,
    ) -> Connection {
        let (client, server, orientation) = orient(pkt.src, pkt.dst, seg);
        let id = ConnId(self.next_id);
        self.next_id += 1;
        self.opened += 1;
        Connection {
            id,
            client: client.into(),
            server: server.into(),
            orientation,
            first_ts: pkt.ts,
            last_ts: pkt.ts,
            first_packet: pkt.index,
            last_packet: pkt.index,
            origin: pkt.origin,
            close: Close::Open,
            encapsulation: ThinVec::from(tunnel.layers()),
            client_isn_from_synack: 0,
            synack_seen: false,
            context,
            dirs: Default::default(),
            sink_state: None,
        }
    }

    /// The open connections' ids and sink states, in no particular order.
    pub fn sink_states(&mut self) -> impl Iterator<Item = (ConnId, &mut SinkState)> {
        self.conns.iter_mut().map(|c| (c.id, &mut c.sink_state))
    }

    /// Queues a connection for idle eviction, once the table has been full (until then there
    /// is no queue: [`FlowTable::evict_idlest`] builds it). Entries of connections that were
    /// replaced stay in the heap until popped; when they outnumber the live ones, the heap is
    /// rebuilt so its size stays proportional to the table, not to the connections ever seen.
    fn push_idle(&mut self, ts: Timestamp, id: ConnId, key: FlowKey) {
        let Some(idle) = &mut self.idle else {
            return;
        };
        idle.push(Reverse((ts, id, FlowKeyOrd(key))));
        if idle.len() > 2 * self.conns.len() + 64 {
            let mut fresh = self.idle_of_table();
            fresh.push(Reverse((ts, id, FlowKeyOrd(key))));
            self.idle = Some(fresh);
        }
    }

    /// Every connection of the table by its last-seen time.
    fn idle_of_table(&self) -> BinaryHeap<Reverse<(Timestamp, ConnId, FlowKeyOrd)>> {
        self.conns
            .iter()
            .map(|c| Reverse((c.last_ts, c.id, FlowKeyOrd(c.key()))))
            .collect()
    }

    /// Evicts the connection seen longest ago (the same one whether the heap was kept all
    /// along or built now: stale entries are requeued with their real time before one is
    /// taken).
    fn evict_idlest(&mut self, at: EventMeta, sink: &mut dyn StreamSink) {
        let mut idle = match self.idle.take() {
            Some(idle) => idle,
            None => self.idle_of_table(),
        };
        self.evict_from(&mut idle, at, sink);
        self.idle = Some(idle);
    }

    fn evict_from(
        &mut self,
        idle: &mut BinaryHeap<Reverse<(Timestamp, ConnId, FlowKeyOrd)>>,
        at: EventMeta,
        sink: &mut dyn StreamSink,
    ) {
        while let Some(Reverse((ts, id, FlowKeyOrd(key)))) = idle.pop() {
            let hash = self.hasher.hash_one(key);
            let Some(conn) = self.conns.find(hash, |c| c.key() == key) else {
                continue;
            };
            if conn.id != id {
                continue;
            }
            if conn.last_ts > ts {
                // Seen since this entry was pushed: requeue with its real idle time.
                idle.push(Reverse((conn.last_ts, id, FlowKeyOrd(key))));
                continue;
            }
            if let Some(conn) = self.remove(key) {
                self.anomalies.add(Anomaly::FlowTableLimit);
                self.evicted += 1;
                self.finish_conn(*conn, Close::Evicted, at, sink);
            }
            return;
        }
    }

    /// Flushes both directions and hands the connection to the sink.
    fn finish_conn(
        &mut self,
        mut conn: Connection,
        open_as: Close,
        at: EventMeta,
        sink: &mut dyn StreamSink,
    ) {
        let id = conn.id;
        self.contexts.release(conn.context);
        let [c2s, s2c] = &mut conn.dirs;
        for (dir, r) in [
            (Direction::ClientToServer, c2s),
            (Direction::ServerToClient, s2c),
        ] {
            let state = &mut conn.sink_state;
            let mut out = |ev: StreamEvent<'_>| sink.stream(state, id, dir, ev, at);
            r.flush(&mut self.budget, &mut out);
            if r.stats.bytes_after_end() > 0 {
                self.anomalies.add(Anomaly::TcpDataAfterClose);
            }
        }
        if conn.close == Close::Open {
            let fins = conn.dirs.iter().filter(|d| d.is_finished()).count();
            conn.close = match fins {
                2 => Close::Fin,
                1 => Close::HalfClosed,
                _ => open_as,
            };
        }
        sink.close(conn, at);
    }
}

/// Tells client from server (see [`Orientation`]).
fn orient(
    src: SocketAddr,
    dst: SocketAddr,
    seg: &TcpSegment<'_>,
) -> (SocketAddr, SocketAddr, Orientation) {
    match (seg.flags.syn, seg.flags.ack) {
        (true, false) => return (src, dst, Orientation::Syn),
        (true, true) => return (dst, src, Orientation::SynAck),
        _ => {}
    }
    match (server_port_rank(src.port()), server_port_rank(dst.port())) {
        (s, d) if s < d => (dst, src, Orientation::Ports),
        (s, d) if d < s => (src, dst, Orientation::Ports),
        _ => (src, dst, Orientation::FirstPacket),
    }
}

/// Lower is more likely a server: system ports (below 1024), then registered ports below the
/// ephemeral ranges (RFC 6335 §6 and Linux's default 32768-60999), then ephemeral ports.
fn server_port_rank(port: u16) -> u8 {
    match port {
        0..=1023 => 0,
        1024..=32767 => 1,
        _ => 2,
    }
}

/// One segment of a connection, sent from `src`: its direction's reassembly, and the peer's
/// acknowledgement.
fn take_segment(
    conn: &mut Connection,
    src: Endpoint,
    pkt: &Decoded<'_>,
    seg: &TcpSegment<'_>,
    ctx: &mut Ctx<'_>,
    at: EventMeta,
    sink: &mut dyn StreamSink,
) {
    conn.last_ts = conn.last_ts.max(pkt.ts);
    conn.last_packet = pkt.index;
    let dir = conn.direction_of(src);
    let id = conn.id;
    let state = &mut conn.sink_state;
    let [c2s, s2c] = &mut conn.dirs;
    let (this, peer) = match dir {
        Direction::ClientToServer => (c2s, s2c),
        Direction::ServerToClient => (s2c, c2s),
    };
    if seg.flags.syn {
        if seg.flags.ack && dir == Direction::ServerToClient {
            conn.client_isn_from_synack = seg.ack.wrapping_sub(1);
            conn.synack_seen = true;
        }
        this.syn(seg.seq);
        if !seg.payload.is_empty() {
            ctx.anomalies.add(Anomaly::TcpSynWithPayload);
        }
    }
    if seg.flags.rst {
        let mut out = |ev: StreamEvent<'_>| sink.stream(state, id, dir, ev, at);
        this.reset(seg.seq, ctx.budget, &mut out);
        conn.close = match dir {
            Direction::ClientToServer => Close::ResetByClient,
            Direction::ServerToClient => Close::ResetByServer,
        };
        return;
    }
    let data_seq = if seg.flags.syn {
        seg.seq.wrapping_add(1)
    } else {
        seg.seq
    };
    {
        let mut out = |ev: StreamEvent<'_>| sink.stream(state, id, dir, ev, at);
        this.segment(
            Segment {
                seq: data_seq,
                payload: seg.payload,
                missing: seg.missing,
                fin: seg.flags.fin,
            },
            ctx,
            &mut out,
        );
    }
    if seg.flags.ack {
        let mut out = |ev: StreamEvent<'_>| sink.stream(state, id, dir.opposite(), ev, at);
        peer.peer_ack(seg.ack, ctx, &mut out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{TcpFlags, Transport};

    struct Null;
    impl StreamSink for Null {
        fn open(&mut self, _: &Connection, _: EventMeta) {}
        fn stream(
            &mut self,
            _: &mut SinkState,
            _: ConnId,
            _: Direction,
            _: StreamEvent<'_>,
            _: EventMeta,
        ) {
        }
        fn close(&mut self, _: Connection, _: EventMeta) {}
    }

    #[test]
    fn idle_heap_stays_proportional_to_the_table_under_port_reuse() {
        let mut table = FlowTable::new(&Limits {
            max_connections: 2,
            ..Limits::default()
        });
        // Three connections in a table of two: the heap is made by the first eviction, which
        // takes the one seen first.
        for (i, src) in ["10.0.0.3:1", "10.0.0.4:1", "10.0.0.1:40000"]
            .iter()
            .enumerate()
        {
            syn_in(
                &mut table,
                None,
                src,
                "10.0.0.2:80",
                1,
                i as u64 + 1,
                &mut Null,
            );
            assert_eq!(table.idle.is_some(), i == 2);
        }
        assert_eq!((table.len(), table.evicted), (2, 1));
        assert!(table
            .conns
            .iter()
            .all(|c| c.client().to_string() != "10.0.0.3:1"));
        for i in 0..10_000u32 {
            let (seq, index) = (i.wrapping_mul(7919), u64::from(i) + 10);
            syn_in(
                &mut table,
                None,
                "10.0.0.1:40000",
                "10.0.0.2:80",
                seq,
                index,
                &mut Null,
            );
        }
        assert_eq!(table.opened, 10_003);
        assert_eq!(table.len(), 2);
        let heap = table.idle.as_ref().map_or(0, |h| h.len());
        assert!(heap <= 2 * table.len() + 65, "heap {heap}");
    }

    /// A SYN with sequence number `seq` in VXLAN `vni` (`None`: bare), from `src`.
    fn syn_in(
        table: &mut FlowTable,
        vni: Option<u32>,
        src: &str,
        dst: &str,
        seq: u32,
        index: u64,
        sink: &mut dyn StreamSink,
    ) {
        use crate::wire::tunnel::{Layer, Outer};
        let mut tunnel = Tunnel::default();
        if let Some(vni) = vni {
            tunnel.push(Layer::Vxlan {
                vni,
                outer: Outer {
                    src: "192.0.2.1".parse().unwrap(),
                    dst: "192.0.2.2".parse().unwrap(),
                },
            });
        }
        let seg = TcpSegment {
            seq,
            ack: 0,
            flags: TcpFlags {
                syn: true,
                ..TcpFlags::default()
            },
            window: 0,
            payload: &[],
            missing: 0,
        };
        let pkt = Decapsulated {
            inner: Decoded {
                index,
                origin: Default::default(),
                ts: Timestamp(index as i64),
                src: src.parse().unwrap(),
                dst: dst.parse().unwrap(),
                transport: Transport::Tcp(seg),
            },
            tunnel: &tunnel,
        };
        table.process(&pkt, &seg, sink);
    }

    #[test]
    fn tunnel_contexts_live_as_long_as_their_connections() {
        let (c, s) = ("10.0.0.1:40000", "10.0.0.2:443");
        let mut t = FlowTable::new(&Limits::default());
        syn_in(&mut t, Some(42), c, s, 1, 1, &mut Null);
        syn_in(&mut t, Some(43), c, s, 1, 2, &mut Null);
        syn_in(&mut t, None, c, s, 1, 3, &mut Null);
        // A retransmitted SYN in VNI 42 is the same connection.
        syn_in(&mut t, Some(42), c, s, 1, 4, &mut Null);
        assert_eq!((t.len(), t.opened, t.contexts.ids.len()), (3, 3, 2));
        // A new ISN in VNI 42 replaces its connection: the context is released and taken
        // again (under a new number), and the next packet finds the new connection.
        syn_in(&mut t, Some(42), c, s, 99, 5, &mut Null);
        syn_in(&mut t, Some(42), c, s, 99, 6, &mut Null);
        assert_eq!((t.len(), t.opened, t.contexts.ids.len()), (3, 4, 2));
        t.finish(
            EventMeta {
                ts: Timestamp(7),
                packet: 7,
            },
            &mut Null,
        );
        assert!(t.contexts.ids.is_empty() && t.contexts.users.is_empty());
    }

    #[test]
    fn eviction_releases_the_evicted_connections_context() {
        let limits = Limits {
            max_connections: 1,
            ..Limits::default()
        };
        let mut t = FlowTable::new(&limits);
        for (i, vni) in (1..=50).enumerate() {
            syn_in(
                &mut t,
                Some(vni),
                "10.0.0.1:40000",
                "10.0.0.2:443",
                1,
                i as u64 + 1,
                &mut Null,
            );
            assert_eq!((t.len(), t.contexts.ids.len()), (1, 1));
        }
        assert_eq!(t.evicted, 49);
    }
}
