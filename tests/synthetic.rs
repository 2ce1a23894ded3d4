//! Synthetic captures for what real traffic rarely shows: each test builds a capture in
//! memory, runs the whole pipeline and checks the reassembled streams.

mod common;

use common::*;
use misdirect::anomaly::Anomaly;
use misdirect::flow::{Close, Direction, Orientation};
use misdirect::Limits;

fn body(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Handshake, a request in 3 segments, a response in 5, FIN both ways.
fn simple(
    link: Link,
    client: &str,
    server: &str,
    cisn: u32,
    sisn: u32,
) -> (Conversation, Vec<u8>, Vec<u8>) {
    let mut c = Conversation::new(client, server, link, cisn, sisn);
    let req = body(3000, 1);
    let resp = body(5000, 2);
    c.handshake();
    c.client_sends(&req, 1000);
    c.ack_from_server();
    c.server_sends(&resp, 1000);
    c.ack_from_client();
    c.close();
    (c, req, resp)
}

fn only(sink: &Collector) -> &Streams {
    assert_eq!(
        sink.conns.len(),
        1,
        "expected one connection: {:?}",
        sink.conns.keys()
    );
    sink.conns.values().next().unwrap()
}

#[test]
fn every_link_type_and_both_ip_versions() {
    let cases = [
        (Link::Ethernet, "10.0.0.1:40000", "10.0.0.2:443"),
        (Link::Vlan(100), "10.0.0.1:40000", "10.0.0.2:443"),
        (Link::QinQ(200, 300), "10.0.0.1:40000", "10.0.0.2:443"),
        (Link::Raw, "10.0.0.1:40000", "10.0.0.2:443"),
        (Link::Null, "10.0.0.1:40000", "10.0.0.2:443"),
        (Link::Sll, "10.0.0.1:40000", "10.0.0.2:443"),
        (Link::Sll2, "10.0.0.1:40000", "10.0.0.2:443"),
        (Link::Ethernet, "[2001:db8::1]:40000", "[2001:db8::2]:443"),
        (Link::QinQ(1, 2), "[2001:db8::1]:40000", "[2001:db8::2]:443"),
        (Link::Null, "[::1]:40000", "[::1]:443"),
        (Link::Sll2, "[::1]:40000", "[::1]:443"),
    ];
    for (link, client, server) in cases {
        let (c, req, resp) = simple(link, client, server, 1000, 5000);
        let (sink, stats) = run_one(c.pcap());
        let s = only(&sink);
        assert_eq!(s.c2s, req, "{link:?} {client}");
        assert_eq!(s.s2c, resp, "{link:?} {client}");
        let r = s.record();
        assert_eq!(r.client.to_string(), client);
        assert_eq!(r.server.to_string(), server);
        assert_eq!(r.orientation, Orientation::Syn);
        assert_eq!(r.close, Close::Fin);
        assert_eq!(s.c2s_events.last(), Some(&Event::Fin));
        assert!(
            stats.anomalies.is_empty(),
            "{link:?}: {:?}",
            stats.anomalies
        );
    }
}

#[test]
fn pcapng_with_nanosecond_interfaces() {
    let (c, req, resp) = simple(Link::Ethernet, "10.0.0.1:40000", "10.0.0.2:80", 7, 9);
    let (sink, stats) = run_one(pcapng(1, &c.frames));
    assert_eq!(only(&sink).c2s, req);
    assert_eq!(only(&sink).s2c, resp);
    assert_eq!(stats.first_ts, Some(c.frames[0].ts));
}

#[test]
fn sequence_numbers_wrap_around() {
    for (cisn, sisn) in [
        (u32::MAX - 1500, u32::MAX),
        (u32::MAX, u32::MAX - 2),
        (u32::MAX - 4999, 1),
    ] {
        let (c, req, resp) = simple(Link::Ethernet, "10.0.0.1:40000", "10.0.0.2:443", cisn, sisn);
        let (sink, stats) = run_one(c.pcap());
        let s = only(&sink);
        assert_eq!(s.c2s, req, "isn {cisn}");
        assert_eq!(s.s2c, resp, "isn {sisn}");
        assert!(s.gaps(Direction::ClientToServer).is_empty());
        assert!(stats.anomalies.is_empty());
    }
}

#[test]
fn out_of_order_duplicated_and_overlapping_segments() {
    let mut c = Conversation::new("10.0.0.1:40000", "10.0.0.2:443", Link::Ethernet, 100, 900);
    c.handshake();
    let req = body(4000, 3);
    let base = c.cseq;
    // Segments 3, 1 (dup), 4, 2 and an overlapping retransmission of bytes 500..2500.
    let seg = |i: usize| &req[i * 1000..(i + 1) * 1000];
    c.client_raw(base.wrapping_add(2000), "PA", seg(2));
    c.client_raw(base, "PA", seg(0));
    c.client_raw(base, "PA", seg(0));
    c.client_raw(base.wrapping_add(3000), "PA", seg(3));
    c.client_raw(base.wrapping_add(500), "PA", &req[500..2500]);
    c.client_raw(base.wrapping_add(1000), "PA", seg(1));
    c.cseq = base.wrapping_add(4000);
    c.close();
    let (sink, stats) = run_one(c.pcap());
    let s = only(&sink);
    assert_eq!(s.c2s, req);
    assert!(s.gaps(Direction::ClientToServer).is_empty());
    let r = s.record();
    assert_eq!(r.client_to_server.out_of_order_segments, 2);
    // The duplicate of segment 0 (1000), the parts of the 500..2500 copy already held
    // (500..1000 delivered, 2000..2500 buffered), and segment 1, by then delivered (1000).
    assert_eq!(
        r.client_to_server.retransmitted_bytes,
        1000 + 500 + 500 + 1000
    );
    assert!(stats.anomalies.is_empty(), "{:?}", stats.anomalies);
}

#[test]
fn overlapping_bytes_that_differ_keep_the_first_copy() {
    let mut c = Conversation::new("10.0.0.1:40000", "10.0.0.2:443", Link::Ethernet, 100, 900);
    c.handshake();
    let base = c.cseq;
    c.client_raw(base.wrapping_add(4), "PA", b"EFGH");
    c.client_raw(base.wrapping_add(4), "PA", b"XXXX");
    c.client_raw(base, "PA", b"ABCD");
    c.cseq = base.wrapping_add(8);
    c.close();
    let (sink, stats) = run_one(c.pcap());
    assert_eq!(only(&sink).c2s, b"ABCDEFGH");
    assert_eq!(stats.anomalies.get(Anomaly::TcpOverlapMismatch), 1);
}

#[test]
fn ipv4_fragments_in_any_order() {
    let client = "10.0.0.1:40000".parse().unwrap();
    let server = "10.0.0.2:443".parse().unwrap();
    let payload = body(3000, 4);
    let syn = tcp_packet(client, server, 10, None, "S", b"");
    let big = tcp_packet(client, server, 11, Some(0), "PA", &payload);
    let mut frags = fragment_ipv4(&big, 1480, 77);
    assert_eq!(frags.len(), 3);
    frags.swap(0, 2);
    let mut frames = vec![Frame::new(1, Link::Ethernet.frame(&syn))];
    for (i, f) in frags.into_iter().enumerate() {
        frames.push(Frame::new(2 + i as i64, Link::Ethernet.frame(&f)));
    }
    let (sink, stats) = run_one(pcap(LINKTYPE_ETHERNET, &frames));
    assert_eq!(only(&sink).c2s, payload);
    assert_eq!(stats.decode.ip_fragments, 3);
    assert_eq!(stats.decode.ip_datagrams_reassembled, 1);
}

#[test]
fn incomplete_fragments_are_reported_not_kept() {
    let client = "10.0.0.1:40000".parse().unwrap();
    let server = "10.0.0.2:443".parse().unwrap();
    let big = tcp_packet(client, server, 11, Some(0), "PA", &body(3000, 4));
    let frags = fragment_ipv4(&big, 1480, 5);
    let frames = vec![Frame::new(1, Link::Ethernet.frame(&frags[0]))];
    let (sink, stats) = run_one(pcap(LINKTYPE_ETHERNET, &frames));
    assert!(sink.conns.is_empty());
    assert_eq!(stats.anomalies.get(Anomaly::IpFragmentTimeout), 1);
}

#[test]
fn lost_segment_becomes_a_gap_and_data_continues() {
    let mut c = Conversation::new("10.0.0.1:40000", "10.0.0.2:443", Link::Ethernet, 100, 900);
    c.handshake();
    let resp = body(5000, 5);
    c.server_sends(&resp, 1000);
    c.ack_from_client();
    c.close();
    // Drop the server's second data segment (frames: S, SA, A, then 5 data segments).
    c.frames.remove(4);
    let (sink, _) = run_one(c.pcap());
    let s = only(&sink);
    assert_eq!(s.gaps(Direction::ServerToClient), vec![1000]);
    let mut expected = resp[..1000].to_vec();
    expected.extend_from_slice(&resp[2000..]);
    assert_eq!(s.s2c, expected);
    let r = s.record();
    assert_eq!(r.server_to_client.gap_bytes, 1000);
    assert_eq!(r.close, Close::Fin);
}

#[test]
fn lost_tail_is_a_gap_at_close() {
    let mut c = Conversation::new("10.0.0.1:40000", "10.0.0.2:443", Link::Ethernet, 100, 900);
    c.handshake();
    c.server_sends(&body(2000, 6), 1000);
    c.ack_from_client();
    c.frames.remove(4); // the last data segment; the client's ACK covers it
    let (sink, _) = run_one(c.pcap());
    let s = only(&sink);
    assert_eq!(s.gaps(Direction::ServerToClient), vec![1000]);
    assert_eq!(s.record().close, Close::Open);
}

#[test]
fn capture_starting_mid_connection() {
    let mut c = Conversation::new("10.0.0.1:51000", "10.0.0.2:8443", Link::Ethernet, 100, 900);
    c.handshake();
    c.client_sends(b"first request", 100);
    let skip = c.frames.len();
    c.client_sends(b"GET / HTTP/1.1\r\n\r\n", 100);
    c.server_sends(b"HTTP/1.1 200 OK\r\n\r\n", 100);
    c.close();
    c.frames.drain(..skip);
    let (sink, _) = run_one(c.pcap());
    let s = only(&sink);
    assert_eq!(s.c2s, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(s.s2c, b"HTTP/1.1 200 OK\r\n\r\n");
    let r = s.record();
    assert!(r.mid_stream);
    assert_eq!(r.orientation, Orientation::Ports);
    assert_eq!(r.client.to_string(), "10.0.0.1:51000");
}

#[test]
fn mid_connection_first_packet_from_server_is_oriented_by_ports() {
    let mut c = Conversation::new("10.0.0.1:51000", "10.0.0.2:443", Link::Ethernet, 100, 900);
    c.server_sends(b"response", 100);
    c.client_sends(b"next", 100);
    let (sink, _) = run_one(c.pcap());
    let r = only(&sink).record();
    assert_eq!(r.server.to_string(), "10.0.0.2:443");
    assert_eq!(only(&sink).s2c, b"response");
}

#[test]
fn reused_five_tuple_starts_a_new_connection() {
    let (mut a, req_a, _) = simple(Link::Ethernet, "10.0.0.1:40000", "10.0.0.2:80", 1000, 5000);
    let (b, req_b, _) = simple(Link::Ethernet, "10.0.0.1:40000", "10.0.0.2:80", 777_777, 3);
    let mut ts = a.ts_us;
    for mut f in b.frames {
        ts += 10;
        f.ts = misdirect::Timestamp(ts * 1000);
        a.frames.push(f);
    }
    let (sink, _) = run_one(a.pcap());
    assert_eq!(sink.conns.len(), 2);
    let v: Vec<_> = sink.conns.values().collect();
    assert_eq!(v[0].c2s, req_a);
    assert_eq!(v[1].c2s, req_b);
    assert_eq!(v[0].record().close, Close::Fin);
}

/// A connection that ended (FIN both ways, both acknowledged) is finished once
/// `close_linger_ns` of capture time passed without a packet of it: a packet later than that
/// starts a new connection, seen from its middle; one within it is the same connection's.
#[test]
fn an_ended_connection_waits_the_linger_for_late_packets() {
    for (late_s, connections) in [(3, 1), (10, 2)] {
        let mut c = Conversation::new("10.0.0.1:40000", "10.0.0.2:80", Link::Ethernet, 10, 20);
        c.handshake();
        c.client_sends(b"hello", 10);
        c.server_sends(b"world", 10);
        c.close();
        c.ts_us += late_s * 1_000_000;
        c.ack_from_client();
        let (sink, stats) = run_one(c.pcap());
        assert_eq!(sink.conns.len(), connections, "late by {late_s} s");
        assert_eq!(stats.connections, connections as u64);
        let v: Vec<_> = sink.conns.values().collect();
        assert_eq!(
            (&v[0].c2s[..], v[0].record().close),
            (&b"hello"[..], Close::Fin)
        );
        if let Some(ghost) = v.get(1) {
            assert!(ghost.record().mid_stream && ghost.c2s.is_empty());
        }
    }
}

#[test]
fn syn_retransmission_is_the_same_connection() {
    let mut c = Conversation::new("10.0.0.1:40000", "10.0.0.2:80", Link::Ethernet, 10, 20);
    c.client_raw(10, "S", b"");
    c.handshake();
    c.client_sends(b"hello", 10);
    let (sink, _) = run_one(c.pcap());
    assert_eq!(only(&sink).c2s, b"hello");
}

#[test]
fn reset_closes_the_connection() {
    let mut c = Conversation::new("10.0.0.1:40000", "10.0.0.2:80", Link::Ethernet, 10, 20);
    c.handshake();
    c.client_sends(b"hello", 10);
    let seq = c.sseq;
    c.server_raw(seq, "R", b"");
    let (sink, _) = run_one(c.pcap());
    let s = only(&sink);
    assert_eq!(s.record().close, Close::ResetByServer);
    assert_eq!(s.s2c_events.last(), Some(&Event::Rst));
}

#[test]
fn keepalives_and_zero_window_probes_are_not_data() {
    let mut c = Conversation::new("10.0.0.1:40000", "10.0.0.2:80", Link::Ethernet, 10, 20);
    c.handshake();
    c.client_sends(b"hello", 10);
    let seq = c.cseq;
    c.client_raw(seq.wrapping_sub(1), "A", b"\0");
    c.client_raw(seq.wrapping_sub(1), "A", b"");
    c.client_sends(b" world", 10);
    c.close();
    let (sink, stats) = run_one(c.pcap());
    assert_eq!(only(&sink).c2s, b"hello world");
    assert_eq!(only(&sink).record().client_to_server.keepalives, 2);
    assert!(stats.anomalies.is_empty());
}

#[test]
fn snaplen_cut_payload_becomes_a_gap() {
    let mut c = Conversation::new("10.0.0.1:40000", "10.0.0.2:80", Link::Ethernet, 10, 20);
    c.handshake();
    c.client_sends(&body(1000, 7), 1000);
    c.client_sends(b"tail", 100);
    c.close();
    // Cut the 1000-byte segment to 54 + 100 bytes captured.
    let f = &mut c.frames[3];
    f.orig_len = f.data.len() as u32;
    f.data.truncate(14 + 20 + 20 + 100);
    let (sink, stats) = run_one(c.pcap());
    let s = only(&sink);
    assert_eq!(s.gaps(Direction::ClientToServer), vec![900]);
    assert_eq!(&s.c2s[..100], &body(1000, 7)[..100]);
    assert_eq!(&s.c2s[100..], b"tail");
    assert_eq!(stats.anomalies.get(Anomaly::SnaplenTruncated), 1);
}

#[test]
fn rotated_files_merge_into_one_connection() {
    let (c, req, resp) = simple(Link::Ethernet, "10.0.0.1:40000", "10.0.0.2:80", 1, 2);
    let (first, second) = c.frames.split_at(6);
    // Given in the "wrong" order on the command line: the merge is by time.
    let files = vec![pcap(LINKTYPE_ETHERNET, second), pcapng(1, first)];
    let (sink, _) = run_files(files, &Limits::default());
    assert_eq!(only(&sink).c2s, req);
    assert_eq!(only(&sink).s2c, resp);
}

#[test]
fn full_connection_table_evicts_the_idlest() {
    let mut frames = Vec::new();
    for i in 0..3u16 {
        let (c, _, _) = simple(
            Link::Ethernet,
            &format!("10.0.0.1:{}", 40000 + i),
            "10.0.0.2:80",
            1,
            2,
        );
        frames.extend(c.frames.into_iter().map(|mut f| {
            f.ts = misdirect::Timestamp(f.ts.0 + i64::from(i) * 1_000_000_000);
            f
        }));
    }
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let (sink, stats) = run_files(vec![pcap(LINKTYPE_ETHERNET, &frames)], &limits);
    assert_eq!(sink.conns.len(), 3);
    assert_eq!(stats.evicted, 1);
    assert_eq!(stats.anomalies.get(Anomaly::FlowTableLimit), 1);
}

#[test]
fn reassembly_limit_declares_the_hole_lost() {
    let mut c = Conversation::new("10.0.0.1:40000", "10.0.0.2:80", Link::Ethernet, 10, 20);
    c.handshake();
    let data = body(10_000, 8);
    c.client_sends(&data, 1000);
    c.close();
    c.frames.remove(3); // the first data segment never arrives
    let limits = Limits {
        max_ooo_bytes_per_direction: 4000,
        ..Limits::default()
    };
    let (sink, stats) = run_files(vec![c.pcap()], &limits);
    let s = only(&sink);
    assert_eq!(s.gaps(Direction::ClientToServer), vec![1000]);
    assert_eq!(s.c2s, data[1000..]);
    assert!(stats.anomalies.get(Anomaly::TcpReassemblyLimit) >= 1);
}

#[test]
fn file_cut_short_keeps_what_came_before() {
    let (c, req, _) = simple(Link::Ethernet, "10.0.0.1:40000", "10.0.0.2:80", 1, 2);
    let mut bytes = c.pcap();
    bytes.truncate(bytes.len() - 30);
    let source = misdirect::capture::FileSource::from_reader(
        "cut.pcap".into(),
        std::io::Cursor::new(bytes),
        1 << 20,
    )
    .unwrap();
    let mut capture = misdirect::capture::Capture::from_sources(vec![source]).unwrap();
    let mut sink = Collector::default();
    misdirect::pipeline::run(&mut capture, &Limits::default(), &mut sink, &mut |_| {});
    assert_eq!(sink.conns.values().next().unwrap().c2s, req);
    let summary = &capture.summaries()[0];
    assert_eq!(summary.warnings.len(), 1, "{:?}", summary.warnings);
    assert!(summary.warnings[0].contains("cut short"));
}

#[test]
fn ack_captured_before_its_data_is_not_a_gap() {
    // A mirror port wrote the server's ACK before the client segment it acknowledges.
    let mut c = Conversation::new("10.0.0.1:40000", "10.0.0.2:443", Link::Ethernet, 100, 900);
    c.handshake();
    let req = body(3000, 9);
    c.client_sends(&req, 1000);
    c.ack_from_server();
    c.close();
    // frames: S SA A d0 d1 d2 ACK ...: move d1 after the ACK and d2 (d2 is buffered, the ACK
    // covers the hole, then d1 arrives within the reorder window).
    let d1 = c.frames.remove(4);
    c.frames.insert(6, d1);
    let (sink, _) = run_one(c.pcap());
    let s = only(&sink);
    assert!(s.gaps(Direction::ClientToServer).is_empty());
    assert_eq!(s.c2s, req);
}

#[test]
fn acked_hole_is_declared_lost_once_the_reorder_window_passes() {
    let mut c = Conversation::new("10.0.0.1:40000", "10.0.0.2:443", Link::Ethernet, 100, 900);
    c.handshake();
    c.client_sends(&body(3000, 10), 1000);
    c.ack_from_server(); // within the window: the hole may still fill
    c.ts_us += 50_000;
    c.ack_from_server(); // 50 ms later: the bytes are lost
    let declared_at = c.frames.len() as u64;
    c.client_sends(b"more", 100);
    c.close();
    c.frames.remove(4);
    let (sink, _) = run_one(c.pcap());
    let s = only(&sink);
    assert_eq!(s.gaps(Direction::ClientToServer), vec![1000]);
    // Packet indexes are 1-based and one frame was removed before it.
    assert_eq!(s.gap_packets, vec![declared_at - 1]);
}

#[test]
fn syn_captured_after_its_syn_ack_is_the_same_connection() {
    let (mut c, req, resp) = simple(Link::Ethernet, "10.0.0.1:40000", "10.0.0.2:443", 1000, 5000);
    c.frames.swap(0, 1);
    let (sink, _) = run_one(c.pcap());
    let s = only(&sink);
    assert_eq!(s.record().orientation, Orientation::SynAck);
    assert_eq!((s.c2s.clone(), s.s2c.clone()), (req, resp));
}

#[test]
fn syn_captured_after_the_first_data_is_the_same_connection() {
    let (mut c, req, _) = simple(Link::Ethernet, "10.0.0.1:40000", "10.0.0.2:443", 1000, 5000);
    // The first client data segment is written before the whole handshake.
    let first_data = c.frames.remove(3);
    c.frames.insert(0, first_data);
    let (sink, _) = run_one(c.pcap());
    let s = only(&sink);
    assert_eq!(s.c2s, req);
}
