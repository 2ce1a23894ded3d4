//! Test support: synthetic packets and captures, and a sink that records reassembled streams.
#![allow(dead_code)]

pub mod encap;
pub mod tshark;

use etherparse::{IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, TcpHeader};
use misdirect::analysis::ConnectionRecord;
use misdirect::capture::write::{PcapNgWriter, PcapWriter};
use misdirect::capture::{Capture, FileSource};
use misdirect::flow::{ConnId, Connection, Direction, EventMeta, StreamEvent, StreamSink};
use misdirect::pipeline::{self, RunStats};
use misdirect::{Limits, Timestamp};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_NULL: u32 = 0;
pub const LINKTYPE_RAW: u32 = 101;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// How a synthetic IP packet is framed.
#[derive(Clone, Copy, Debug)]
pub enum Link {
    Ethernet,
    Vlan(u16),
    QinQ(u16, u16),
    Raw,
    Null,
    Sll,
    Sll2,
}

impl Link {
    pub fn linktype(self) -> u32 {
        match self {
            Link::Ethernet | Link::Vlan(_) | Link::QinQ(..) => LINKTYPE_ETHERNET,
            Link::Raw => LINKTYPE_RAW,
            Link::Null => LINKTYPE_NULL,
            Link::Sll => LINKTYPE_LINUX_SLL,
            Link::Sll2 => LINKTYPE_LINUX_SLL2,
        }
    }

    /// Frames an IP packet.
    pub fn frame(self, ip: &[u8]) -> Vec<u8> {
        let ethertype: u16 = if ip.first().map(|b| b >> 4) == Some(6) {
            0x86dd
        } else {
            0x0800
        };
        let mut f = Vec::new();
        match self {
            Link::Ethernet | Link::Vlan(_) | Link::QinQ(..) => {
                f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
                match self {
                    Link::Vlan(id) => {
                        f.extend_from_slice(&0x8100u16.to_be_bytes());
                        f.extend_from_slice(&id.to_be_bytes());
                    }
                    Link::QinQ(outer, inner) => {
                        f.extend_from_slice(&0x88a8u16.to_be_bytes());
                        f.extend_from_slice(&outer.to_be_bytes());
                        f.extend_from_slice(&0x8100u16.to_be_bytes());
                        f.extend_from_slice(&inner.to_be_bytes());
                    }
                    _ => {}
                }
                f.extend_from_slice(&ethertype.to_be_bytes());
            }
            Link::Raw => {}
            Link::Null => {
                let family: u32 = if ethertype == 0x86dd { 30 } else { 2 };
                f.extend_from_slice(&family.to_le_bytes());
            }
            Link::Sll => {
                f.extend_from_slice(&[0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
                f.extend_from_slice(&ethertype.to_be_bytes());
            }
            Link::Sll2 => {
                f.extend_from_slice(&ethertype.to_be_bytes());
                f.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            }
        }
        f.extend_from_slice(ip);
        f
    }
}

/// TCP flags of a synthetic segment, written like tcpdump prints them: "S", "SA", "A", "PA", "FA", "R".
pub fn tcp_packet(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: Option<u32>,
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut tcp = TcpHeader::new(src.port(), dst.port(), seq, 65535);
    tcp.syn = flags.contains('S');
    tcp.fin = flags.contains('F');
    tcp.rst = flags.contains('R');
    tcp.psh = flags.contains('P');
    if let Some(a) = ack {
        tcp.ack = true;
        tcp.acknowledgment_number = a;
    }
    ip_packet(src.ip(), dst.ip(), IpNumber::TCP, |ip_src, ip_dst, out| {
        match (ip_src, ip_dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let ip = Ipv4Header::new(
                    (tcp.header_len() + payload.len()) as u16,
                    64,
                    IpNumber::TCP,
                    s.octets(),
                    d.octets(),
                )
                .unwrap();
                tcp.checksum = tcp.calc_checksum_ipv4(&ip, payload).unwrap();
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                tcp.checksum = tcp
                    .calc_checksum_ipv6_raw(s.octets(), d.octets(), payload)
                    .unwrap();
            }
            _ => panic!("mixed address families"),
        }
        tcp.write(out).unwrap();
        out.extend_from_slice(payload);
    })
}

/// An IP packet around a transport header and payload written by `body`.
fn ip_packet(
    src: IpAddr,
    dst: IpAddr,
    proto: IpNumber,
    body: impl FnOnce(IpAddr, IpAddr, &mut Vec<u8>),
) -> Vec<u8> {
    let mut l4 = Vec::new();
    body(src, dst, &mut l4);
    let mut out = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut ip =
                Ipv4Header::new(l4.len() as u16, 64, proto, s.octets(), d.octets()).unwrap();
            ip.header_checksum = ip.calc_header_checksum();
            ip.write(&mut out).unwrap();
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let ip = Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::ZERO,
                payload_length: l4.len() as u16,
                next_header: proto,
                hop_limit: 64,
                source: s.octets(),
                destination: d.octets(),
            };
            ip.write(&mut out).unwrap();
        }
        _ => panic!("mixed address families"),
    }
    out.extend_from_slice(&l4);
    out
}

/// Splits an IPv4 packet into fragments whose payloads are `chunk` bytes (a multiple of 8).
pub fn fragment_ipv4(packet: &[u8], chunk: usize, id: u16) -> Vec<Vec<u8>> {
    assert_eq!(chunk % 8, 0);
    let (hdr, payload) = Ipv4Header::from_slice(packet).unwrap();
    let mut frags = Vec::new();
    for (i, part) in payload.chunks(chunk).enumerate() {
        let mut h = hdr.clone();
        h.identification = id;
        h.more_fragments = (i + 1) * chunk < payload.len();
        h.fragment_offset = etherparse::IpFragOffset::try_new((i * chunk / 8) as u16).unwrap();
        h.set_payload_len(part.len()).unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut f = Vec::new();
        h.write(&mut f).unwrap();
        f.extend_from_slice(part);
        frags.push(f);
    }
    frags
}

/// A captured frame for a synthetic capture.
#[derive(Clone, Debug)]
pub struct Frame {
    pub ts: Timestamp,
    pub data: Vec<u8>,
    pub orig_len: u32,
}

impl Frame {
    pub fn new(ts_us: i64, data: Vec<u8>) -> Self {
        let orig_len = data.len() as u32;
        Frame {
            ts: Timestamp(ts_us * 1000),
            data,
            orig_len,
        }
    }
}

pub fn pcap(linktype: u32, frames: &[Frame]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), linktype, 262_144, true).unwrap();
    for f in frames {
        w.write_packet(f.ts, &f.data, f.orig_len).unwrap();
    }
    w.into_inner()
}

pub fn pcapng(linktype: u16, frames: &[Frame]) -> Vec<u8> {
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    let id = w.add_interface(linktype, 262_144, 9).unwrap();
    for f in frames {
        w.write_packet(id, f.ts, &f.data, f.orig_len).unwrap();
    }
    w.into_inner()
}

/// A scripted TCP conversation producing frames with consistent sequence numbers.
pub struct Conversation {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub link: Link,
    pub cseq: u32,
    pub sseq: u32,
    pub ts_us: i64,
    pub frames: Vec<Frame>,
}

impl Conversation {
    pub fn new(client: &str, server: &str, link: Link, cisn: u32, sisn: u32) -> Self {
        Conversation {
            client: client.parse().unwrap(),
            server: server.parse().unwrap(),
            link,
            cseq: cisn,
            sseq: sisn,
            ts_us: 1_700_000_000_000_000,
            frames: Vec::new(),
        }
    }

    fn push(&mut self, from_client: bool, seq: u32, flags: &str, payload: &[u8]) -> Frame {
        let (src, dst, ack) = if from_client {
            (self.client, self.server, self.sseq)
        } else {
            (self.server, self.client, self.cseq)
        };
        let ack = if flags.contains('S') && !flags.contains('A') {
            None
        } else {
            Some(ack)
        };
        self.ts_us += 100;
        let f = Frame::new(
            self.ts_us,
            self.link
                .frame(&tcp_packet(src, dst, seq, ack, flags, payload)),
        );
        self.frames.push(f.clone());
        f
    }

    pub fn handshake(&mut self) {
        self.push(true, self.cseq, "S", b"");
        self.cseq = self.cseq.wrapping_add(1);
        self.push(false, self.sseq, "SA", b"");
        self.sseq = self.sseq.wrapping_add(1);
        self.push(true, self.cseq, "A", b"");
    }

    /// Client sends `data` in segments of `mss` bytes.
    pub fn client_sends(&mut self, data: &[u8], mss: usize) {
        for part in data.chunks(mss) {
            self.push(true, self.cseq, "PA", part);
            self.cseq = self.cseq.wrapping_add(part.len() as u32);
        }
    }

    pub fn server_sends(&mut self, data: &[u8], mss: usize) {
        for part in data.chunks(mss) {
            self.push(false, self.sseq, "PA", part);
            self.sseq = self.sseq.wrapping_add(part.len() as u32);
        }
    }

    /// A segment from the client at an explicit sequence number (for retransmissions and
    /// overlaps); does not move the client's sequence number.
    pub fn client_raw(&mut self, seq: u32, flags: &str, payload: &[u8]) -> Frame {
        self.push(true, seq, flags, payload)
    }

    pub fn server_raw(&mut self, seq: u32, flags: &str, payload: &[u8]) -> Frame {
        self.push(false, seq, flags, payload)
    }

    /// Both sides close with FIN.
    pub fn close(&mut self) {
        self.push(true, self.cseq, "FA", b"");
        self.cseq = self.cseq.wrapping_add(1);
        self.push(false, self.sseq, "FA", b"");
        self.sseq = self.sseq.wrapping_add(1);
        self.push(true, self.cseq, "A", b"");
    }

    pub fn ack_from_client(&mut self) {
        self.push(true, self.cseq, "A", b"");
    }

    pub fn ack_from_server(&mut self) {
        self.push(false, self.sseq, "A", b"");
    }

    pub fn pcap(&self) -> Vec<u8> {
        pcap(self.link.linktype(), &self.frames)
    }
}

/// Reassembled content of one connection, as the sink saw it.
#[derive(Clone, Debug, Default)]
pub struct Streams {
    pub client: Option<SocketAddr>,
    pub server: Option<SocketAddr>,
    /// Data bytes per direction (gaps are not filled in).
    pub c2s: Vec<u8>,
    pub s2c: Vec<u8>,
    /// Every event per direction, data lengths and gaps, in order.
    pub c2s_events: Vec<Event>,
    pub s2c_events: Vec<Event>,
    pub record: Option<ConnectionRecord>,
    pub closed: u32,
    /// Index of the packet that caused each gap, in order.
    pub gap_packets: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Data(usize),
    Gap(u64),
    Fin,
    Rst,
}

/// Records everything the flow table emits, and checks the sink contract on the way.
#[derive(Default)]
pub struct Collector {
    pub conns: BTreeMap<u64, Streams>,
}

impl StreamSink for Collector {
    fn open(&mut self, conn: &Connection, _at: EventMeta) {
        let s = self.conns.entry(conn.id.0).or_default();
        assert!(s.client.is_none(), "connection {} opened twice", conn.id.0);
        s.client = Some(conn.client());
        s.server = Some(conn.server());
    }

    fn stream(
        &mut self,
        _: &mut misdirect::flow::SinkState,
        id: ConnId,
        dir: Direction,
        ev: StreamEvent<'_>,
        at: EventMeta,
    ) {
        let s = self
            .conns
            .get_mut(&id.0)
            .expect("event for a connection never opened");
        assert_eq!(s.closed, 0, "event after close");
        let (bytes, events) = match dir {
            Direction::ClientToServer => (&mut s.c2s, &mut s.c2s_events),
            Direction::ServerToClient => (&mut s.s2c, &mut s.s2c_events),
        };
        assert!(
            !matches!(events.last(), Some(Event::Fin | Event::Rst)),
            "event after FIN/RST"
        );
        let e = match ev {
            StreamEvent::Data(d) => {
                assert!(!d.is_empty(), "empty data event");
                bytes.extend_from_slice(d);
                Event::Data(d.len())
            }
            StreamEvent::Gap(n) => {
                assert!(n > 0, "empty gap");
                s.gap_packets.push(at.packet);
                Event::Gap(n)
            }
            StreamEvent::Fin => Event::Fin,
            StreamEvent::Rst => Event::Rst,
        };
        events.push(e);
    }

    fn close(&mut self, conn: Connection, _at: EventMeta) {
        let s = self
            .conns
            .get_mut(&conn.id.0)
            .expect("close of a connection never opened");
        s.closed += 1;
        s.record = Some(ConnectionRecord::from_connection(&conn));
    }
}

impl Streams {
    pub fn record(&self) -> &ConnectionRecord {
        self.record.as_ref().expect("connection never closed")
    }

    pub fn gaps(&self, dir: Direction) -> Vec<u64> {
        let ev = match dir {
            Direction::ClientToServer => &self.c2s_events,
            Direction::ServerToClient => &self.s2c_events,
        };
        ev.iter()
            .filter_map(|e| {
                if let Event::Gap(n) = e {
                    Some(*n)
                } else {
                    None
                }
            })
            .collect()
    }
}

/// Runs capture files (as bytes) through the pipeline with a [`Collector`].
pub fn run_files(files: Vec<Vec<u8>>, limits: &Limits) -> (Collector, RunStats) {
    let sources = files
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            FileSource::from_reader(
                format!("input{i}"),
                std::io::Cursor::new(f),
                limits.max_capture_block,
            )
            .unwrap()
        })
        .collect();
    let mut capture = Capture::from_sources(sources).unwrap();
    let mut sink = Collector::default();
    let stats = pipeline::run(&mut capture, limits, &mut sink, &mut |_| {});
    for (id, s) in &sink.conns {
        assert_eq!(s.closed, 1, "connection {id} closed {} times", s.closed);
    }
    (sink, stats)
}

pub fn run_one(file: Vec<u8>) -> (Collector, RunStats) {
    run_files(vec![file], &Limits::default())
}

/// A packet read from a capture file, to be rearranged and written again.
#[derive(Clone, Debug)]
pub struct Packet {
    pub ts: Timestamp,
    pub data: Vec<u8>,
    pub orig_len: u32,
    pub link: misdirect::capture::LinkType,
}

/// Every packet of a capture file, in order.
pub fn read_packets(path: &std::path::Path) -> Vec<Packet> {
    let names = [misdirect::capture::InputName::Path(path.into())];
    let mut cap = Capture::open(&names, &Limits::default()).unwrap();
    let mut out = Vec::new();
    while let Some(p) = cap.next_packet() {
        out.push(Packet {
            ts: p.ts,
            data: p.data.to_vec(),
            orig_len: p.orig_len,
            link: p.link,
        });
    }
    out
}

/// The packets as a nanosecond pcap (all on the first packet's link type).
pub fn pcap_of(pkts: &[Packet]) -> Vec<u8> {
    let link = pkts.first().map_or(1, |p| p.link.linktype() as u32);
    let mut w = PcapWriter::new(Vec::new(), link, 262_144, true).unwrap();
    for p in pkts {
        w.write_packet(p.ts, &p.data, p.orig_len).unwrap();
    }
    w.into_inner()
}

/// Writes the packets to a pcap in the temporary directory and returns its path.
pub fn temp_pcap(name: &str, pkts: &[Packet]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("misdirect-{name}-{}.pcap", std::process::id()));
    std::fs::write(&path, pcap_of(pkts)).unwrap();
    path
}

/// `samples/` of the repository.
pub fn samples_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// Every capture in `samples/`, sorted by name.
pub fn sample_captures() -> Vec<std::path::PathBuf> {
    let mut v: Vec<std::path::PathBuf> = std::fs::read_dir(samples_dir())
        .expect("samples/ directory")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no samples found");
    v
}

/// The full report of a capture file, decrypted with the key log beside it (`x.keys` for
/// `x.pcap`) when there is one.
pub fn analyze_path(file: &std::path::Path) -> misdirect::analysis::Report {
    analyze_path_with(file, &Limits::default(), 1)
}

/// [`analyze_path`] with `limits`, on `threads` threads.
pub fn analyze_path_with(
    file: &std::path::Path,
    limits: &Limits,
    threads: usize,
) -> misdirect::analysis::Report {
    use misdirect::capture::{Capture, FileSource, InputName};
    let mut keylog = misdirect::proto::tls::keylog::KeyLog::default();
    let keys = file.with_extension("keys");
    if keys.exists() {
        keylog.add(&std::fs::read(keys).unwrap());
    }
    let src = FileSource::open(&InputName::Path(file.to_path_buf()), 1 << 24).unwrap();
    let cap = Capture::from_sources(vec![src]).unwrap();
    misdirect::pipeline::analyze_capture(cap, limits, &keylog, threads, &mut |_| {})
}

/// `misdirect analyze ARGS... -f json` through the binary: the report, after checking that it
/// exited 0.
pub fn analyze_cli<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_misdirect"))
        .arg("analyze")
        .args(args)
        .args(["-f", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// An HTTP/2 frame: 9-byte header (RFC 9113 §4.1) and payload.
pub fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}
