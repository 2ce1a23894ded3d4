//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the corpus replay test.
//! Not part of the supported API.
//!
//! Each function takes arbitrary bytes and must never panic on them. The one exception is on
//! purpose: [`ContractSink`] panics when the flow table breaks the [`StreamSink`] contract,
//! because that is a bug in misdirect, not in the input. The targets and what the bytes mean
//! are described in `docs/robustness.md`.
//!
//! - [`capture_file`]: the bytes are a whole pcap or pcapng file, run through the pipeline.
//! - [`decode_packet`]: one link-type byte, then one packet or several length-prefixed packets
//!   (so IP fragments can be reassembled), through [`Decoder::decode`].
//! - [`tcp_streams`]: a script of TCP segments of a few connections in both directions, fed
//!   straight into a [`FlowTable`] without encoding packets. In its "consistent content"
//!   mode every byte is a function of its sequence number, so the sink can also check that
//!   each delivered byte sits at its true stream offset.
//! - [`tls_stream`]: one TLS connection's stream events with its own key log, through the
//!   protocol layer (detection, records, handshake, decryption).
//! - [`tls_handshake`]: one handshake message body through the hello and certificate parsers.
//! - [`keylog`]: the bytes as an NSS key log.

use crate::capture::{Capture, FileSource, LinkType, RawPacket};
use crate::flow::{ConnId, Connection, Direction, EventMeta, FlowTable, StreamEvent, StreamSink};
use crate::pipeline;
use crate::wire::{Decoded, Decoder, TcpFlags, TcpSegment, Transport};
use crate::{Limits, Timestamp};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Small limits, so that short inputs reach the limit paths too.
pub fn capture_limits() -> Limits {
    Limits {
        max_capture_block: 1 << 20,
        max_connections: 64,
        max_ooo_bytes_per_direction: 4096,
        max_ooo_bytes_total: 16 << 10,
        max_ooo_segments_per_direction: 32,
        max_ip_fragment_datagrams: 8,
        ..Limits::default()
    }
}

/// The bytes as one whole capture file (pcap or pcapng), through the whole pipeline.
pub fn capture_file(data: &[u8]) {
    let limits = capture_limits();
    let Ok(src) = FileSource::from_reader(
        "fuzz".to_string(),
        std::io::Cursor::new(data.to_vec()),
        limits.max_capture_block,
    ) else {
        return;
    };
    let Ok(mut capture) = Capture::from_sources(vec![src]) else {
        return;
    };
    let mut sink = ContractSink::new();
    let stats = pipeline::run(&mut capture, &limits, &mut sink, &mut |_| {});
    sink.finish();
    assert_eq!(
        stats.connections,
        sink.opened(),
        "run stats count other connections than the sink saw opened"
    );
    let read: u64 = capture.summaries().iter().map(|s| s.packets).sum();
    assert_eq!(
        read, stats.decode.packets,
        "packets read from the file differ from packets decoded"
    );
    assert!(
        capture.bytes_read() <= data.len() as u64,
        "more bytes consumed than the file holds"
    );
}

/// Link types selectable by the first byte of a [`decode_packet`] input (low nibble, mod 9).
pub const DECODE_LINKS: [LinkType; 9] = [
    LinkType::Ethernet,
    LinkType::Raw,
    LinkType::Null,
    LinkType::Loop,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::Other(147),
];

/// First-byte flag of [`decode_packet`]: the rest is several length-prefixed records.
pub const DECODE_RECORDS: u8 = 0x10;
/// First-byte flag of [`decode_packet`] (single-packet mode): the packet was cut by the snap
/// length (its original length is 1000 bytes more than captured).
pub const DECODE_TRUNCATED: u8 = 0x20;

/// Limits for [`decode_packet`]: few datagrams in reassembly and a short timeout.
pub fn decode_limits() -> Limits {
    Limits {
        max_ip_fragment_datagrams: 4,
        ip_fragment_timeout_ns: 2 * Timestamp::NANOS_PER_SEC,
        ..Limits::default()
    }
}

/// One or several packets of one link type through [`Decoder::decode`].
///
/// Byte 0: low nibble mod 9 selects the link type from [`DECODE_LINKS`]; flag
/// [`DECODE_RECORDS`] selects the record mode, [`DECODE_TRUNCATED`] marks a single packet as
/// cut by the snap length. Without records the rest is one packet. With records the rest is a
/// sequence of `[len lo][len hi][meta][len bytes]`, where `meta`'s low nibble advances capture
/// time by half seconds (fragment timeouts) and its high nibble times 64 is how many bytes
/// the snap length cut.
pub fn decode_packet(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let link = DECODE_LINKS
        .get(usize::from(head & 0x0f) % DECODE_LINKS.len())
        .copied()
        .unwrap_or(LinkType::Ethernet);
    let mut decoder = Decoder::new(&decode_limits());
    let mut ts = Timestamp(1_700_000_000 * Timestamp::NANOS_PER_SEC);
    let mut count = 0u64;
    let mut decode_one = |decoder: &mut Decoder, ts: Timestamp, bytes: &[u8], cut: u32| {
        count += 1;
        let pkt = RawPacket {
            index: count,
            input: 0,
            ts,
            link,
            data: bytes,
            orig_len: u32::try_from(bytes.len())
                .unwrap_or(u32::MAX)
                .saturating_add(cut),
        };
        if let Some(d) = decoder.decode(&pkt) {
            assert_eq!(d.index, pkt.index, "decoded packet has another index");
            assert_eq!(d.ts, pkt.ts, "decoded packet has another time");
            if let Transport::Tcp(seg) = d.transport {
                assert!(
                    seg.missing == 0 || pkt.is_truncated(),
                    "missing TCP bytes reported for a packet captured whole"
                );
            }
        }
        assert_eq!(decoder.stats.packets, count, "decoder packet count");
    };
    if head & DECODE_RECORDS == 0 {
        let cut = if head & DECODE_TRUNCATED != 0 {
            1000
        } else {
            0
        };
        decode_one(&mut decoder, ts, rest, cut);
    } else {
        let mut r = Reader(rest);
        while let (Some(lo), Some(hi), Some(meta)) = (r.u8(), r.u8(), r.u8()) {
            let len = usize::from(u16::from_le_bytes([lo, hi]));
            let bytes = r.take(len);
            ts = Timestamp(ts.0 + i64::from(meta & 0x0f) * (Timestamp::NANOS_PER_SEC / 2));
            decode_one(&mut decoder, ts, bytes, u32::from(meta >> 4) * 64);
        }
    }
    decoder.finish();
}

/// A connection of a [`tcp_streams`] script: endpoints by connection index.
fn script_endpoints(index: usize, v6: bool) -> (SocketAddr, SocketAddr) {
    let ip = |last: u8| -> IpAddr {
        if v6 {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(last)))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
        }
    };
    match index {
        // Same ports on both sides: orientation falls back to the first packet.
        3 => (SocketAddr::new(ip(3), 8080), SocketAddr::new(ip(2), 8080)),
        i => (
            SocketAddr::new(ip(1), 40000 + i as u16),
            SocketAddr::new(ip(2), 443),
        ),
    }
}

/// Limits presets of [`tcp_streams`], chosen by bits 4-5 of the first byte.
pub fn stream_limits(preset: u8) -> Limits {
    let base = Limits::default();
    match preset & 3 {
        0 => Limits {
            max_connections: 1,
            max_ooo_bytes_per_direction: 16,
            max_ooo_bytes_total: 24,
            max_ooo_segments_per_direction: 2,
            reorder_window_ns: 0,
            ..base
        },
        1 => Limits {
            max_connections: 2,
            max_ooo_bytes_per_direction: 256,
            max_ooo_bytes_total: 384,
            max_ooo_segments_per_direction: 4,
            reorder_window_ns: 1_000_000,
            ..base
        },
        2 => Limits {
            max_connections: 3,
            max_ooo_bytes_per_direction: 4096,
            max_ooo_bytes_total: 8192,
            max_ooo_segments_per_direction: 32,
            ..base
        },
        _ => Limits {
            max_connections: 64,
            ..base
        },
    }
}

/// The byte at sequence number `seq` sent by `port` in the consistent-content mode of
/// [`tcp_streams`] (a 32-bit integer hash, so a byte at a wrong offset is almost surely
/// another value).
pub fn content_byte(seq: u32, port: u16) -> u8 {
    let mut x = seq ^ (u32::from(port) << 16) ^ 0x5bd1_e995;
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x as u8
}

/// Script flags of [`tcp_streams`] (first byte).
pub mod script {
    /// Bits 0-1: number of connections minus one.
    pub const CONNS_MASK: u8 = 0x03;
    /// Payload bytes are [`super::content_byte`] of their sequence number (and checked at
    /// delivery) instead of being taken from the input.
    pub const CONSISTENT: u8 = 0x04;
    pub const IPV6: u8 = 0x08;
    /// Bits 4-5: the [`super::stream_limits`] preset.
    pub const LIMITS_SHIFT: u8 = 4;

    /// Segment flags (first byte of a segment record).
    pub const FROM_SERVER: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const ACK: u8 = 0x04;
    pub const FIN: u8 = 0x08;
    pub const RST: u8 = 0x10;
    /// A `missing` byte follows (payload bytes cut by the snap length).
    pub const MISSING: u8 = 0x20;
    /// The sequence delta counts in units of 1024.
    pub const SEQ_BIG: u8 = 0x40;
    /// The acknowledgment delta counts in units of 1024.
    pub const ACK_BIG: u8 = 0x80;
}

/// Per-direction sequence cursors of one scripted connection.
struct ScriptConn {
    client: SocketAddr,
    server: SocketAddr,
    /// Next sequence number of `[client, server]`.
    next: [u32; 2],
}

/// TCP segments of one to four connections straight into a [`FlowTable`].
///
/// Header: `[flags][client ISN: u32 LE][server ISN: u32 LE]` (see [`script`] for the flags;
/// connection `i` uses ISN + i * 2^30). Then segment records until the input ends:
/// `[seg flags][meta][seq delta: i16 LE][ack delta: i8][payload len][missing?][payload?]`.
/// `meta` bits 0-1 pick the connection, bits 2-7 advance capture time by that many 250 µs
/// (63 steps back 10 ms instead). The sequence number is the sender's next one plus the delta;
/// the acknowledgment is the peer's next one plus its delta. The sender's next sequence number
/// moves to the segment's end when that is ahead of it. The payload is `len` input bytes, or in
/// the consistent mode `len` bytes of [`content_byte`].
pub fn tcp_streams(data: &[u8]) {
    let mut r = Reader(data);
    let cfg = r.u8().unwrap_or(0);
    let cisn = r.u32().unwrap_or(0);
    let sisn = r.u32().unwrap_or(0);
    let consistent = cfg & script::CONSISTENT != 0;
    let limits = stream_limits(cfg >> script::LIMITS_SHIFT);
    let nconns = usize::from(cfg & script::CONNS_MASK) + 1;
    let mut conns: Vec<ScriptConn> = (0..nconns)
        .map(|i| {
            let (client, server) = script_endpoints(i, cfg & script::IPV6 != 0);
            let step = (i as u32) << 30;
            ScriptConn {
                client,
                server,
                next: [cisn.wrapping_add(step), sisn.wrapping_add(step)],
            }
        })
        .collect();

    let mut flows = FlowTable::new(&limits);
    let mut sink = if consistent {
        ContractSink::with_content(content_byte)
    } else {
        ContractSink::new()
    };
    let mut ts = Timestamp(1_700_000_000 * Timestamp::NANOS_PER_SEC);
    let mut last = EventMeta { ts, packet: 0 };
    let mut index = 0u64;
    let mut payload_buf = Vec::new();
    while let (Some(flags), Some(meta), Some(seq_delta), Some(ack_delta), Some(len)) =
        (r.u8(), r.u8(), r.i16(), r.u8(), r.u8())
    {
        let missing = if flags & script::MISSING != 0 {
            let m = u32::from(r.u8().unwrap_or(0));
            if m < 0x80 {
                m
            } else {
                (m & 0x7f) << 12
            }
        } else {
            0
        };
        let Some(conn) = conns.get_mut(usize::from(meta & 3) % nconns) else {
            break;
        };
        let from_server = flags & script::FROM_SERVER != 0;
        let (me, peer) = if from_server { (1, 0) } else { (0, 1) };
        let (src, dst) = if from_server {
            (conn.server, conn.client)
        } else {
            (conn.client, conn.server)
        };
        let my_next = conn.next.get(me).copied().unwrap_or(0);
        let peer_next = conn.next.get(peer).copied().unwrap_or(0);
        let seq_scale: i32 = if flags & script::SEQ_BIG != 0 {
            1024
        } else {
            1
        };
        let ack_scale: i32 = if flags & script::ACK_BIG != 0 {
            1024
        } else {
            1
        };
        let seq = my_next.wrapping_add_signed(i32::from(seq_delta) * seq_scale);
        let ack = peer_next.wrapping_add_signed(i32::from(ack_delta as i8) * ack_scale);
        let syn = flags & script::SYN != 0;
        let fin = flags & script::FIN != 0;

        payload_buf.clear();
        if consistent {
            let first = seq.wrapping_add(u32::from(syn));
            payload_buf.extend(
                (0..u32::from(len)).map(|i| content_byte(first.wrapping_add(i), src.port())),
            );
        } else {
            payload_buf.extend_from_slice(r.take(usize::from(len)));
        }

        let dt = meta >> 2;
        ts = if dt == 63 {
            Timestamp(ts.0 - 10_000_000)
        } else {
            Timestamp(ts.0 + i64::from(dt) * 250_000)
        };
        index += 1;
        let seg = TcpSegment {
            seq,
            ack,
            flags: TcpFlags {
                syn,
                ack: flags & script::ACK != 0,
                fin,
                rst: flags & script::RST != 0,
            },
            window: 65535,
            payload: &payload_buf,
            missing,
        };
        let decoded = Decoded {
            index,
            ts,
            src,
            dst,
            transport: Transport::Tcp(seg),
        };
        flows.process(&decoded, &seg, &mut sink);
        last = EventMeta {
            ts: last.ts.max(ts),
            packet: index,
        };

        let end = seq
            .wrapping_add(u32::from(syn))
            .wrapping_add(payload_buf.len() as u32)
            .wrapping_add(missing)
            .wrapping_add(u32::from(fin));
        if let Some(n) = conn.next.get_mut(me) {
            if end.wrapping_sub(*n) as i32 > 0 {
                *n = end;
            }
        }
    }
    flows.finish(last, &mut sink);
    sink.finish();
    assert!(flows.is_empty(), "connections left after finish");
    assert_eq!(
        flows.opened,
        sink.opened(),
        "flow table counts other connections than the sink saw opened"
    );
    assert_eq!(
        flows.buffered_bytes(),
        0,
        "out-of-order buffer budget not returned after every connection closed"
    );
}

/// Little reader over fuzz input: `None` once the bytes run out.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn i16(&mut self) -> Option<i16> {
        let (b, rest) = self.0.split_first_chunk::<2>()?;
        self.0 = rest;
        Some(i16::from_le_bytes(*b))
    }

    fn u32(&mut self) -> Option<u32> {
        let (b, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_le_bytes(*b))
    }

    /// Up to `n` bytes (fewer when the input ends).
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

/// How a direction of a connection has gone so far, as the sink saw it.
#[derive(Default)]
struct DirSeen {
    ended: Option<&'static str>,
    data_bytes: u64,
    gap_bytes: u64,
    gaps: u64,
    /// With a content oracle: every data event as (stream offset, bytes).
    log: Vec<(u64, Vec<u8>)>,
}

struct ConnSeen {
    /// `[client→server, server→client]`.
    dirs: [DirSeen; 2],
}

/// A [`StreamSink`] that panics when the flow table breaks its contract:
///
/// - connection ids are sequential from 1 and each is opened once, before any event names it;
/// - no event names a connection after its close, and each is closed exactly once
///   (checked for all of them by [`ContractSink::finish`]);
/// - per direction, nothing follows a `Fin` or `Rst`; no `Data` is empty, no `Gap` is zero;
/// - at close, the connection's counters agree with the events delivered, its out-of-order
///   buffers are empty, and it counts a direction finished exactly when a `Fin`/`Rst` came;
/// - with a content oracle (`byte = f(sequence number, sender port)`), every delivered byte
///   is the one at its stream offset.
pub struct ContractSink {
    next_id: u64,
    open: HashMap<u64, ConnSeen>,
    closed: u64,
    content: Option<fn(u32, u16) -> u8>,
}

impl Default for ContractSink {
    fn default() -> Self {
        Self::new()
    }
}

impl ContractSink {
    pub fn new() -> Self {
        ContractSink {
            next_id: 1,
            open: HashMap::new(),
            closed: 0,
            content: None,
        }
    }

    /// Also checks each delivered byte against `content(sequence number, sender port)`.
    pub fn with_content(content: fn(u32, u16) -> u8) -> Self {
        ContractSink {
            content: Some(content),
            ..Self::new()
        }
    }

    /// Connections opened so far.
    pub fn opened(&self) -> u64 {
        self.next_id - 1
    }

    /// Checks that every connection opened was closed. Call after `FlowTable::finish`.
    pub fn finish(&self) {
        let mut left: Vec<u64> = self.open.keys().copied().collect();
        left.sort_unstable();
        assert!(left.is_empty(), "connections never closed: {left:?}");
        assert_eq!(self.closed, self.opened(), "closes differ from opens");
    }

    fn seen(&mut self, id: ConnId, what: &str) -> &mut ConnSeen {
        let id = id.0;
        if id == 0 || id >= self.next_id {
            panic!("{what} for connection {id}, never opened");
        }
        match self.open.get_mut(&id) {
            Some(c) => c,
            None => panic!("{what} for connection {id} after its close"),
        }
    }
}

fn slot(dir: Direction) -> usize {
    match dir {
        Direction::ClientToServer => 0,
        Direction::ServerToClient => 1,
    }
}

impl StreamSink for ContractSink {
    fn open(&mut self, conn: &Connection, _at: EventMeta) {
        let id = conn.id.0;
        assert!(id >= self.next_id, "connection {id} opened twice");
        assert_eq!(
            id, self.next_id,
            "connection ids must be sequential: expected {}, got {id}",
            self.next_id
        );
        self.next_id += 1;
        self.open.insert(
            id,
            ConnSeen {
                dirs: Default::default(),
            },
        );
    }

    fn stream(&mut self, id: ConnId, dir: Direction, event: StreamEvent<'_>, _at: EventMeta) {
        let logging = self.content.is_some();
        let c = self.seen(id, "stream event");
        let Some(d) = c.dirs.get_mut(slot(dir)) else {
            return;
        };
        if let Some(how) = d.ended {
            panic!("{event:?} on connection {} {dir:?} after its {how}", id.0);
        }
        match event {
            StreamEvent::Data(bytes) => {
                assert!(
                    !bytes.is_empty(),
                    "empty Data on connection {} {dir:?}",
                    id.0
                );
                if logging {
                    d.log.push((d.data_bytes + d.gap_bytes, bytes.to_vec()));
                }
                d.data_bytes += bytes.len() as u64;
            }
            StreamEvent::Gap(n) => {
                assert!(n > 0, "zero Gap on connection {} {dir:?}", id.0);
                d.gap_bytes = d.gap_bytes.saturating_add(n);
                d.gaps += 1;
            }
            StreamEvent::Fin => d.ended = Some("Fin"),
            StreamEvent::Rst => d.ended = Some("Rst"),
        }
    }

    fn close(&mut self, conn: Connection, _at: EventMeta) {
        let content = self.content;
        let seen = self.seen(conn.id, "close");
        let id = conn.id.0;
        for dir in [Direction::ClientToServer, Direction::ServerToClient] {
            let Some(d) = seen.dirs.get(slot(dir)) else {
                continue;
            };
            let r = conn.dir(dir);
            assert_eq!(
                r.stats.stream_bytes, d.data_bytes,
                "connection {id} {dir:?}: stream_bytes differs from the data delivered"
            );
            assert_eq!(
                (r.stats.gaps, r.stats.gap_bytes),
                (d.gaps, d.gap_bytes),
                "connection {id} {dir:?}: gap counters differ from the gaps delivered"
            );
            assert_eq!(
                r.buffered(),
                0,
                "connection {id} {dir:?}: out-of-order bytes still buffered at close"
            );
            assert_eq!(
                r.is_finished(),
                d.ended.is_some(),
                "connection {id} {dir:?}: finished state differs from the Fin/Rst delivered"
            );
            if let Some(f) = content {
                let sender = match dir {
                    Direction::ClientToServer => conn.client,
                    Direction::ServerToClient => conn.server,
                };
                check_content(id, dir, r.offset_of(0), &d.log, |seq| f(seq, sender.port()));
            }
        }
        self.open.remove(&id);
        self.closed += 1;
    }
}

/// Every logged byte must be `f` of its sequence number: offset 0 is the sequence number
/// whose offset is 0, derived from where sequence number 0 lies (`offset_of_zero`).
fn check_content(
    id: u64,
    dir: Direction,
    offset_of_zero: Option<i64>,
    log: &[(u64, Vec<u8>)],
    f: impl Fn(u32) -> u8,
) {
    if log.is_empty() {
        return;
    }
    let Some(zero) = offset_of_zero else {
        panic!("connection {id} {dir:?}: data delivered but the direction has no start");
    };
    let base = 0u32.wrapping_sub(zero as u32);
    for (offset, bytes) in log {
        for (i, &b) in bytes.iter().enumerate() {
            let at = offset.wrapping_add(i as u64);
            let seq = base.wrapping_add(at as u32);
            assert_eq!(
                b,
                f(seq),
                "connection {id} {dir:?}: wrong byte at stream offset {at} (seq {seq})"
            );
        }
    }
}

/// TLS stream script: `[u16 key-log length][key-log text]`, then events for one connection,
/// each `[op]` with `op & 1` the direction (0: client to server) and `op & 6` the kind: 2 a
/// gap, 4 the end of that direction, otherwise `[u16 length][bytes]` of stream data. The key
/// log travels with the input, so seeds made from real sessions (see [`tls_script`]) reach
/// decryption, and mutations of them reach every failure path of it.
///
/// Checked besides "no panic": once a direction's plaintext is reported lost, no more of it
/// is delivered.
pub fn tls_stream(data: &[u8]) {
    use crate::proto::codec::Reader as Wire;
    use crate::proto::tls::keylog::KeyLog;
    use crate::proto::tls::session::AppData;
    let mut r = Wire::new(data);
    let mut keylog = KeyLog::default();
    if let Some(k) = r.sub_u16() {
        keylog.add(k.rest());
    }
    let mut proto = crate::proto::ConnProto::new(false, crate::Limits::default().http());
    let at = crate::Timestamp::default();
    let mut lost = [false; 2];
    let mut out = |d: Direction, a: AppData<'_>| {
        let Some(l) = lost.get_mut(slot(d)) else {
            return;
        };
        match a {
            AppData::Data(_) => assert!(!*l, "plaintext delivered after it was reported lost"),
            AppData::Lost => *l = true,
        }
    };
    while let Some(op) = r.u8() {
        let dir = if op & 1 == 0 {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        match op & 6 {
            2 => proto.event(dir, StreamEvent::Gap(1), at, &keylog, &mut out),
            4 => proto.event(dir, StreamEvent::Fin, at, &keylog, &mut out),
            _ => {
                let Some(chunk) = r.sub_u16() else { break };
                if !chunk.rest().is_empty() {
                    proto.event(dir, StreamEvent::Data(chunk.rest()), at, &keylog, &mut out);
                }
            }
        }
    }
    let _ = proto.finish(true);
}

/// Encodes a [`tls_stream`] input: a key log and one connection's stream pieces in order.
pub fn tls_script(keylog: &[u8], pieces: &[(Direction, Vec<u8>)]) -> Vec<u8> {
    let mut v = Vec::new();
    let k = keylog.get(..usize::from(u16::MAX)).unwrap_or(keylog);
    v.extend_from_slice(&(k.len() as u16).to_be_bytes());
    v.extend_from_slice(k);
    for (dir, bytes) in pieces {
        for chunk in bytes.chunks(usize::from(u16::MAX)) {
            v.push(u8::from(*dir == Direction::ServerToClient));
            v.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            v.extend_from_slice(chunk);
        }
    }
    v
}

/// One handshake message body: the first byte picks the parser (ClientHello, ServerHello,
/// EncryptedExtensions, Certificate in the TLS 1.2 and the TLS 1.3 layout).
pub fn tls_handshake(data: &[u8]) {
    use crate::proto::tls::hello;
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => drop(hello::parse_client_hello(body).map(|c| c.anomalies())),
        1 => drop(hello::parse_server_hello(body).map(|s| s.anomalies())),
        2 => drop(hello::parse_encrypted_extensions(body)),
        3 => drop(hello::parse_certificate(body, false)),
        _ => drop(hello::parse_certificate(body, true)),
    }
}

/// The bytes as an NSS key log file.
pub fn keylog(data: &[u8]) {
    let mut k = crate::proto::tls::keylog::KeyLog::default();
    k.add(data);
    if let Some(random) = data.get(..32).and_then(|r| <&[u8; 32]>::try_from(r).ok()) {
        let _ = k.get(random);
    }
    let _ = k.stats();
}
