//! HTTP edge cases real traffic rarely shows, on synthetic captures: lost bytes in HTTP/1
//! heads and bodies, absolute-form targets, and the HTTP/2 frames our real servers never
//! send (ORIGIN, PUSH_PROMISE, padding, priority, CONTINUATION, RST_STREAM, GOAWAY data).

mod common;

use common::{h2_frame, Conversation, Link};
use misdirect::analysis::{ConnectionRecord, Report};
use misdirect::capture::{Capture, FileSource};
use misdirect::proto::http::Pairing;
use misdirect::proto::tls::keylog::KeyLog;
use misdirect::Limits;

fn report(c: &Conversation) -> Report {
    let bytes = c.pcap();
    let src =
        FileSource::from_reader("t.pcap".into(), std::io::Cursor::new(bytes), 1 << 20).unwrap();
    let cap = Capture::from_sources(vec![src]).unwrap();
    misdirect::pipeline::analyze(cap, &Limits::default(), KeyLog::default(), &mut |_| {})
}

fn conn() -> Conversation {
    let mut c = Conversation::new(
        "10.0.0.1:40000",
        "10.0.0.2:8080",
        Link::Ethernet,
        1000,
        5000,
    );
    c.handshake();
    c
}

fn statuses(
    c: &ConnectionRecord,
) -> Vec<(Option<misdirect::intern::ArcStr>, Option<u16>, Pairing)> {
    c.requests
        .iter()
        .map(|e| (e.path.clone(), e.status, e.pairing))
        .collect()
}

fn response(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A lost request head: the parser resynchronises on the next request, and the responses
/// after the loss are paired from the end (the server answered the last request last).
#[test]
fn lost_request_head_resyncs_and_pairs_from_the_end() {
    let mut c = conn();
    for path in ["/one", "/two", "/three"] {
        c.client_sends(
            format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
            1000,
        );
    }
    let lost = c.frames.len() - 2; // the "/two" segment
    for body in ["1", "2", "3"] {
        c.server_sends(&response(body), 1000);
    }
    c.ack_from_client();
    c.close();
    c.frames.remove(lost);
    let r = report(&c);
    let got = statuses(&r.connections[0]);
    assert_eq!(
        got,
        vec![
            (Some("/one".into()), Some(200), Pairing::Exact),
            (None, Some(200), Pairing::Exact),
            (Some("/three".into()), Some(200), Pairing::Inferred),
        ],
        "the answer to the lost request stands alone"
    );
}

/// A gap inside a body of known length changes nothing about pairing.
#[test]
fn lost_body_bytes_keep_pairing_exact() {
    let mut c = conn();
    let body = "x".repeat(5000);
    let post = format!("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n{body}");
    c.client_sends(post.as_bytes(), 1000);
    let lost = c.frames.len() - 3;
    c.client_sends(b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n", 1000);
    c.server_sends(&response("ok"), 1000);
    c.server_sends(&response("ok"), 1000);
    c.ack_from_client();
    c.close();
    c.frames.remove(lost);
    let r = report(&c);
    let conn = &r.connections[0];
    assert_eq!(conn.client_to_server.gaps, 1);
    assert_eq!(
        statuses(conn),
        vec![
            (Some("/up".into()), Some(200), Pairing::Exact),
            (Some("/after".into()), Some(200), Pairing::Exact),
        ]
    );
}

/// An absolute-form target's authority is the one the server uses (RFC 9112 §3.2.2); a Host
/// header naming another host is a conflict worth reporting.
#[test]
fn absolute_form_authority_wins_over_host() {
    let mut c = conn();
    c.client_sends(
        b"GET http://b.example.test/x HTTP/1.1\r\nHost: a.example.test\r\n\r\n",
        1000,
    );
    c.server_sends(
        b"HTTP/1.1 421 Misdirected Request\r\nContent-Length: 0\r\n\r\n",
        1000,
    );
    c.close();
    let r = report(&c);
    let e = &r.connections[0].requests[0];
    assert_eq!(e.authority.as_deref(), Some("b.example.test"));
    assert_eq!(e.host.as_deref(), Some("a.example.test"));
    assert_eq!(e.scheme.as_deref(), Some("http"));
    let causes: Vec<&str> = r.findings[0].causes.iter().map(|c| c.name()).collect();
    assert_eq!(causes, ["authority_host_conflict"]);
}

/// HPACK literal without indexing, new name, no Huffman.
fn lit(name: &str, value: &str) -> Vec<u8> {
    let mut v = vec![0x00, name.len() as u8];
    v.extend(name.as_bytes());
    v.push(value.len() as u8);
    v.extend(value.as_bytes());
    v
}

fn request_block(path: &str) -> Vec<u8> {
    // :method GET (static 2), :scheme https (static 7), then literals.
    let mut b = vec![0x82, 0x87];
    b.extend(lit(":authority", "a.example.test"));
    b.extend(lit(":path", path));
    b
}

#[test]
fn http2_frames_servers_rarely_send() {
    let mut client = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    client.extend(h2_frame(4, 0, 0, &[]));
    // Stream 1: HEADERS padded, with priority, split over a CONTINUATION.
    let block = request_block("/index");
    let (first, rest) = block.split_at(5);
    let mut payload = vec![3]; // pad length
    payload.extend([0, 0, 0, 0, 15]); // priority: dependency 0, weight 15
    payload.extend(first);
    payload.extend([0, 0, 0]);
    client.extend(h2_frame(1, 0x08 | 0x20 | 0x01, 1, &payload));
    client.extend(h2_frame(9, 0x04, 1, rest));
    // Stream 3, then cancelled by the client.
    client.extend(h2_frame(1, 0x05, 3, &request_block("/slow")));
    client.extend(h2_frame(3, 0, 3, &8u32.to_be_bytes()));

    let mut server = h2_frame(4, 0, 0, &[]);
    let mut origin = Vec::new();
    for o in ["https://a.example.test", "https://b.example.test"] {
        origin.extend((o.len() as u16).to_be_bytes());
        origin.extend(o.as_bytes());
    }
    server.extend(h2_frame(0xc, 0, 0, &origin));
    let mut promise = 2u32.to_be_bytes().to_vec();
    promise.extend(request_block("/pushed"));
    server.extend(h2_frame(5, 0x04, 1, &promise));
    server.extend(h2_frame(1, 0x04, 1, &[0x88])); // :status 200
    server.extend(h2_frame(0, 0x01, 1, b"hello"));
    server.extend(h2_frame(1, 0x05, 2, &[0x88]));
    let mut goaway = 3u32.to_be_bytes().to_vec();
    goaway.extend(0u32.to_be_bytes());
    goaway.extend(b"bye <now>");
    server.extend(h2_frame(7, 0, 0, &goaway));

    let mut c = conn();
    c.client_sends(&client, 1400);
    c.server_sends(&server, 1400);
    c.close();
    let r = report(&c);
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    let conn = &r.connections[0];
    let rows: Vec<_> = conn
        .requests
        .iter()
        .map(|e| {
            (
                e.stream_id.map(u32::from),
                e.path.clone().unwrap(),
                e.status,
                e.pushed,
                e.rare().reset.as_ref().map(|r| r.error.clone()),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (Some(1), "/index".into(), Some(200), false, None),
            (Some(3), "/slow".into(), None, false, Some("CANCEL".into())),
            (Some(2), "/pushed".into(), Some(200), true, None),
        ]
    );
    let h2 = conn.http2.as_ref().unwrap();
    assert_eq!(
        h2.origin_set.as_deref(),
        Some(
            &[
                "https://a.example.test".to_string(),
                "https://b.example.test".to_string()
            ][..]
        )
    );
    assert_eq!(h2.goaway[0].last_stream_id, 3);
    assert_eq!(h2.goaway[0].debug.as_deref(), Some("bye <now>"));
}

/// A hostile PUSH_PROMISE promising the client's own stream fills its exchange again: the
/// promised request is what the exchange shows, with none of the first request's fields.
#[test]
fn a_promise_of_a_known_stream_replaces_its_request() {
    let mut client = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    client.extend(h2_frame(4, 0, 0, &[]));
    let mut first = request_block("/index");
    first.extend(lit("via", "1.1 proxy"));
    client.extend(h2_frame(1, 0x05, 1, &first));
    let mut server = h2_frame(4, 0, 0, &[]);
    let mut promise = 1u32.to_be_bytes().to_vec();
    promise.extend(request_block("/pushed"));
    server.extend(h2_frame(5, 0x04, 1, &promise));
    server.extend(h2_frame(1, 0x05, 1, &[0x88]));
    let mut c = conn();
    c.client_sends(&client, 1400);
    c.server_sends(&server, 1400);
    c.close();
    let r = report(&c);
    let e = &r.connections[0].requests[0];
    assert_eq!(e.path.as_deref(), Some("/pushed"));
    assert_eq!(e.rare().via, None);
}

/// The same conflict answered by the server is worth reporting before it turns into a 421.
#[test]
fn an_answered_host_conflict_is_a_finding() {
    let mut c = conn();
    c.client_sends(
        b"GET http://b.example.test/x HTTP/1.1\r\nHost: a.example.test\r\n\r\n",
        1000,
    );
    c.server_sends(&response("ok"), 1000);
    c.close();
    let r = report(&c);
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].kind.name(), "authority_host_mismatch");
    assert!(r.findings[0]
        .explanation
        .contains("host header naming a.example.test"));
}
