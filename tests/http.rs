//! HTTP/1, HTTP/2, FTP and SMTP on the real samples: what each connection asked and was
//! answered, checked against the samples' documented content and against tshark.

mod common;

use common::tshark::{self, HttpView};
use misdirect::analysis::{ConnectionRecord, Report};
use misdirect::proto::http::HttpVersion;
use misdirect::proto::AppProtocol;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn keys_of(file: &Path) -> Option<PathBuf> {
    let k = file.with_extension("keys");
    k.exists().then_some(k)
}

fn analyze(file: &Path) -> Report {
    common::analyze_path(file)
}

fn report(name: &str) -> Report {
    analyze(&common::samples_dir().join(name))
}

/// `(stream id, method, authority, path, status)` per request.
type Row = (Option<u32>, String, String, String, Option<u16>);

fn rows(c: &ConnectionRecord) -> Vec<Row> {
    let s = |v: &Option<misdirect::intern::ArcStr>| v.as_deref().unwrap_or("?").to_string();
    c.requests
        .iter()
        .map(|e| {
            (
                e.stream_id.map(u32::from),
                s(&e.method),
                s(&e.authority),
                s(&e.path),
                e.status,
            )
        })
        .collect()
}

fn row(stream: Option<u32>, method: &str, authority: &str, path: &str, status: u16) -> Row {
    (
        stream,
        method.into(),
        authority.into(),
        path.into(),
        Some(status),
    )
}

#[test]
fn apache_421_over_http1_and_http2() {
    let r = report("apache-421-sni-mismatch.pcap");
    assert_eq!(r.connections[0].protocol, AppProtocol::Http1);
    assert_eq!(
        rows(&r.connections[0]),
        vec![
            row(None, "GET", "a.example.test:9443", "/", 200),
            row(None, "GET", "b.example.test", "/", 421),
        ]
    );
    assert_eq!(r.connections[1].protocol, AppProtocol::Http2);
    assert_eq!(
        rows(&r.connections[1]),
        vec![
            row(Some(1), "GET", "a.example.test:9443", "/", 200),
            row(Some(3), "GET", "b.example.test", "/", 421),
        ]
    );
}

#[test]
fn chromium_coalescing_then_retry() {
    let r = report("chromium-coalesce-421.pcapng");
    let c = &r.connections;
    assert_eq!(
        rows(&c[0]),
        vec![
            row(Some(1), "GET", "a.example.test:7443", "/page.html", 200),
            row(Some(3), "GET", "b.example.test:7443", "/b.js", 421),
        ]
    );
    assert_eq!(c[1].protocol, AppProtocol::Http2, "the spare connection");
    assert!(c[1].requests.is_empty());
    assert_eq!(
        rows(&c[2]),
        vec![row(Some(1), "GET", "b.example.test:7443", "/b.js", 200)]
    );
    let h2 = c[0].http2.as_ref().unwrap();
    assert!(h2.preface_seen);
    assert_eq!(h2.origin_set, None, "Apache sends no ORIGIN frame");
}

#[test]
fn keepalive_reuse_and_pipelining() {
    let r = report("http1-keepalive-reuse.pcap");
    let hosts = |c: &ConnectionRecord| -> Vec<(String, Option<u16>)> {
        c.requests
            .iter()
            .map(|e| (e.host.as_deref().unwrap().to_string(), e.status))
            .collect()
    };
    let ok = |h: &str| (h.to_string(), Some(200));
    assert_eq!(
        hosts(&r.connections[0]),
        vec![
            ok("a.example.test"),
            ok("b.example.test"),
            ok("b.example.test"),
            ok("a.example.test")
        ]
    );
    assert_eq!(
        hosts(&r.connections[1]),
        vec![
            ok("a.example.test"),
            ok("b.example.test"),
            ok("b.example.test")
        ],
        "three pipelined requests in one segment"
    );
}

#[test]
fn h2c_upgrade_keeps_the_upgraded_request_as_stream_1() {
    let r = report("h2c-upgrade.pcap");
    let c = &r.connections[0];
    assert_eq!(c.protocol, AppProtocol::Http2);
    let e = &c.requests[0];
    assert_eq!(e.version, Some(HttpVersion::Http11));
    assert_eq!((e.stream_id.map(u32::from), e.status), (Some(1), Some(200)));
    assert_eq!(e.rare().interim, vec![101]);
    assert_eq!(e.rare().upgraded_to.as_deref(), Some("h2c"));
    assert_eq!(
        rows(c)[1],
        row(Some(3), "GET", "a.example.test:8080", "/hello.txt", 200)
    );
    let goaway = &c.http2.as_ref().unwrap().goaway;
    assert_eq!(goaway.len(), 1);
    assert_eq!(goaway[0].error, "NO_ERROR");
}

#[test]
fn framing_corner_cases_stay_in_step() {
    let r = report("http1-framing.pcap");
    let all: Vec<(String, String, Vec<u16>, Option<u16>)> = r
        .connections
        .iter()
        .flat_map(|c| &c.requests)
        .map(|e| {
            (
                e.method.as_deref().unwrap().to_string(),
                e.path.as_deref().unwrap().to_string(),
                e.rare().interim.clone(),
                e.status,
            )
        })
        .collect();
    let get = |p: &str, s| ("GET".to_string(), p.to_string(), vec![], Some(s));
    assert_eq!(
        all,
        vec![
            ("POST".into(), "/upload".into(), vec![100], Some(200)),
            ("POST".into(), "/early".into(), vec![100], Some(200)),
            get("/hello.txt", 200),
            ("HEAD".into(), "/hello.txt".into(), vec![], Some(200)),
            get("/hello.txt", 200),
            get("/hello.txt", 304),
            get("/hello.txt", 304),
            get("/index.html", 200),
            get("/empty", 204),
            get("/hello.txt", 200),
            get("/sub.txt", 200),
            get("/sub.txt", 200),
            get("/index.html", 200),
        ]
    );
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
}

#[test]
fn websocket_upgrade_is_a_tunnel_not_http() {
    let r = report("websocket-upgrade.pcap");
    let e = &r.connections[0].requests;
    assert_eq!(e.len(), 1, "frames after the 101 are not requests");
    assert_eq!(e[0].status, Some(101));
    assert_eq!(e[0].rare().upgraded_to.as_deref(), Some("websocket"));
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
}

/// A capture that starts after the HEADERS that filled the client's HPACK table: the
/// references to those entries are unknown, never guessed; what is static stays known.
#[test]
fn http2_mid_connection_marks_unknown_fields() {
    let r = report("h2c-midstream.pcap");
    let c = &r.connections[0];
    assert!(c.mid_stream);
    assert!(!c.http2.as_ref().unwrap().preface_seen);
    let first = c
        .requests
        .iter()
        .find(|e| e.stream_id.map(u32::from) == Some(1))
        .unwrap();
    assert!(!first.request_seen);
    assert_eq!(first.status, Some(200));
    let later: Vec<_> = c.requests.iter().filter(|e| e.request_seen).collect();
    assert!(!later.is_empty());
    for e in later {
        assert_eq!(e.authority, None, "stream {:?}", e.stream_id);
        assert!(e.unknown_fields > 0);
        assert_eq!(e.method.as_deref(), Some("GET"));
        assert!(e.status.is_some());
    }
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
}

#[test]
fn ftp_and_smtp_421_are_replies_not_http() {
    for (name, dialect) in [
        ("ftp-421.pcap", AppProtocol::Ftp),
        ("smtp-421.pcap", AppProtocol::Smtp),
    ] {
        let r = report(name);
        let mut saw_421 = false;
        for c in &r.connections {
            assert!(c.requests.is_empty(), "{name}: no HTTP");
            let ctl = c.control.as_ref().unwrap();
            saw_421 |= ctl.replies.iter().any(|x| x.code == 421);
            assert_eq!(c.protocol, dialect, "{name}");
        }
        assert!(saw_421, "{name}");
        assert_eq!(r.connections[0].protocol, dialect);
    }
    let smtp = report("smtp-421.pcap");
    let first = smtp.connections[0].control.as_ref().unwrap();
    let ehlo = first
        .replies
        .iter()
        .find(|x| x.command.as_deref() == Some("EHLO"))
        .unwrap();
    assert!(ehlo.lines > 1, "multi-line EHLO reply joined");
}

/// A lone `421` greeting says neither FTP nor SMTP; the server's other connection does.
#[test]
fn a_lone_ftp_421_takes_its_dialect_from_the_same_server() {
    let r = report("ftp-421.pcap");
    let ctl = r.connections[1].control.as_ref().unwrap();
    assert_eq!(ctl.replies.len(), 1);
    assert_eq!(ctl.dialect_from, Some("same_server"));
}

#[test]
fn connect_tunnel_carries_tls_and_http2() {
    let r = report("connect-tunnel.pcap");
    let c = &r.connections[0];
    assert_eq!(
        rows(c),
        vec![row(
            None,
            "CONNECT",
            "a.example.test:8443",
            "a.example.test:8443",
            200
        )]
    );
    assert_eq!(c.requests[0].rare().upgraded_to.as_deref(), Some("tunnel"));
    let t = c.tunnel.as_ref().unwrap();
    let tls = t.tls.as_ref().unwrap();
    assert_eq!(tls.sni.as_deref(), Some("a.example.test"));
    assert!(tls.decrypted);
    assert_eq!(t.protocol, AppProtocol::Http2);
    assert_eq!(t.requests.len(), 2);
}

/// Our view of a connection in tshark's terms (see [`HttpView`]).
fn our_view(c: &ConnectionRecord) -> HttpView {
    let mut v = HttpView::default();
    // tshark dissects a CONNECT tunnel's content on the same TCP stream.
    let tunnelled = c.tunnel.iter().flat_map(|t| &t.requests);
    for e in c.requests.iter().chain(tunnelled) {
        if e.version == Some(HttpVersion::Http2) {
            let entry = v.h2.entry(u32::from(e.stream_id.unwrap())).or_default();
            entry.0 = e.authority.as_deref().map(str::to_string);
            entry
                .1
                .extend(e.rare().interim.iter().copied().chain(e.status));
            continue;
        }
        v.h1_hosts.push(e.host.as_deref().map(str::to_string));
        v.h1_statuses.extend(&e.rare().interim);
        if e.rare().upgraded_to.as_deref() == Some("h2c") {
            // tshark shows the response on HTTP/2 stream 1, without a request there.
            v.h2.entry(1).or_default().1.extend(e.status);
        } else {
            v.h1_statuses.extend(e.status);
        }
    }
    v
}

/// tshark's dissectors for the ports our report found each protocol on.
fn decode_as(r: &Report, keys: Option<&Path>) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(k) = keys {
        args.push("-o".to_string());
        args.push(format!("tls.keylog_file:{}", k.display()));
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in &r.connections {
        let port = c.server.port();
        let h2c_upgrade = c
            .requests
            .iter()
            .any(|e| e.rare().upgraded_to.as_deref() == Some("h2c"));
        let how = match (&c.tls, c.protocol) {
            (Some(_), _) => "tls",
            (None, AppProtocol::Http2) if !h2c_upgrade => "http2",
            (None, AppProtocol::Http1 | AppProtocol::Http2) => "http",
            _ => continue,
        };
        if seen.insert(port) {
            args.push("-d".into());
            args.push(format!("tcp.port=={port},{how}"));
            if how == "tls" && c.protocol == AppProtocol::Http1 {
                // Without ALPN tshark does not look for HTTP inside TLS.
                args.push("-d".into());
                args.push(format!("tls.port=={port},http"));
            }
        }
    }
    args
}

/// Every request and response in every sample, with the authority and status tshark sees.
#[test]
fn every_sample_agrees_with_tshark() {
    if !tshark::available() {
        return;
    }
    let files = common::sample_captures();
    let mut compared = 0usize;
    let mut failures = Vec::new();
    for file in files {
        let r = analyze(&file);
        let keys = keys_of(&file);
        let theirs = tshark::http_view(&file, &decode_as(&r, keys.as_deref()));
        let ours: BTreeMap<u64, HttpView> = r
            .connections
            .iter()
            .enumerate()
            .map(|(i, c)| (i as u64, our_view(c)))
            .filter(|(_, v)| *v != HttpView::default())
            .collect();
        let theirs: BTreeMap<u64, HttpView> = theirs
            .into_iter()
            .filter(|(_, v)| *v != HttpView::default())
            .collect();
        if ours != theirs {
            for k in ours
                .keys()
                .chain(theirs.keys())
                .collect::<std::collections::BTreeSet<_>>()
            {
                if ours.get(k) != theirs.get(k) {
                    failures.push(format!(
                        "{} conn {k}:\n  ours:   {:?}\n  tshark: {:?}",
                        file.display(),
                        ours.get(k),
                        theirs.get(k)
                    ));
                }
            }
        }
        compared += ours.len();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared >= 20, "only {compared} HTTP connections compared");
}
