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
