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
//! - [`http1`], [`http2_frames`], [`control`]: one connection's application-layer script
//!   ([`app_events`]) through the HTTP/1 (with the h2c handover), HTTP/2 and FTP/SMTP parsers,
//!   also fed byte by byte: the outcome must not depend on where the stream was cut.
//! - [`hpack`]: header blocks through an observer's HPACK decoder, some of them hidden from
//!   it, checked against decoders that see them all.
//! - [`app_stream`]: a whole cleartext connection (with a key log for tunnelled TLS) through
//!   the protocol layer: detection, HTTP, FTP/SMTP, CONNECT tunnels.

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

/// The bytes as one capture file, analysed with one thread, with three, and (a legacy pcap)
/// read in small parts by two and three threads: the reports must be the same (the contract
/// of `pipeline::handoff` and `pipeline::split`). The table-wide limits are left large,
/// since the threads share them out.
pub fn threads_agree(data: &[u8]) {
    let limits = Limits {
        max_ooo_bytes_per_direction: 4096,
        max_ooo_segments_per_direction: 32,
        max_ip_fragment_datagrams: 8,
        ..Limits::default()
    };
    // Parts are read from a file: one per thread, written again for every input.
    let thread = format!("{:?}", std::thread::current().id());
    let name: String = thread.chars().filter(char::is_ascii_digit).collect();
    let path =
        std::env::temp_dir().join(format!("misdirect-fuzz-{}-{name}.pcap", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let inputs = [crate::capture::InputName::Path(path.clone())];
    let keylog = crate::proto::tls::keylog::KeyLog::default();
    let report = |threads: usize| {
        let capture = Capture::open(&inputs, &limits).ok()?;
        let r = pipeline::analyze_capture(capture, &limits, &keylog, threads, &mut |_| {});
        serde_json::to_string(&r).ok()
    };
    let in_parts = |threads: usize, part: usize| {
        let r = pipeline::analyze_in_parts(&inputs, &limits, &keylog, threads, part).ok()??;
        serde_json::to_string(&r).ok()
    };
    let one = report(1);
    assert!(one == report(3), "one thread and three report differently");
    for (threads, part) in [(2, 61), (3, 1000)] {
        if let Some(parts) = in_parts(threads, part) {
            assert!(
                one.as_ref() == Some(&parts),
                "one thread and {threads} reading parts of {part} bytes report differently"
            );
        }
    }
    let _ = std::fs::remove_file(&path);
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

/// One or several packets of one link type through [`Decoder::decode`], and through a
/// decoder without its fast path, which must decode every packet the same.
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
    let mut general = Decoder::without_fast_path(&decode_limits());
    let mut ts = Timestamp(1_700_000_000 * Timestamp::NANOS_PER_SEC);
    let mut count = 0u64;
    let mut decode_one = |ts: Timestamp, bytes: &[u8], cut: u32| {
        count += 1;
        let pkt = RawPacket {
            index: count,
            origin: crate::capture::Origin {
                input: 0,
                packet: count,
            },
            ts,
            link,
            data: bytes,
            orig_len: u32::try_from(bytes.len())
                .unwrap_or(u32::MAX)
                .saturating_add(cut),
        };
        let fast = decoder.decode(&pkt);
        if let Some(d) = &fast {
            assert_eq!(d.index, pkt.index, "decoded packet has another index");
            assert_eq!(d.ts, pkt.ts, "decoded packet has another time");
            if let Transport::Tcp(seg) = d.transport {
                assert!(
                    seg.missing == 0 || pkt.is_truncated(),
                    "missing TCP bytes reported for a packet captured whole"
                );
            }
        }
        let fast = fast.map(|d| decoded_facts(&d));
        let slow = general.decode(&pkt).map(|d| decoded_facts(&d));
        assert_eq!(fast, slow, "the fast path decodes differently");
        assert_eq!(
            decoder.stats, general.stats,
            "the fast path counts differently"
        );
        assert_eq!(
            decoder.anomalies, general.anomalies,
            "the fast path reports differently"
        );
        assert_eq!(decoder.stats.packets, count, "decoder packet count");
    };
    if head & DECODE_RECORDS == 0 {
        let cut = if head & DECODE_TRUNCATED != 0 {
            1000
        } else {
            0
        };
        decode_one(ts, rest, cut);
    } else {
        let mut r = Reader(rest);
        while let (Some(lo), Some(hi), Some(meta)) = (r.u8(), r.u8(), r.u8()) {
            let len = usize::from(u16::from_le_bytes([lo, hi]));
            let bytes = r.take(len);
            ts = Timestamp(ts.0 + i64::from(meta & 0x0f) * (Timestamp::NANOS_PER_SEC / 2));
            decode_one(ts, bytes, u32::from(meta >> 4) * 64);
        }
    }
    decoder.finish();
    general.finish();
    assert_eq!(
        decoder.anomalies, general.anomalies,
        "the fast path leaves other datagrams unfinished"
    );
}

/// Everything a decoded packet says, owned, to compare two decoders' views.
fn decoded_facts(d: &crate::wire::Decapsulated<'_>) -> String {
    format!("{:?} {:?}", d.inner, d.tunnel)
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
            origin: crate::capture::Origin {
                input: 0,
                packet: index,
            },
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

    fn u16_be(&mut self) -> Option<u16> {
        let (b, rest) = self.0.split_first_chunk::<2>()?;
        self.0 = rest;
        Some(u16::from_be_bytes(*b))
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

    fn stream(
        &mut self,
        _: &mut crate::flow::SinkState,
        id: ConnId,
        dir: Direction,
        event: StreamEvent<'_>,
        _at: EventMeta,
    ) {
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
            let stats = r.report();
            assert_eq!(
                stats.stream_bytes, d.data_bytes,
                "connection {id} {dir:?}: stream_bytes differs from the data delivered"
            );
            assert_eq!(
                (stats.gaps, stats.gap_bytes),
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
                    Direction::ClientToServer => conn.client(),
                    Direction::ServerToClient => conn.server(),
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
    let room = crate::Limits::default().max_tls_records_held;
    while let Some(op) = r.u8() {
        let dir = if op & 1 == 0 {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        // Bit 3: no room to hold records, so long ones are decrypted as they come.
        let held = if op & 8 == 0 { room } else { 0 };
        keylog.record_budget().set_limit(held);
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
    tls_script_with(keylog, pieces, false)
}

/// [`tls_script`]; with `no_room`, every piece comes with no room to hold records (long
/// ones are then decrypted as they come).
pub fn tls_script_with(keylog: &[u8], pieces: &[(Direction, Vec<u8>)], no_room: bool) -> Vec<u8> {
    let mut v = Vec::new();
    let k = keylog.get(..usize::from(u16::MAX)).unwrap_or(keylog);
    v.extend_from_slice(&(k.len() as u16).to_be_bytes());
    v.extend_from_slice(k);
    for (dir, bytes) in pieces {
        for chunk in bytes.chunks(usize::from(u16::MAX)) {
            v.push(u8::from(*dir == Direction::ServerToClient) | if no_room { 8 } else { 0 });
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

/// The bytes as a run of spilled connection records (`analysis::spill`): read back until
/// they end or are damaged, each record read back encoded again and read back the same.
pub fn spill_records(data: &[u8]) {
    let _ = crate::analysis::spill::read_run(data);
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

// ---------------------------------------------------------------------------------------------
// Application layer: HTTP/1, HTTP/2 frames, HPACK, FTP/SMTP, and a whole cleartext connection.
// ---------------------------------------------------------------------------------------------

use crate::anomaly::Anomaly;
use crate::proto::http::{Exchange, Http2Info, HttpLimits};

/// Limits presets of the application-layer targets, chosen by two bits of their first byte.
/// Preset 0 is tiny (a 256-byte head, 3 exchanges, 16-byte fields), so short inputs reach
/// every limit path; preset 3 is the defaults.
pub fn http_limits(preset: u8) -> std::sync::Arc<HttpLimits> {
    let limits = match preset & 3 {
        0 => HttpLimits {
            max_head_bytes: 256,
            max_header_block: 128,
            max_continuations: 2,
            max_header_list: 256,
            max_hpack_table: 128,
            max_exchanges: 3,
            max_field_bytes: 16,
            tls: crate::proto::tls::session::TlsLimits {
                max_handshake_message: 4096,
                max_early_data: 1024,
            },
        },
        1 => HttpLimits {
            max_head_bytes: 2048,
            max_header_block: 1024,
            max_continuations: 8,
            max_header_list: 2048,
            max_hpack_table: 1024,
            max_exchanges: 16,
            max_field_bytes: 128,
            tls: Default::default(),
        },
        2 => HttpLimits {
            max_head_bytes: 16 << 10,
            max_header_block: 16 << 10,
            max_continuations: 64,
            max_header_list: 16 << 10,
            max_hpack_table: 4096,
            max_exchanges: 64,
            max_field_bytes: 1024,
            tls: Default::default(),
        },
        _ => return Limits::default().http(),
    };
    std::sync::Arc::new(limits)
}

/// Ops of an application-layer script (see [`app_events`]).
pub mod app_op {
    /// The event is the server's (else the client's).
    pub const FROM_SERVER: u8 = 0x01;
    /// Bits 1-2: the kind. 0 and 6 are data.
    pub const KIND_MASK: u8 = 0x06;
    pub const GAP: u8 = 0x02;
    pub const END: u8 = 0x04;
    /// With [`END`]: a RST rather than a FIN.
    pub const RST: u8 = 0x08;
    /// With [`GAP`]: bits 3-7 shift the gap's `u16` length left.
    pub const GAP_SHIFT: u8 = 3;
}

/// One event of an application-layer script, as the flow table delivers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppEvent<'a> {
    Data(&'a [u8]),
    Gap(u64),
    End { rst: bool },
}

/// One event for [`app_script`] to encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptEvent {
    Data(Vec<u8>),
    Gap(u64),
    Fin,
    Rst,
}

/// Reads an application-layer script: events `[op]` (see [`app_op`]) until the input ends.
/// Data is `[u16 BE length][bytes]`; a gap is `[u16 BE n]`, `max(n, 1) << (op >> 3)` bytes
/// lost; an end is a FIN or (`op & 8`) a RST. Calls `f(event index, direction, event)` with
/// the flow table's guarantees: no empty data, no zero gap, nothing after a direction's end.
pub fn app_events<'a>(data: &'a [u8], mut f: impl FnMut(usize, Direction, AppEvent<'a>)) {
    let mut r = Reader(data);
    let mut ended = [false; 2];
    let mut index = 0;
    while let Some(op) = r.u8() {
        let dir = if op & app_op::FROM_SERVER != 0 {
            Direction::ServerToClient
        } else {
            Direction::ClientToServer
        };
        let ev = match op & app_op::KIND_MASK {
            app_op::GAP => {
                let Some(n) = r.u16_be() else { break };
                AppEvent::Gap(u64::from(n.max(1)) << (op >> app_op::GAP_SHIFT))
            }
            app_op::END => AppEvent::End {
                rst: op & app_op::RST != 0,
            },
            _ => {
                let Some(len) = r.u16_be() else { break };
                let bytes = r.take(usize::from(len));
                if bytes.is_empty() {
                    continue;
                }
                AppEvent::Data(bytes)
            }
        };
        let Some(done) = ended.get_mut(slot(dir)) else {
            break;
        };
        if *done {
            continue;
        }
        *done = matches!(ev, AppEvent::End { .. });
        f(index, dir, ev);
        index += 1;
    }
}

/// Encodes an application-layer script: `header` (the target's own first bytes), then the
/// events of one connection in order (data longer than 64 KiB is split, long gaps too).
pub fn app_script(header: &[u8], events: &[(Direction, ScriptEvent)]) -> Vec<u8> {
    let mut v = header.to_vec();
    for (dir, ev) in events {
        let d = u8::from(*dir == Direction::ServerToClient);
        match ev {
            ScriptEvent::Data(bytes) => {
                for chunk in bytes.chunks(usize::from(u16::MAX)) {
                    v.push(d);
                    v.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
                    v.extend_from_slice(chunk);
                }
            }
            ScriptEvent::Gap(len) => {
                let mut left = *len;
                while left > 0 {
                    let shift = (64 - left.leading_zeros()).saturating_sub(16);
                    let n = left >> shift;
                    v.push(d | app_op::GAP | ((shift as u8) << app_op::GAP_SHIFT));
                    v.extend_from_slice(&(n as u16).to_be_bytes());
                    left -= n << shift;
                }
            }
            ScriptEvent::Fin => v.push(d | app_op::END),
            ScriptEvent::Rst => v.push(d | app_op::END | app_op::RST),
        }
    }
    v
}

/// Capture time of a script's event `i` (a millisecond apart).
fn event_time(i: usize) -> Timestamp {
    Timestamp(1_700_000_000 * Timestamp::NANOS_PER_SEC + i as i64 * 1_000_000)
}

/// Calls `feed` with each data event whole (`bytewise` false) or one byte at a time, each
/// byte at the event's time; gaps and ends as they are.
fn replay<'a>(
    script: &'a [u8],
    bytewise: bool,
    mut feed: impl FnMut(Timestamp, Direction, AppEvent<'a>),
) {
    app_events(script, |i, dir, ev| {
        let at = event_time(i);
        match ev {
            AppEvent::Data(d) if bytewise => {
                for b in d.chunks(1) {
                    feed(at, dir, AppEvent::Data(b));
                }
            }
            _ => feed(at, dir, ev),
        }
    });
}

/// What an HTTP parser made of a script, for comparing two ways of cutting it.
#[derive(Debug, PartialEq, Eq)]
struct HttpOutcome {
    exchanges: Vec<Exchange>,
    dropped: u64,
    anomalies: crate::anomaly::AnomalyCounts,
    http2: Option<Http2Info>,
    /// A CONNECT tunnel started: the client bytes handed over and the server's stream
    /// offset where the tunnel begins.
    tunnel: Option<(Vec<u8>, u64)>,
}

/// Contract checks of a connection's exchanges, whatever the input:
///
/// - no more exchanges than the limit, and some dropped only when the list is full;
/// - every text kept is cut at the field limit (one character per byte at most, plus "…");
/// - interim statuses are 1xx; a final 1xx status is only an HTTP/1 `101`;
/// - a response time comes with a status, except on an HTTP/2 stream (a response header block
///   without a readable `:status`, documented in `http2::Fields::fill_response`);
/// - a request seen has its time; HTTP/2 facts (push, reset, unknown fields) only on a stream;
///   stream ids are valid and unique; inferred pairing is HTTP/1's only.
fn check_exchanges(exchanges: &[Exchange], dropped: u64, limits: &HttpLimits) {
    assert!(
        exchanges.len() <= limits.max_exchanges,
        "{} exchanges, over the limit of {}",
        exchanges.len(),
        limits.max_exchanges
    );
    assert!(
        dropped == 0 || exchanges.len() == limits.max_exchanges,
        "exchanges dropped while the list had room"
    );
    let max_chars = limits.max_field_bytes + 1;
    let mut streams = std::collections::HashSet::new();
    for e in exchanges {
        assert!(
            e.rare().interim.len() <= Exchange::MAX_INTERIM,
            "{:?}",
            e.rare().interim
        );
        let texts = [
            &e.method,
            &e.scheme,
            &e.authority,
            &e.host,
            &e.path,
            &e.rare().forwarded,
            &e.rare().x_forwarded_host,
            &e.rare().via,
            &e.reason,
            &e.server,
            &e.rare().upgraded_to,
        ];
        for t in texts.into_iter().flatten() {
            assert!(
                t.chars().count() <= max_chars,
                "a kept text is longer than the field limit {}: {t:?}",
                limits.max_field_bytes
            );
        }
        assert!(
            e.rare().interim.iter().all(|s| (100..200).contains(s)),
            "interim statuses that are not 1xx: {:?}",
            e.rare().interim
        );
        if let Some(s) = e.status {
            assert!(
                !(100..200).contains(&s) || (s == 101 && e.stream_id.is_none()),
                "final status {s} is interim"
            );
        }
        assert!(
            e.response_time.is_none() || e.status.is_some() || e.stream_id.is_some(),
            "an HTTP/1 response time without a status: {e:?}"
        );
        assert!(
            !e.request_seen || e.request_time.is_some(),
            "a request seen without its time"
        );
        let h2_only = e.pushed || e.rare().reset.is_some() || e.unknown_fields > 0;
        assert!(
            !h2_only || e.stream_id.is_some(),
            "HTTP/2 facts on an exchange without a stream: {e:?}"
        );
        if let Some(id) = e.stream_id.map(std::num::NonZeroU32::get) {
            assert!(
                (1..=0x7fff_ffff).contains(&id),
                "stream id {id} out of range"
            );
            assert!(streams.insert(id), "two exchanges for stream {id}");
            assert_eq!(
                e.pairing,
                crate::proto::http::Pairing::Exact,
                "stream {id} paired by inference"
            );
        }
    }
}

fn check_http2_info(info: &Http2Info, limits: &HttpLimits) {
    let max_chars = limits.max_field_bytes + 1;
    assert!(
        info.alt_svc.len() <= 16 && info.goaway.len() <= 16,
        "unbounded lists"
    );
    for a in &info.alt_svc {
        assert!(
            a.chars().count() <= max_chars,
            "ALTSVC value over the limit"
        );
    }
    if let Some(o) = &info.origin_set {
        assert!(o.len() <= limits.max_exchanges, "ORIGIN set over the limit");
        for a in o {
            assert!(a.chars().count() <= max_chars, "origin over the limit");
        }
    }
    for g in &info.goaway {
        assert!(g.last_stream_id <= 0x7fff_ffff, "GOAWAY reserved bit kept");
        if let Some(d) = &g.debug {
            assert!(d.chars().count() <= 257, "GOAWAY debug data over 256 bytes");
        }
    }
}

/// HttpConn on a script, the data whole or byte by byte.
fn run_http_conn(
    script: &[u8],
    bytewise: bool,
    make: &dyn Fn() -> crate::proto::http::HttpConn,
) -> HttpOutcome {
    let mut conn = make();
    let mut offsets = [0u64; 2];
    let mut tunnel = None;
    replay(script, bytewise, |at, dir, ev| {
        if tunnel.is_some() {
            // The bytes are the tunnelled connection's now; the caller stops here.
            return;
        }
        match ev {
            AppEvent::Data(d) => {
                if let Some(h) = conn.data(dir, d, at) {
                    let server_at = offsets.get(1).copied().unwrap_or(0);
                    let start = if dir == Direction::ServerToClient {
                        server_at + (d.len() - h.server_bytes.len()) as u64
                    } else {
                        server_at
                    };
                    tunnel = Some((h.client_bytes, start));
                }
                if let Some(o) = offsets.get_mut(slot(dir)) {
                    *o += d.len() as u64;
                }
            }
            AppEvent::Gap(n) => {
                conn.gap(dir, n, at);
                if let Some(o) = offsets.get_mut(slot(dir)) {
                    *o = o.saturating_add(n);
                }
            }
            AppEvent::End { .. } => conn.end(dir),
        }
    });
    let (log, http2) = conn.finish();
    HttpOutcome {
        exchanges: log.exchanges,
        dropped: log.dropped,
        anomalies: log.anomalies,
        http2,
        tunnel,
    }
}

/// Checks of an HTTP outcome that hold for any input (see [`check_exchanges`]).
fn check_http(o: &HttpOutcome, limits: &HttpLimits, sorted: bool) {
    check_exchanges(&o.exchanges, o.dropped, limits);
    assert_eq!(
        o.anomalies.get(Anomaly::HttpExchangeLimit),
        u64::from(o.dropped > 0),
        "the exchange limit anomaly must be counted once, when exchanges were dropped"
    );
    if let Some(info) = &o.http2 {
        check_http2_info(info, limits);
    }
    if sorted {
        let keys: Vec<_> = o
            .exchanges
            .iter()
            .map(|e| e.request_time.or(e.response_time))
            .collect();
        assert!(
            keys.windows(2).all(|w| w.first() <= w.get(1)),
            "exchanges not in request order"
        );
    }
}

/// HTTP/1 on one connection ([`crate::proto::http::HttpConn`] starting as HTTP/1, so an h2c
/// upgrade hands over to HTTP/2 and a CONNECT tunnel ends it).
///
/// Byte 0: bit 0 the capture missed the start (`mid_stream`), bits 1-2 the
/// [`http_limits`] preset. The rest is an application-layer script ([`app_events`]).
///
/// Checked besides "no panic": the outcome is the same when every data event is delivered
/// one byte at a time (the parser does not depend on where the stream was cut), and the
/// contract checks of [`check_exchanges`].
pub fn http1(data: &[u8]) {
    use crate::proto::http::{HttpConn, Start};
    let Some((&cfg, script)) = data.split_first() else {
        return;
    };
    let mid_stream = cfg & 1 != 0;
    let limits = http_limits(cfg >> 1);
    let make = || HttpConn::new(Start::Http1, mid_stream, limits.clone());
    let whole = run_http_conn(script, false, &make);
    check_http(&whole, &limits, true);
    let bytes = run_http_conn(script, true, &make);
    assert_eq!(
        whole, bytes,
        "HTTP/1 outcome depends on how the stream was cut (whole events vs byte by byte)"
    );
}

/// What a standalone frame reader handed out, for comparing two ways of cutting a stream.
#[derive(Debug, PartialEq, Eq)]
enum FrameSeen {
    Full(frame_fz::FrameHeader, Vec<u8>),
    Skipped(frame_fz::FrameHeader, bool),
    Lost(frame_fz::FrameHeader),
    Error(frame_fz::FrameError),
}

use crate::proto::http::http2::frame as frame_fz;

/// Frame readers of both directions, checking each frame as it comes.
struct FrameLogs {
    readers: [frame_fz::FrameReader; 2],
    seen: [Vec<FrameSeen>; 2],
    gapped: [bool; 2],
    max_payload: usize,
}

impl FrameLogs {
    fn new(preface: bool, max_payload: usize) -> Self {
        FrameLogs {
            readers: [
                frame_fz::FrameReader::new(Some(!preface)),
                frame_fz::FrameReader::new(None),
            ],
            seen: Default::default(),
            gapped: [false; 2],
            max_payload,
        }
    }

    fn event(&mut self, dir: Direction, ev: AppEvent<'_>) {
        let s = slot(dir);
        let (Some(r), Some(seen), Some(gapped)) = (
            self.readers.get_mut(s),
            self.seen.get_mut(s),
            self.gapped.get_mut(s),
        ) else {
            return;
        };
        let dead = r.error().is_some();
        let max = self.max_payload;
        let g = *gapped;
        let mut out = |f: frame_fz::Frame<'_>| {
            assert!(!dead, "a frame after the reader gave up");
            seen.push(match f {
                frame_fz::Frame::Full(h, p) => {
                    assert_eq!(
                        p.len(),
                        h.len as usize,
                        "payload length differs from header"
                    );
                    assert!(p.len() <= max, "payload over the limit kept");
                    FrameSeen::Full(h, p.to_vec())
                }
                frame_fz::Frame::Skipped(h, oversized) => {
                    assert!(!oversized || h.len as usize > max, "skipped as oversized");
                    FrameSeen::Skipped(h, oversized)
                }
                frame_fz::Frame::Lost(h) => {
                    assert!(g, "a frame lost without a gap");
                    FrameSeen::Lost(h)
                }
            })
        };
        match ev {
            AppEvent::Data(d) => r.push(d, max, &mut out),
            AppEvent::Gap(n) => {
                *gapped = true;
                // A gap ending inside a payload completes the frame: lost when its payload
                // was kept, else skipped as it would have been anyway.
                r.gap(n, &mut |f| match f {
                    frame_fz::Frame::Lost(h) => seen.push(FrameSeen::Lost(h)),
                    frame_fz::Frame::Skipped(h, false) => seen.push(FrameSeen::Skipped(h, false)),
                    _ => panic!("a gap handed out a frame whose payload it cut: {f:?}"),
                });
            }
            AppEvent::End { .. } => {}
        }
        if !dead {
            if let Some(e) = r.error() {
                assert!(
                    e != frame_fz::FrameError::FramingLost || *gapped,
                    "framing lost without a gap"
                );
                seen.push(FrameSeen::Error(e));
            }
        }
    }
}

/// HTTP/2 frames: a [`frame_fz::FrameReader`] per direction and an
/// [`crate::proto::http::http2::Http2`] on the same script.
///
/// Byte 0: bit 0 the client starts with the connection preface (else with frames, when the
/// server's came first), bit 1 `mid_stream`, bits 2-3 the [`http_limits`] preset. The rest is
/// an application-layer script ([`app_events`]).
///
/// Checked besides "no panic": the frames and the exchanges are the same when every data
/// event is delivered one byte at a time; kept payloads are whole and within the limit; a
/// frame is lost, or the framing, only after a gap; the contract checks of
/// [`check_exchanges`].
pub fn http2_frames(data: &[u8]) {
    use crate::proto::http::http2::Http2;
    use crate::proto::http::ExchangeLog;
    let Some((&cfg, script)) = data.split_first() else {
        return;
    };
    let preface = cfg & 1 != 0;
    let mid_stream = cfg & 2 != 0;
    let limits = http_limits(cfg >> 2);
    let run = |bytewise: bool| {
        let mut frames = FrameLogs::new(preface, limits.max_header_block);
        let mut h2 = Http2::new(preface, mid_stream, &limits);
        let mut log = ExchangeLog::new(limits.clone());
        replay(script, bytewise, |at, dir, ev| {
            frames.event(dir, ev);
            match ev {
                AppEvent::Data(d) => h2.data(dir, d, at, &mut log),
                AppEvent::Gap(n) => h2.gap(dir, n, at, &mut log),
                AppEvent::End { .. } => {}
            }
        });
        let outcome = HttpOutcome {
            exchanges: log.exchanges,
            dropped: log.dropped,
            anomalies: log.anomalies,
            http2: Some(h2.finish()),
            tunnel: None,
        };
        (frames.seen, outcome)
    };
    let (frames, whole) = run(false);
    check_http(&whole, &limits, false);
    let (frames_bytes, bytes) = run(true);
    assert_eq!(
        frames, frames_bytes,
        "frames depend on how the stream was cut (whole events vs byte by byte)"
    );
    assert_eq!(
        whole, bytes,
        "HTTP/2 outcome depends on how the stream was cut (whole events vs byte by byte)"
    );
}

/// Caps of the observer's HPACK table selectable by [`hpack`]'s first byte (bits 1-3).
pub const HPACK_CAPS: [usize; 8] = [0, 32, 64, 100, 256, 1024, 4096, 1 << 16];

/// Ops of an [`hpack`] script.
pub mod hpack_op {
    /// Bits 0-1 of the op. A header block the observer decodes (`[u16 BE len][bytes]`);
    /// 3 is one too.
    pub const BLOCK: u8 = 0;
    /// A header block the observer never saw (lost in a gap, or before the capture): the
    /// references decode it, the observer's table is desynchronised.
    pub const HIDDEN: u8 = 1;
    /// SETTINGS_HEADER_TABLE_SIZE `[u16 BE value]` for all decoders.
    pub const SETTINGS: u8 = 2;
}

type Fields = Vec<Option<(Vec<u8>, Vec<u8>)>>;

fn hpack_decode(d: &mut crate::proto::http::http2::hpack::Decoder, block: &[u8]) -> (Fields, bool) {
    use crate::proto::http::http2::hpack::Field;
    let mut out = Vec::new();
    let ok = d
        .decode(block, &mut |f| {
            out.push(match f {
                Field::Known { name, value } => Some((name.to_vec(), value.to_vec())),
                Field::Unknown => None,
            })
        })
        .is_ok();
    (out, ok)
}

/// HPACK: one observer [`crate::proto::http::http2::hpack::Decoder`] fed several header
/// blocks of one direction, some of which it never sees.
///
/// Byte 0: bit 0 the observer starts mid-stream, bits 1-3 its table cap ([`HPACK_CAPS`]).
/// Then ops `[op]` ([`hpack_op`]) until the input ends.
///
/// Checked besides "no panic", against two decoders that see every block (misdirect's own,
/// not mid-stream and without a cap, and loona-hpack's), while those decode without error:
///
/// - the observer never yields [`Field::Known`](crate::proto::http::http2::hpack::Field)
///   for a field the complete decoder decodes otherwise: what it could not know is unknown,
///   never guessed;
/// - it fails no block the complete decoder decodes, and yields as many fields;
/// - the complete decoder yields no unknown field, and agrees with loona-hpack on every block
///   both decode.
pub fn hpack(data: &[u8]) {
    use crate::proto::http::http2::hpack::{Decoder, DEFAULT_TABLE_SIZE};
    let mut r = Reader(data);
    let cfg = r.u8().unwrap_or(0);
    let cap = HPACK_CAPS
        .get(usize::from(cfg >> 1) % HPACK_CAPS.len())
        .copied()
        .unwrap_or(0);
    let mut observer = Decoder::new(cfg & 1 != 0, cap);
    let mut complete = Decoder::new(false, usize::MAX);
    let mut loona = loona_hpack::Decoder::new();
    loona.set_max_allowed_table_size(DEFAULT_TABLE_SIZE);
    // The complete decoder (and loona-hpack) are the truth until one fails a block.
    let mut truth = true;
    let mut loona_ok = true;
    while let Some(op) = r.u8() {
        let Some(n) = r.u16_be() else { break };
        match op & 3 {
            hpack_op::SETTINGS => {
                observer.set_allowed_size(u32::from(n));
                complete.set_allowed_size(u32::from(n));
                loona.set_max_allowed_table_size(usize::from(n));
                continue;
            }
            hpack_op::HIDDEN => {
                let block = r.take(usize::from(n));
                observer.desynchronise();
                let (fields, ok) = hpack_decode(&mut complete, block);
                if truth && ok && loona_ok {
                    loona_agrees(&mut loona, &mut loona_ok, block, &fields);
                }
                truth &= ok;
            }
            _ => {
                let block = r.take(usize::from(n));
                let (seen, observer_ok) = hpack_decode(&mut observer, block);
                let (fields, ok) = hpack_decode(&mut complete, block);
                if truth {
                    assert!(
                        fields.iter().all(Option::is_some),
                        "a decoder that saw every block yields an unknown field"
                    );
                    if ok {
                        assert!(observer_ok, "the observer fails a block that decodes");
                        assert_eq!(seen.len(), fields.len(), "observer yields other fields");
                    }
                    for (i, (s, f)) in seen.iter().zip(&fields).enumerate() {
                        if s.is_some() {
                            assert_eq!(s, f, "field {i}: the observer guessed");
                        }
                    }
                    if ok && loona_ok {
                        loona_agrees(&mut loona, &mut loona_ok, block, &fields);
                    }
                }
                truth &= ok;
            }
        }
    }
}

/// loona-hpack decodes `block` to the same fields, or fails (it is stricter in places, e.g.
/// a block ending in a size update); after it fails it is no longer compared.
fn loona_agrees(loona: &mut loona_hpack::Decoder<'_>, ok: &mut bool, block: &[u8], ours: &Fields) {
    match loona.decode(block) {
        Ok(theirs) => {
            let theirs: Fields = theirs.into_iter().map(Some).collect();
            assert_eq!(
                ours, &theirs,
                "misdirect and loona-hpack decode differently"
            );
        }
        Err(_) => *ok = false,
    }
}

/// FTP/SMTP: one [`crate::proto::control::Control`] on a script.
///
/// Byte 0: the reply limit is `byte % 8 + 1`. The rest is an application-layer script
/// ([`app_events`]); after STARTTLS / AUTH TLS is accepted, nothing more is fed (the caller
/// switches to TLS).
///
/// Checked besides "no panic": the outcome (replies, anomalies, where TLS starts) is the
/// same when every data event is delivered one byte at a time; no more replies than the
/// limit; reply texts cut at 512 bytes; `starttls` set exactly when TLS started.
pub fn control(data: &[u8]) {
    use crate::proto::control::Control;
    let Some((&cfg, script)) = data.split_first() else {
        return;
    };
    let max = usize::from(cfg % 8) + 1;
    let run = |bytewise: bool| {
        let mut c = Control::new(max);
        let mut offsets = [0u64; 2];
        let mut tls_at = None;
        replay(script, bytewise, |at, dir, ev| {
            if tls_at.is_some() {
                return;
            }
            let Some(off) = offsets.get_mut(slot(dir)) else {
                return;
            };
            match ev {
                AppEvent::Data(d) => {
                    if let Some(n) = c.data(dir, d, at) {
                        assert!(n <= d.len(), "TLS starts past the piece");
                        assert!(c.tls_starts(), "TLS start returned but not recorded");
                        tls_at = Some((dir, *off + n as u64));
                    }
                    *off += d.len() as u64;
                }
                AppEvent::Gap(n) => {
                    c.gap(dir);
                    *off = off.saturating_add(n);
                }
                AppEvent::End { .. } => {}
            }
        });
        let (info, anomalies) = c.finish();
        (info, anomalies, tls_at)
    };
    let whole = run(false);
    let (info, _, tls_at) = &whole;
    assert!(info.replies.len() <= max, "more replies than the limit");
    assert!(
        info.replies_dropped == 0 || info.replies.len() == max,
        "replies dropped while the list had room"
    );
    assert_eq!(
        info.starttls,
        tls_at.is_some(),
        "starttls differs from TLS starting"
    );
    for reply in &info.replies {
        assert!(reply.code <= 999 && reply.lines >= 1, "bad reply {reply:?}");
        assert!(
            reply.text.chars().count() <= 513,
            "reply text over 512 bytes"
        );
        if let Some(c) = &reply.command {
            assert!(
                !c.is_empty() && c.len() <= 12 && c.bytes().all(|b| b.is_ascii_uppercase()),
                "command verb {c:?}"
            );
        }
    }
    let bytes = run(true);
    assert_eq!(
        whole, bytes,
        "FTP/SMTP outcome depends on how the stream was cut (whole events vs byte by byte)"
    );
}

/// A whole cleartext connection through [`crate::proto::ConnProto`]: detection, HTTP/1,
/// HTTP/2, h2c upgrade, FTP/SMTP, and CONNECT tunnels (whose TLS is decrypted with the key
/// log carried by the input).
///
/// Byte 0: bit 0 `mid_stream`, bits 1-2 the [`http_limits`] preset. Then
/// `[u16 BE key-log length][key-log text]`, then an application-layer script
/// ([`app_events`]).
///
/// Checked besides "no panic": no plaintext is delivered in a direction after it was reported
/// lost; the summary's protocol agrees with what it holds (exchanges only for HTTP, replies
/// only for FTP/SMTP); every list is within its limit ([`check_exchanges`]); tunnels nest at
/// most as deep as followed.
pub fn app_stream(data: &[u8]) {
    use crate::proto::tls::keylog::KeyLog;
    use crate::proto::tls::session::AppData;
    let mut r = Reader(data);
    let cfg = r.u8().unwrap_or(0);
    let limits = http_limits(cfg >> 1);
    let mut keylog = KeyLog::default();
    let klen = r.u16_be().unwrap_or(0);
    keylog.add(r.take(usize::from(klen)));
    let mut proto = crate::proto::ConnProto::new(cfg & 1 != 0, limits.clone());
    let mut lost = [false; 2];
    let mut carried = false;
    let mut tap = |d: Direction, a: AppData<'_>| {
        let Some(l) = lost.get_mut(slot(d)) else {
            return;
        };
        match a {
            AppData::Data(_) => assert!(!*l, "plaintext delivered after it was reported lost"),
            AppData::Lost => *l = true,
        }
    };
    app_events(r.0, |i, dir, ev| {
        let at = event_time(i);
        let ev = match ev {
            AppEvent::Data(d) => {
                carried = true;
                StreamEvent::Data(d)
            }
            AppEvent::Gap(n) => StreamEvent::Gap(n),
            AppEvent::End { rst: false } => StreamEvent::Fin,
            AppEvent::End { rst: true } => StreamEvent::Rst,
        };
        proto.event(dir, ev, at, &keylog, &mut tap);
    });
    let summary = proto.finish(carried);
    check_proto(&summary, &limits, 0);
}

fn check_proto(p: &crate::proto::ProtoSummary, limits: &HttpLimits, depth: u8) {
    check_app(&p.app, limits, depth);
    if let Some(b) = &p.before_tls {
        check_app(b, limits, depth);
    }
}

fn check_app(s: &crate::proto::AppSummary, limits: &HttpLimits, depth: u8) {
    use crate::proto::AppProtocol as P;
    check_exchanges(&s.exchanges, s.exchanges_dropped, limits);
    if !s.exchanges.is_empty() || s.http2.is_some() {
        assert!(
            matches!(s.protocol, Some(P::Http1 | P::Http2)),
            "exchanges in a {:?} connection",
            s.protocol
        );
    }
    if s.http2.is_some() {
        assert_eq!(
            s.protocol,
            Some(P::Http2),
            "HTTP/2 facts in another protocol"
        );
    }
    if let Some(info) = &s.http2 {
        check_http2_info(info, limits);
    }
    if let Some(c) = &s.control {
        assert!(
            matches!(s.protocol, Some(P::Ftp | P::Smtp | P::FtpOrSmtp)),
            "replies in a {:?} connection",
            s.protocol
        );
        assert!(
            c.replies.len() <= limits.max_exchanges,
            "more replies than the limit"
        );
    }
    if let Some(t) = &s.tunnel {
        assert!(depth < 3, "tunnels nested deeper than followed");
        check_proto(t, limits, depth + 1);
    }
}
