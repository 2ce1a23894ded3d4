//! The `misdirect` binary: exit codes, error messages, formats, standard input, pipes.

mod common;

use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_misdirect"))
}

fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("misdirect-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A capture with one IPv4 and one IPv6 connection.
fn two_connections() -> Vec<u8> {
    let mut a = Conversation::new("10.0.0.1:40000", "10.0.0.2:443", Link::Ethernet, 1, 2);
    a.handshake();
    a.client_sends(b"hello", 100);
    a.close();
    let mut b = Conversation::new(
        "[2001:db8::1]:40001",
        "[2001:db8::2]:8443",
        Link::Ethernet,
        5,
        6,
    );
    b.ts_us = a.ts_us;
    b.handshake();
    b.server_sends(b"world", 100);
    b.close();
    let mut frames = a.frames;
    frames.extend(b.frames);
    pcap(LINKTYPE_ETHERNET, &frames)
}

#[test]
fn json_report_has_the_documented_fields() {
    let f = tmp("two.pcap", &two_connections());
    let out = run(&["analyze", f.to_str().unwrap(), "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema_version"], misdirect::analysis::SCHEMA_VERSION);
    let conns = v["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 2);
    assert_eq!(conns[0]["id"], 1);
    assert_eq!(conns[0]["client"], "10.0.0.1:40000");
    assert_eq!(conns[0]["server"], "10.0.0.2:443");
    assert_eq!(conns[1]["id"], 2);
    assert_eq!(conns[1]["client"], "[2001:db8::1]:40001");
    assert_eq!(conns[1]["server"], "[2001:db8::2]:8443");
    assert_eq!(conns[1]["server_to_client"]["stream_bytes"], 5);
    assert_eq!(conns[0]["close"], "fin");
    assert!(conns[0]["first_seen"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn text_report_lists_connections() {
    let f = tmp("two-text.pcap", &two_connections());
    let out = run(&["analyze", f.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("TCP connections: 2"), "{text}");
    assert!(text.contains("[2001:db8::1]:40001"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("1  10.0.0.1:40000")),
        "{text}"
    );
}

#[test]
fn standard_input_and_output_file() {
    let out_path =
        std::env::temp_dir().join(format!("misdirect-cli-out-{}.json", std::process::id()));
    let mut child = bin()
        .args([
            "analyze",
            "-",
            "-f",
            "json",
            "-o",
            out_path.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&two_connections())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
    assert_eq!(v["connections"].as_array().unwrap().len(), 2);
    assert_eq!(v["inputs"][0]["name"], "<stdin>");
}

fn assert_error(args: &[&str], needle: &str) {
    let out = run(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let err = stderr(&out);
    assert!(err.starts_with("misdirect: "), "{err}");
    assert!(err.contains(needle), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn unreadable_inputs_are_one_line_errors_with_exit_code_2() {
    let garbage = tmp(
        "garbage.pcap",
        b"this is not a capture file at all, just text\n",
    );
    assert_error(
        &["analyze", garbage.to_str().unwrap()],
        "garbage.pcap: not a pcap or pcapng file",
    );
    let empty = tmp("empty.pcap", b"");
    assert_error(
        &["analyze", empty.to_str().unwrap()],
        "empty.pcap: empty file",
    );
    assert_error(
        &["analyze", "/nonexistent/x.pcap"],
        "cannot open /nonexistent/x.pcap: No such file",
    );
    let mut cut = two_connections();
    cut.truncate(24 + 16 + 10); // the header and a piece of the first record
    let cut = tmp("cut.pcap", &cut);
    assert_error(
        &["analyze", cut.to_str().unwrap()],
        "cut.pcap: file cut short inside a block at byte 24",
    );
    assert_error(&["analyze", "-", "-"], "standard input");
    let dir = std::env::temp_dir().join(format!("misdirect-cli-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a capture").unwrap();
    assert_error(
        &["analyze", dir.to_str().unwrap()],
        "no pcap or pcapng file in this directory",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A directory: each capture file is a partition, each subdirectory one (its files merged by
/// time); one that cannot be read is named in the report and on stderr, the rest analysed.
#[test]
fn directories_are_partitions_and_a_bad_one_is_skipped_with_a_warning() {
    let dir = std::env::temp_dir().join(format!("misdirect-cli-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("link")).unwrap();
    std::fs::write(dir.join("a.pcap"), two_connections()).unwrap();
    std::fs::write(dir.join("link/1.pcap"), two_connections()).unwrap();
    std::fs::write(dir.join("b.pcap"), b"\x0a\x0d\x0d\x0a garbage").unwrap();
    std::fs::write(dir.join("a.keys"), "# not a capture").unwrap();
    let d = dir.to_str().unwrap();

    let out = run(&["partitions", d]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at = |p: &str| serde_json::json!([dir.join(p).to_str().unwrap()]);
    assert_eq!(lines, [at("a.pcap"), at("b.pcap"), at("link/1.pcap")]);

    let out = run(&["analyze", d, "-f", "json", "--threads", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: skipped"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("b.pcap"), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let conns = v["connections"].as_array().unwrap();
    // Two partitions of two connections, numbered on; each points at its own input.
    let ids: Vec<_> = conns.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    let sources: Vec<_> = conns.iter().map(|c| c["source"]["input"].clone()).collect();
    assert_eq!(sources, [0, 0, 1, 1]);
    let inputs = v["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 3);
    assert_eq!(inputs[2]["format"], "unreadable");
    assert_eq!(v["summary"]["tcp_connections"], 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_good_file_beside_a_bad_one_is_still_an_error() {
    let good = tmp("good.pcap", &two_connections());
    let bad = tmp("bad.pcap", b"\x0a\x0d\x0d\x0a garbage");
    let out = run(&["analyze", good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.pcap"));
}

#[test]
fn cut_short_after_some_packets_warns_and_reports() {
    let mut bytes = two_connections();
    bytes.truncate(bytes.len() - 7);
    let f = tmp("cut-late.pcap", &bytes);
    let out = run(&["analyze", f.to_str().unwrap(), "-f", "json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["connections"].as_array().unwrap().len(), 2);
    assert!(v["inputs"][0]["warnings"][0]
        .as_str()
        .unwrap()
        .contains("cut short"));
}

/// Without a usable temporary directory the records stay in memory: the same report, and a
/// warning saying why.
#[test]
fn no_temporary_file_keeps_records_in_memory_with_a_warning() {
    let f = tmp("spill.pcap", &two_connections());
    let normal = run(&["analyze", f.to_str().unwrap(), "-f", "json"]);
    let out = bin()
        .args(["analyze", f.to_str().unwrap(), "-f", "json"])
        .env("TMPDIR", "/nonexistent/misdirect")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, normal.stdout);
    assert!(
        stderr(&out).contains("connection records kept in memory: cannot make a temporary file"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&normal).contains("kept in memory"));
}

#[test]
fn closed_pipe_is_not_an_error() {
    let f = tmp("pipe.pcap", &two_connections());
    let script = format!(
        "set -o pipefail; '{}' analyze '{}' -f json | head -c 1 >/dev/null",
        env!("CARGO_BIN_EXE_misdirect"),
        f.display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn real_sample_runs_as_the_readme_says() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/apache-421-sni-mismatch.pcap");
    let out = run(&["analyze", sample.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("TCP connections: 2"));
}

/// Captured strings reach the terminal escaped: an HTTP/2 `:authority` carrying an escape
/// sequence (HPACK allows any byte) prints as text.
#[test]
fn text_report_lists_requests_and_escapes_captured_strings() {
    let authority = b"evil\x1b[2J.example";
    // :method GET, :scheme http, :path /, then :authority as a literal without indexing.
    let mut block = vec![0x82, 0x86, 0x84, 0x01, authority.len() as u8];
    block.extend(authority);
    let mut client = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    client.extend(h2_frame(4, 0, 0, &[]));
    client.extend(h2_frame(1, 0x5, 1, &block));
    // :status 421 as a literal with the static name of :status.
    let mut server = h2_frame(4, 0, 0, &[]);
    server.extend(h2_frame(1, 0x5, 1, &[0x08, 3, b'4', b'2', b'1']));
    let mut c = Conversation::new("10.0.0.1:40000", "10.0.0.2:8080", Link::Ethernet, 1, 2);
    c.handshake();
    c.client_sends(&client, 1000);
    c.server_sends(&server, 1000);
    c.close();
    let f = tmp("escape.pcap", &c.pcap());
    let out = run(&["analyze", f.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!out.stdout.contains(&0x1b), "raw ESC reached the terminal");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("HTTP 421 Misdirected Request: 1"), "{text}");
    assert!(
        text.contains("[1] GET evil\\u{1b}[2J.example / → 421"),
        "{text}"
    );
}

/// `--fail-on` turns findings into exit status 1 for scripts; the report is written anyway.
#[test]
fn fail_on_findings_exits_1() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/ftp-421.pcap");
    let f = sample.to_str().unwrap();
    let out = run(&["analyze", f, "--fail-on", "421"]);
    assert_eq!(out.status.code(), Some(0), "an FTP 421 is not an HTTP 421");
    let out = run(&[
        "analyze",
        f,
        "--fail-on",
        "http_421,ftp_421",
        "-f",
        "ndjson",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let last = String::from_utf8(out.stdout).unwrap();
    assert!(last
        .lines()
        .last()
        .unwrap()
        .contains("\"kind\":\"ftp_421\""));
    let out = run(&[
        "analyze",
        f,
        "--fail-on",
        "any",
        "-f",
        "html",
        "-o",
        "/dev/null",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(&["analyze", f, "--fail-on", "teapot"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown finding kind"),
        "{}",
        stderr(&out)
    );
}

/// Partitions are diagnosed on their own, with ids that follow each other: what a finding
/// says in words names the same connections as its fields.
#[test]
fn merged_partitions_explain_with_their_final_ids() {
    let dir = std::env::temp_dir().join(format!("misdirect-cli-merge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/chromium-coalesce-421");
    for copy in ["a", "b"] {
        std::fs::copy(
            format!("{sample}.pcapng"),
            dir.join(format!("{copy}.pcapng")),
        )
        .unwrap();
    }
    let keys = format!("{sample}.keys");
    let out = run(&[
        "analyze",
        dir.to_str().unwrap(),
        "-f",
        "json",
        "--keylog",
        &keys,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = v["findings"].as_array().unwrap();
    let one = findings.len() / 2;
    assert!(one > 0);
    let per_copy = v["connections"].as_array().unwrap().len() as u64 / 2;
    for (i, f) in findings.iter().enumerate() {
        let id = f["connection"].as_u64().unwrap();
        let text = f["explanation"].as_str().unwrap();
        assert!(text.starts_with(&format!("Connection {id} ")), "{text}");
        // The second copy's finding is the first one's, moved by one copy's connections.
        if i >= one {
            let first = &findings[i - one];
            assert_eq!(id, first["connection"].as_u64().unwrap() + per_copy);
            if let Some(r) = f["retry"]["connection"].as_u64() {
                assert_eq!(r, first["retry"]["connection"].as_u64().unwrap() + per_copy);
                assert!(text.contains(&format!("connection {r}")), "{text}");
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
