//! Floods and crafted traffic against the whole program: each test writes a hostile capture
//! (generated here, never committed), runs `misdirect analyze --stats` on it as a child
//! process, and checks that the run ends well, that its peak resident memory stays under the
//! bound `docs/robustness.md` documents, and that the report names what happened.

mod common;

use common::*;
use misdirect::capture::write::PcapWriter;
use misdirect::Timestamp;
use serde_json::Value;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const MB: u64 = 1_000_000;

/// A capture file written packet by packet, so a million packets never sit in memory.
struct Writer {
    w: PcapWriter<BufWriter<std::fs::File>>,
    path: PathBuf,
    ts_ns: i64,
}

impl Writer {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("misdirect-floods-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.pcap"));
        let file = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
        Writer {
            w: PcapWriter::new(file, LINKTYPE_ETHERNET, 262_144, true).unwrap(),
            path,
            ts_ns: 1_700_000_000_000_000_000,
        }
    }

    fn frame(&mut self, frame: &[u8]) {
        self.ts_ns += 1000;
        self.w
            .write_packet(Timestamp(self.ts_ns), frame, frame.len() as u32)
            .unwrap();
    }

    /// The frames a scripted conversation made since the last call, in order.
    fn drain(&mut self, c: &mut Conversation) {
        for f in c.frames.drain(..) {
            self.frame(&f.data);
        }
    }

    fn finish(self) -> PathBuf {
        self.w.into_inner().flush().unwrap();
        self.path
    }
}

/// What a run of the binary did.
struct Run {
    code: i32,
    peak_rss: u64,
    seconds: f64,
    stderr: String,
    report: Value,
}

/// Runs `misdirect analyze --stats -f json` on `capture`; the peak RSS is the one `--stats`
/// reads from `/proc/self/status` (`VmHWM`). `wait4`'s `ru_maxrss` would not do: it keeps
/// the high-water mark of the process before its exec, which was this test process.
fn analyze(capture: &Path) -> Run {
    analyze_with(capture, &[])
}

/// [`analyze`] with more arguments.
fn analyze_with(capture: &Path, args: &[&str]) -> Run {
    let out = capture.with_extension("json");
    let err = capture.with_extension("stderr");
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_misdirect"))
        .arg("analyze")
        .args(args)
        .args(["--stats", "-q", "-f", "json", "-o"])
        .arg(&out)
        .arg(capture)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .status()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let stderr = std::fs::read_to_string(&err).unwrap();
    let peak_rss = stderr
        .split("peak memory ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|mb| mb.parse::<f64>().ok())
        .map(|mb| (mb * 1e6) as u64)
        .unwrap_or_else(|| panic!("no peak memory in: {stderr}"));
    let report = std::fs::read(&out)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    for f in [capture, &out, &err] {
        let _ = std::fs::remove_file(f);
    }
    eprintln!(
        "{}: {status}, peak RSS {:.1} MB, {seconds:.2} s",
        capture.display(),
        peak_rss as f64 / MB as f64
    );
    Run {
        code: status.code().unwrap_or(-1),
        peak_rss,
        seconds,
        stderr,
        report,
    }
}

fn anomaly(report: &Value, name: &str) -> u64 {
    report["anomalies"][name].as_u64().unwrap_or(0)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The run ended normally, within `bound` bytes of peak memory, with a report.
fn assert_sane(run: &Run, bound: u64) {
    assert_eq!(run.code, 0, "exit code; stderr:\n{}", run.stderr);
    assert!(
        run.peak_rss <= bound,
        "peak RSS {:.1} MB over the bound of {} MB",
        run.peak_rss as f64 / MB as f64,
        bound / MB
    );
    assert!(run.report.is_object(), "no report; stderr:\n{}", run.stderr);
}

#[test]
fn syn_flood_of_a_million_connections() {
    let mut w = Writer::new("syn-flood");
    let server = addr("10.0.0.2:443");
    let mut template = Link::Ethernet.frame(&tcp_packet(
        addr("10.1.0.0:1024"),
        server,
        1,
        None,
        "S",
        &[],
    ));
    // Source address bytes 26..30 and port 34..36 of the Ethernet frame: a million spoofed
    // clients, 16 ports each. Checksums are not checked by a passive analyzer.
    for i in 0u32..1_000_000 {
        let host = i / 16;
        template[26..30].copy_from_slice(&[
            10,
            1 + (host >> 16) as u8,
            (host >> 8) as u8,
            host as u8,
        ]);
        template[34..36].copy_from_slice(&(1024 + (i % 16) as u16).to_be_bytes());
        w.frame(&template);
    }
    let run = analyze(&w.finish());
    // The table holds `max_connections` (262,144) connections that carried nothing, and
    // the report lists `max_empty_connection_records` (65,536) of them.
    assert_sane(&run, 300 * MB);
    let s = &run.report["summary"];
    assert_eq!(s["tcp_connections"], 1_000_000);
    assert_eq!(s["evicted_connections"], 1_000_000 - 262_144);
    assert_eq!(s["unlisted_connections"], 1_000_000 - 65_536);
    assert_eq!(run.report["connections"].as_array().unwrap().len(), 65_536);
    assert_eq!(
        anomaly(&run.report, "flow_table_limit"),
        1_000_000 - 262_144
    );
    assert_eq!(
        anomaly(&run.report, "connection_record_limit"),
        1_000_000 - 65_536
    );
}

/// `n` client connections to `server`, each through its handshake, in the writer.
fn connections(w: &mut Writer, n: u32, server: &str) -> Vec<Conversation> {
    (0..n)
        .map(|i| {
            let client = format!("10.2.{}.{}:{}", i / 250, 1 + i % 250, 20000 + i % 1000);
            let mut c =
                Conversation::new(&client, server, Link::Ethernet, i.wrapping_mul(7919), 77);
            c.handshake();
            w.drain(&mut c);
            c
        })
        .collect()
}

#[test]
fn out_of_order_flood_that_never_fills_its_holes() {
    let mut w = Writer::new("ooo-flood");
    // 100 connections, all open at once, each sending 1.2 MB as 1000-byte segments of which
    // every other one is missing: each direction passes its own 1 MiB limit, and together
    // they pass the 64 MiB table-wide one.
    let mut conns = connections(&mut w, 100, "10.0.0.2:80");
    let segment = [b'x'; 1000];
    for round in 0..1200u32 {
        for c in &mut conns {
            let seq = c.cseq.wrapping_add(1000 + 2000 * round);
            c.client_raw(seq, "PA", &segment);
            w.drain(c);
        }
    }
    // One more with 100k one-byte segments, every other byte missing: the segment-count limit.
    let mut tiny = connections(&mut w, 1, "10.0.0.3:80").pop().unwrap();
    for i in 0..100_000u32 {
        let seq = tiny.cseq.wrapping_add(1 + 2 * i);
        tiny.client_raw(seq, "PA", b"y");
        w.drain(&mut tiny);
    }
    let run = analyze(&w.finish());
    // 64 MiB of out-of-order data at most, over all connections.
    assert_sane(&run, 150 * MB);
    assert!(anomaly(&run.report, "tcp_reassembly_limit") > 0);
    let conns = run.report["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 101);
    for c in conns {
        let d = &c["client_to_server"];
        assert!(d["gaps"].as_u64().unwrap() > 0, "{d}");
        // The holes were given up, so what followed each was delivered.
        assert!(d["stream_bytes"].as_u64().unwrap() > 0, "{d}");
    }
}

/// An HPACK integer with an `n`-bit prefix whose other bits are `flags` (RFC 7541 §5.1),
/// by loona-hpack's encoder.
fn hpack_int(out: &mut Vec<u8>, flags: u8, n: u8, v: usize) {
    loona_hpack::encoder::encode_integer_into(v, n, flags, out).expect("a Vec takes every byte");
}

/// An HPACK string literal, not Huffman-coded.
fn hpack_str(out: &mut Vec<u8>, s: &[u8]) {
    hpack_int(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

const HEADERS: u8 = 1;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;

/// The client connection preface and an empty SETTINGS frame (h2c with prior knowledge).
fn h2_preface() -> Vec<u8> {
    let mut v = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    v.extend(h2_frame(4, 0, 0, &[]));
    v
}

/// A GET request's pseudo-header fields for `authority`, none of them indexed into the
/// dynamic table.
fn get_fields(authority: &str) -> Vec<u8> {
    let mut b = vec![0x82, 0x84, 0x86]; // :method GET, :path /, :scheme http
    hpack_int(&mut b, 0, 4, 1); // literal without indexing, name :authority
    hpack_str(&mut b, authority.as_bytes());
    b
}

#[test]
fn hpack_bomb() {
    let mut w = Writer::new("hpack-bomb");
    let mut c = connections(&mut w, 1, "10.0.0.2:8080").pop().unwrap();
    let mut out = h2_preface();
    // Stream 1 puts a 4000-byte entry into the dynamic table (the default table is 4096).
    let mut first = get_fields("bomb.test");
    hpack_int(&mut first, 0x40, 6, 0); // literal with incremental indexing, new name
    hpack_str(&mut first, b"x-bomb");
    hpack_str(&mut first, &[b'a'; 4000]);
    out.extend(h2_frame(HEADERS, END_STREAM | END_HEADERS, 1, &first));
    // 2000 more requests whose 16 kB blocks reference it 16,000 times each: 64 MB of
    // header list per block, 128 GB in all, from a 32 MB capture.
    for i in 0..2000u32 {
        let mut b = get_fields("bomb.test");
        b.extend(std::iter::repeat_n(0xbe, 16_000)); // index 62: the newest dynamic entry
        out.extend(h2_frame(HEADERS, END_STREAM | END_HEADERS, 3 + 2 * i, &b));
        if out.len() > 1 << 20 {
            c.client_sends(&out, 1448);
            w.drain(&mut c);
            out.clear();
        }
    }
    c.client_sends(&out, 1448);
    c.close();
    w.drain(&mut c);
    let run = analyze(&w.finish());
    assert_sane(&run, 50 * MB);
    assert!(run.seconds < 60.0, "{} s", run.seconds);
    let requests = run.report["connections"][0]["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 2001);
    assert!(requests.iter().all(|r| r["authority"] == "bomb.test"));
    assert_eq!(anomaly(&run.report, "http2_header_list_limit"), 2000);
}

#[test]
fn continuation_flood() {
    let mut w = Writer::new("continuation-flood");
    let mut conns = connections(&mut w, 2, "10.0.0.2:8080");
    // First connection: a header block left open by 500k empty CONTINUATION frames, then
    // ended; then a normal request, which must still be read.
    let c = &mut conns[0];
    let mut out = h2_preface();
    out.extend(h2_frame(HEADERS, END_STREAM, 1, &get_fields("flood.test")));
    c.client_sends(&out, 1448);
    let empty = h2_frame(CONTINUATION, 0, 1, &[]);
    let burst = empty.repeat(10_000);
    for _ in 0..50 {
        c.client_sends(&burst, 1448);
        w.drain(c);
    }
    let mut out = h2_frame(CONTINUATION, END_HEADERS, 1, &[]);
    out.extend(h2_frame(
        HEADERS,
        END_STREAM | END_HEADERS,
        3,
        &get_fields("after.test"),
    ));
    c.client_sends(&out, 1448);
    c.close();
    w.drain(c);
    // Second connection: CONTINUATIONs of 16 kB each, 64 MB in one header block.
    let c = &mut conns[1];
    let mut out = h2_preface();
    out.extend(h2_frame(HEADERS, END_STREAM, 1, &get_fields("big.test")));
    c.client_sends(&out, 1448);
    let full = h2_frame(CONTINUATION, 0, 1, &[0x82; 16_000]);
    for _ in 0..4000 {
        c.client_sends(&full, 1448);
        w.drain(c);
    }
    c.client_sends(&h2_frame(CONTINUATION, END_HEADERS, 1, &[]), 1448);
    c.close();
    w.drain(c);

    let run = analyze(&w.finish());
    assert_sane(&run, 50 * MB);
    assert_eq!(anomaly(&run.report, "http2_continuation_limit"), 1);
    assert_eq!(anomaly(&run.report, "http2_header_block_limit"), 1);
    let conns = run.report["connections"].as_array().unwrap();
    let authorities = |c: &Value| -> Vec<String> {
        c["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["authority"].as_str().unwrap_or("-").to_string())
            .collect()
    };
    // The flooded block is dropped (its stream's request is not known); the next is read.
    assert!(authorities(&conns[0]).contains(&"after.test".to_string()));
    assert!(!authorities(&conns[1]).contains(&"big.test".to_string()));
}

/// A TLS record of `content_type` around `body`.
fn tls_record(content_type: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![content_type, 3, 1];
    r.extend_from_slice(&(body.len() as u16).to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// A ClientHello handshake message for `sni` with `extra` empty extensions of unassigned
/// types besides server_name.
fn client_hello(sni: &str, extra: u16) -> Vec<u8> {
    let mut ext = Vec::new();
    let name = sni.as_bytes();
    ext.extend_from_slice(&0u16.to_be_bytes());
    ext.extend_from_slice(&(name.len() as u16 + 5).to_be_bytes());
    ext.extend_from_slice(&(name.len() as u16 + 3).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    for i in 0..extra {
        ext.extend_from_slice(&(0x4000 + i).to_be_bytes());
        ext.extend_from_slice(&[0, 0]);
    }
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // TLS_AES_128_GCM_SHA256
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut msg = vec![1];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(&body);
    msg
}

#[test]
fn tls_records_that_lie_about_their_length() {
    let mut w = Writer::new("tls-lies");
    // 30,000 connections, all left open, each starting a record or handshake message that
    // claims far more than it brings: a parser that reserved what a header claims would hold
    // 18 kB or 128 kB for each of them.
    let mut conns = connections(&mut w, 30_000, "10.0.0.2:443");
    for (i, c) in conns.iter_mut().enumerate() {
        let bytes = match i % 3 {
            // A record of the largest allowed length, 10 bytes of it sent.
            0 => {
                let mut r = tls_record(22, &[1; 10]);
                r[3..5].copy_from_slice(&18432u16.to_be_bytes());
                r
            }
            // A whole record holding the start of a ClientHello that claims 128 kB.
            1 => tls_record(22, &[1, 0x01, 0xff, 0xff, 3, 3, 0, 0]),
            // A whole ClientHello, then a record longer than the protocol allows.
            _ => {
                let mut r = tls_record(22, &client_hello("lies.test", 0));
                let mut lie = tls_record(22, &[1; 10]);
                lie[3..5].copy_from_slice(&u16::MAX.to_be_bytes());
                r.extend(lie);
                r
            }
        };
        c.client_sends(&bytes, 1448);
        w.drain(c);
    }
    let run = analyze(&w.finish());
    assert_sane(&run, 150 * MB);
    let conns = run.report["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 30_000);
    assert!(conns.iter().all(|c| c["tls"].is_object()), "{}", conns[0]);
    let lies = conns.iter().filter(|c| c["tls"]["sni"] == "lies.test");
    assert_eq!(lies.count(), 10_000);
    assert_eq!(anomaly(&run.report, "tls_record_invalid"), 10_000);
}

#[test]
fn client_hellos_with_thousands_of_extensions() {
    let mut w = Writer::new("tls-extensions");
    let hello = tls_record(22, &client_hello("many.test", 4000));
    assert!(hello.len() <= 16_384 + 5);
    let mut conns = connections(&mut w, 5000, "10.0.0.2:443");
    for c in &mut conns {
        c.client_sends(&hello, 1448);
        c.close();
        w.drain(c);
    }
    let run = analyze(&w.finish());
    assert_sane(&run, 100 * MB);
    let conns = run.report["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 5000);
    assert!(conns.iter().all(|c| c["tls"]["sni"] == "many.test"));
    assert_eq!(anomaly(&run.report, "tls_handshake_list_capped"), 5000);
}

const MISDIRECTED: &[u8] = b"HTTP/1.1 421 Misdirected Request\r\nContent-Length: 0\r\n\r\n";

#[test]
fn http1_headers_without_end() {
    let mut w = Writer::new("http1-endless");
    // 50 connections interleaved, each sending a request head that never ends: 2 MB of
    // header lines; then a complete request, which must be read.
    let mut conns = connections(&mut w, 50, "10.0.0.2:80");
    for c in &mut conns {
        c.client_sends(b"GET /endless HTTP/1.1\r\nHost: endless.test\r\n", 1448);
        w.drain(c);
    }
    let line =
        b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let block = line.repeat(200);
    for _ in 0..130 {
        for c in &mut conns {
            c.client_sends(&block, 1448);
            w.drain(c);
        }
    }
    for c in &mut conns {
        c.client_sends(b"\r\nGET /after HTTP/1.1\r\nHost: after.test\r\n\r\n", 1448);
        c.server_sends(MISDIRECTED, 1448);
        c.close();
        w.drain(c);
    }
    let run = analyze(&w.finish());
    assert_sane(&run, 100 * MB);
    assert_eq!(anomaly(&run.report, "http1_head_limit"), 50);
    for c in run.report["connections"].as_array().unwrap() {
        let after = c["requests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["path"] == "/after");
        assert!(after.is_some(), "{}", c["requests"]);
        assert_eq!(after.unwrap()["status"], 421);
    }
}

#[test]
fn chunk_sizes_that_overflow() {
    let mut w = Writer::new("chunk-overflow");
    let mut conns = connections(&mut w, 3, "10.0.0.2:80");
    let request = b"GET / HTTP/1.1\r\nHost: chunks.test\r\n\r\n";
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    let sizes: [&[u8]; 3] = [
        // Beyond u64.
        b"ffffffffffffffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
        // u64::MAX itself, then a little data and the end of the connection.
        b"ffffffffffffffff\r\nabc",
        // A size line that never ends.
        &[b'f'; 100_000],
    ];
    for (c, size) in conns.iter_mut().zip(sizes) {
        c.client_sends(request, 1448);
        c.server_sends(head, 1448);
        c.server_sends(size, 1448);
        // A second exchange after it, answered 421: read when the framing allows it.
        c.client_sends(request, 1448);
        c.server_sends(MISDIRECTED, 1448);
        c.close();
        w.drain(c);
    }
    let run = analyze(&w.finish());
    assert_sane(&run, 50 * MB);
    assert_eq!(anomaly(&run.report, "http1_chunk_invalid"), 2);
    let conns = run.report["connections"].as_array().unwrap();
    for c in conns {
        assert_eq!(c["requests"][0]["status"], 200, "{}", c["requests"]);
    }
    // After an invalid size line the direction resynchronises on the next status line.
    assert_eq!(
        conns[0]["requests"][1]["status"], 421,
        "{}",
        conns[0]["requests"]
    );
}

#[test]
fn one_busy_connection_beside_sparse_ones() {
    // With two workers (three threads, whatever the cores), the sparse connections' worker
    // gets a segment now and then while the busy one's fills the input: its batch must not
    // keep every input chunk those few segments came from alive until it has 512 segments.
    let mut w = Writer::new("busy-beside-sparse");
    let mut busy = connections(&mut w, 1, "10.0.0.2:80").pop().unwrap();
    let mut sparse = connections(&mut w, 8, "10.0.0.3:80");
    let block = vec![b'b'; 1 << 20];
    for i in 0..200 {
        busy.server_sends(&block, 1448);
        w.drain(&mut busy);
        let c = &mut sparse[i % 8];
        c.client_sends(b"x", 1448);
        w.drain(c);
    }
    let run = analyze_with(&w.finish(), &["--threads", "3"]);
    // 220 MB of capture; before batches were flushed at two chunks, 141 MB (up to 1 GiB
    // on longer captures).
    assert_sane(&run, 50 * MB);
    assert_eq!(run.report["connections"].as_array().unwrap().len(), 9);
}

#[test]
fn interim_responses_without_end() {
    let mut w = Writer::new("endless-1xx");
    let mut c = connections(&mut w, 1, "10.0.0.2:80").pop().unwrap();
    c.client_sends(b"GET / HTTP/1.1\r\nHost: interim.test\r\n\r\n", 1448);
    let burst: Vec<u8> = b"HTTP/1.1 103 Early Hints\r\n\r\n".repeat(10_000);
    for _ in 0..20 {
        c.server_sends(&burst, 1448);
        w.drain(&mut c);
    }
    c.server_sends(MISDIRECTED, 1448);
    c.close();
    w.drain(&mut c);
    let run = analyze(&w.finish());
    assert_sane(&run, 50 * MB);
    let request = &run.report["connections"][0]["requests"][0];
    assert_eq!(request["status"], 421, "{request}");
    assert_eq!(request["interim"].as_array().unwrap().len(), 16);
}

#[test]
fn many_421s_from_one_server() {
    // 20,000 connections to one server, each answered 421, and one connection with 20,000
    // requests for two hosts in turn, each answered 421: every finding's evidence names the
    // other connections to the server and the earlier authorities, which must stay lists
    // of a few, not 20,000 each.
    let mut w = Writer::new("many-421s");
    let mut conns = connections(&mut w, 20_001, "10.0.0.2:80");
    let mut busy = conns.pop().unwrap();
    for c in &mut conns {
        c.client_sends(b"GET / HTTP/1.1\r\nHost: one.test\r\n\r\n", 1448);
        c.server_sends(MISDIRECTED, 1448);
        c.close();
        w.drain(c);
    }
    for i in 0..20_000 {
        let host = if i % 2 == 0 { "a.test" } else { "b.test" };
        let request = format!("GET /{i} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        busy.client_sends(request.as_bytes(), 1448);
        busy.server_sends(MISDIRECTED, 1448);
        w.drain(&mut busy);
    }
    let run = analyze(&w.finish());
    assert_sane(&run, 300 * MB);
    assert!(run.seconds < 60.0, "{} s", run.seconds);
    let findings = run.report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 40_000);
    for f in findings {
        let e = &f["evidence"];
        assert_eq!(e["same_server_connections"].as_array().unwrap().len(), 16);
        assert!(e["earlier_authorities"].as_array().unwrap().len() <= 1);
    }
    let last = &findings[39_999]["evidence"];
    assert_eq!(last["earlier_authorities"][0], "a.test", "{last}");
}
