//! tshark as an oracle: running it, and reading its `-z follow,…,raw` output.

use std::path::Path;
use std::process::Command;

/// Whether to run tshark comparisons: tshark present, or absent and allowed to skip (CI sets
/// `MISDIRECT_REQUIRE_TSHARK=1`, which turns a missing tshark into a failure).
pub fn available() -> bool {
    let present = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            std::env::var_os("MISDIRECT_REQUIRE_TSHARK").is_none(),
            "tshark is required (MISDIRECT_REQUIRE_TSHARK is set) but not installed"
        );
        eprintln!("SKIPPED: tshark not installed (apt-get install tshark); CI installs it");
    }
    present
}

/// Runs tshark and returns its standard output.
pub fn run(args: &[&str]) -> String {
    let out = Command::new("tshark")
        .args(args)
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// One `follow` block: the two nodes' endpoints and the bytes each sent.
#[derive(Debug, Default)]
pub struct Followed {
    pub nodes: [String; 2],
    pub sent: [Vec<u8>; 2],
}

impl Followed {
    /// (client bytes, server bytes). Node 0 is the first sender: for `follow,tcp` the
    /// connection's opener, for `follow,tls` the first to send decrypted data; tshark 4.0 may
    /// print the other node as ":0", so node 0 alone tells the directions apart.
    pub fn by_direction(&self, client: &str, server: &str, what: &str) -> (&[u8], &[u8]) {
        if self.nodes[0] == client {
            (&self.sent[0], &self.sent[1])
        } else {
            assert_eq!(
                self.nodes[0], server,
                "{what}: endpoints differ from tshark's {:?}",
                self.nodes
            );
            (&self.sent[1], &self.sent[0])
        }
    }
}

/// Number of TCP streams tshark sees in `file`.
pub fn tcp_streams(file: &Path) -> usize {
    let f = file.to_str().unwrap();
    run(&["-r", f, "-T", "fields", "-e", "tcp.stream", "-Y", "tcp"])
        .lines()
        .filter_map(|l| l.trim().parse::<usize>().ok())
        .max()
        .map_or(0, |m| m + 1)
}

/// `tshark -r FILE [extra] -q -z follow,KIND,raw,N` for every stream 0..streams.
pub fn follow(file: &Path, kind: &str, extra: &[&str], streams: usize) -> Vec<Followed> {
    if streams == 0 {
        return Vec::new();
    }
    let mut args = vec!["-r".to_string(), file.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("-q".into());
    for i in 0..streams {
        args.push("-z".into());
        args.push(format!("follow,{kind},raw,{i}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let text = run(&args);
    let mut blocks: Vec<(usize, Followed)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Filter: tcp.stream eq ") {
            blocks.push((rest.trim().parse().unwrap(), Followed::default()));
        } else if let (Some(n), Some((_, b))) = (line.strip_prefix("Node "), blocks.last_mut()) {
            let (k, addr) = n.split_once(": ").unwrap();
            b.nodes[k.parse::<usize>().unwrap()] = normalise(addr);
        } else if line.starts_with("=====") || line.starts_with("Follow:") || line.is_empty() {
        } else if let Some((_, b)) = blocks.last_mut() {
            match line.strip_prefix('\t') {
                Some(hex) => b.sent[1].extend(unhex(hex)),
                None => b.sent[0].extend(unhex(line)),
            }
        }
    }
    blocks.sort_by_key(|b| b.0);
    assert_eq!(blocks.len(), streams, "{}: follow blocks", file.display());
    blocks.into_iter().map(|b| b.1).collect()
}

/// "127.0.0.1:80" and "[::1]:80" as Rust's `SocketAddr` prints them; tshark 4.0 writes IPv6
/// endpoints without brackets ("::1:8443").
fn normalise(endpoint: &str) -> String {
    let e = endpoint.trim();
    if e.parse::<std::net::SocketAddr>().is_ok() {
        return e.to_string();
    }
    let (ip, port) = e.rsplit_once(':').unwrap();
    format!("[{}]:{port}", ip.trim_matches(|c| c == '[' || c == ']'))
}

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// What tshark decodes as HTTP on one TCP stream: HTTP/1 request Hosts and response statuses
/// in order (interim ones included), and per HTTP/2 stream its request `:authority` and its
/// statuses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpView {
    pub h1_hosts: Vec<Option<String>>,
    pub h1_statuses: Vec<u16>,
    pub h2: std::collections::BTreeMap<u32, (Option<String>, Vec<u16>)>,
}

/// tshark's HTTP view of every TCP stream of `file`, with `extra` options (key log,
/// decode-as).
pub fn http_view(file: &Path, extra: &[String]) -> std::collections::BTreeMap<u64, HttpView> {
    let mut args = vec![
        "-r".to_string(),
        file.display().to_string(),
        "-T".into(),
        "json".into(),
        "--no-duplicate-keys".into(),
        "-J".into(),
        "tcp http http2".into(),
        "-Y".into(),
        "http || http2.type == 1 || http2.type == 5".into(),
    ];
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let packets: serde_json::Value = serde_json::from_str(&run(&args)).expect("tshark json");
    let mut out: std::collections::BTreeMap<u64, HttpView> = Default::default();
    for p in packets.as_array().into_iter().flatten() {
        let layers = &p["_source"]["layers"];
        let stream: u64 = layers["tcp"]["tcp.stream"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("tcp.stream");
        let view = out.entry(stream).or_default();
        for h in each(&layers["http"]) {
            if let Some(code) = find(h, "http.response.code") {
                view.h1_statuses.push(code.parse().unwrap());
            } else if find(h, "http.request.method").is_some() {
                view.h1_hosts.push(find(h, "http.host").map(str::to_string));
            }
        }
        for h2 in each(&layers["http2"]) {
            for s in each(&h2["http2.stream"]) {
                let kind = s["http2.type"].as_str();
                if kind != Some("1") && kind != Some("5") {
                    continue;
                }
                let mut id: u32 = s["http2.streamid"].as_str().unwrap().parse().unwrap();
                if kind == Some("5") {
                    id = find(s, "http2.push_promise.promised_stream_id")
                        .unwrap()
                        .parse()
                        .unwrap();
                }
                let mut method = false;
                let mut authority = None;
                let mut status: Option<u16> = None;
                for hdr in each(&s["http2.header"]) {
                    let value = hdr["http2.header.value"].as_str().map(str::to_string);
                    match hdr["http2.header.name"].as_str() {
                        Some(":method") => method = true,
                        Some(":authority") => authority = value,
                        Some(":status") => status = value.and_then(|v| v.parse().ok()),
                        _ => {}
                    }
                }
                let entry = view.h2.entry(id).or_default();
                if method || kind == Some("5") {
                    entry.0 = authority;
                }
                entry.1.extend(status);
            }
        }
    }
    out
}

/// A JSON value that is one object or an array of them, as tshark writes repeated nodes.
fn each(v: &serde_json::Value) -> Vec<&serde_json::Value> {
    match v {
        serde_json::Value::Array(a) => a.iter().collect(),
        serde_json::Value::Null => Vec::new(),
        o => vec![o],
    }
}

/// The first string value of `key` anywhere inside `v`.
fn find<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    match v {
        serde_json::Value::Object(m) => m
            .get(key)
            .and_then(|x| x.as_str())
            .or_else(|| m.values().find_map(|x| find(x, key))),
        serde_json::Value::Array(a) => a.iter().find_map(|x| find(x, key)),
        _ => None,
    }
}
