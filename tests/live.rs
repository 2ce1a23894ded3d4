//! `misdirect live` on real traffic (build feature `live`; needs root or CAP_NET_RAW):
//! a TLS HTTP/2 server and curl on loopback with a growing key log, and a sample replayed
//! with tcpreplay into a network namespace. CI runs these as root; elsewhere they say they
//! skipped unless `MISDIRECT_REQUIRE_LIVE` is set.
#![cfg(feature = "live")]

mod common;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_misdirect")
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether this process may capture; a skip is loud, and fatal when CI requires the tests.
fn can_capture() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        assert!(
            std::env::var_os("MISDIRECT_REQUIRE_LIVE").is_none(),
            "live tests need root (MISDIRECT_REQUIRE_LIVE is set)"
        );
        eprintln!("SKIPPED: live capture tests need root");
    }
    root
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("misdirect-live-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Kills the child when dropped, so a failing test leaves no process behind.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `misdirect live ARGS`, waits until it captures, and returns it with a channel of
/// its stderr lines (and when each came).
fn start_live(prefix: &[&str], args: &[String]) -> (Reaper, mpsc::Receiver<(Instant, String)>) {
    let mut cmd = Command::new(prefix.first().copied().unwrap_or(bin()));
    if !prefix.is_empty() {
        cmd.args(&prefix[1..]).arg(bin());
    }
    let mut child = cmd
        .arg("live")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), line));
        }
    });
    let child = Reaper(child);
    let (_, first) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("live started");
    assert!(first.contains("capturing on"), "{first}");
    // libpcap is attached; give the kernel a moment to start delivering.
    std::thread::sleep(Duration::from_millis(300));
    (child, rx)
}

/// Stops `misdirect live` with SIGTERM, as a service manager would, and waits for it.
fn stop(mut live: Reaper) -> Instant {
    let pid = live.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = live.0.wait().unwrap();
    assert!(status.success(), "misdirect live exited with {status}");
    Instant::now()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn offline(file: &Path, keylog: &Path) -> Value {
    common::analyze_cli(&[file.as_os_str(), "--keylog".as_ref(), keylog.as_os_str()])
}

/// Owned arguments for `start_live`.
fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The findings in the terms that do not depend on when the packets were captured.
fn finding_facts(report: &Value) -> Vec<Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            serde_json::json!({
                "kind": f["kind"], "connection": f["connection"], "stream_id": f["stream_id"],
                "sni": f["sni"], "authority": f["authority"], "causes": f["causes"],
                "retry": f["retry"].get("connection").map(|_| serde_json::json!(
                    [f["retry"]["connection"], f["retry"]["status"]])),
            })
        })
        .collect()
}

#[test]
fn live_reports_a_421_as_it_happens_and_its_report_equals_the_offline_one() {
    if !can_capture() {
        return;
    }
    let dir = scratch("h2");
    let port = 20_000 + (std::process::id() % 20_000) as u16;
    let data = repo().join("tests/data/live");
    let mut server = Command::new("/usr/bin/python3")
        .arg(repo().join("tests/live/h2_server.py"))
        .arg(data.join("cert.pem"))
        .arg(data.join("key.pem"))
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    let _server = Reaper(server);
    assert_eq!(ready.trim(), "ready");

    // The key log does not exist yet: curl creates it, and live follows it as it grows.
    let keylog = dir.join("keys.log");
    let written = dir.join("capture.pcapng");
    let report = dir.join("live.json");
    let args = owned(&[
        "-i",
        "lo",
        "--bpf",
        &format!("tcp port {port}"),
        "--keylog",
        keylog.to_str().unwrap(),
        "-w",
        written.to_str().unwrap(),
        "-f",
        "json",
        "-o",
        report.to_str().unwrap(),
        "--duration",
        "60s",
    ]);
    let (live, lines) = start_live(&[], &args);
    let url = |p: &str| format!("https://a.example.test:{port}{p}");
    let resolve = format!("a.example.test:{port}:127.0.0.1");
    let curl = Command::new("curl")
        .env("SSLKEYLOGFILE", &keylog)
        .args([
            "-sk",
            "--http2",
            "--resolve",
            &resolve,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} ",
        ])
        .arg(url("/ok"))
        .args([
            "--next",
            "-sk",
            "--http2",
            "--resolve",
            &resolve,
            "-o",
            "/dev/null",
        ])
        .args(["-w", "%{http_code}", "-H", "Host: b.example.test"])
        .arg(url("/b"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&curl.stdout), "200 421");

    // The 421 is printed while the capture is still running.
    let (seen_at, line) = loop {
        let (at, line) = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("a 421 line");
        if line.contains("HTTP 421") {
            break (at, line);
        }
    };
    assert!(
        line.contains("[sni_mismatch, connection_reuse]") && line.contains("b.example.test"),
        "{line}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let stopped_at = stop(live);
    assert!(stopped_at.duration_since(seen_at) >= Duration::from_millis(400));

    let live = json(&report);
    let off = offline(&written, &keylog);
    assert_eq!(
        live["connections"], off["connections"],
        "connections differ"
    );
    assert_eq!(live["findings"], off["findings"], "findings differ");
    assert_eq!(live["anomalies"], off["anomalies"]);
    assert_eq!(live["summary"]["packets"], off["summary"]["packets"]);
    assert_eq!(live["inputs"][0]["name"], "live:lo");
    assert!(live["summary"]["capture"]["received"].as_u64().unwrap() > 0);
    let f = &live["findings"][0];
    assert_eq!(f["kind"], "http_421");
    assert_eq!(live["connections"][0]["tls"]["decrypted"], true);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Removes the test's network namespace and veth pair, whatever happens.
struct Netns {
    name: String,
    outside: String,
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.outside])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().unwrap();
    assert!(st.success(), "ip {args:?}");
}

#[test]
fn a_sample_replayed_onto_an_interface_gives_the_offline_findings() {
    if !can_capture() {
        return;
    }
    let tag = std::process::id() % 100_000;
    let ns = Netns {
        name: format!("mdlive{tag}"),
        outside: format!("mdv{tag}a"),
    };
    let inside = format!("mdv{tag}b");
    ip(&["netns", "add", &ns.name]);
    ip(&[
        "link",
        "add",
        &ns.outside,
        "type",
        "veth",
        "peer",
        "name",
        &inside,
    ]);
    ip(&["link", "set", &inside, "netns", &ns.name]);
    ip(&["link", "set", &ns.outside, "up"]);
    ip(&[
        "netns", "exec", &ns.name, "ip", "link", "set", &inside, "up",
    ]);

    let dir = scratch("replay");
    let sample = repo().join("samples/chromium-coalesce-421.pcapng");
    let keys = repo().join("samples/chromium-coalesce-421.keys");
    let report = dir.join("live.json");
    let args = owned(&[
        "-i",
        &inside,
        "--keylog",
        keys.to_str().unwrap(),
        "-f",
        "json",
        "-o",
        report.to_str().unwrap(),
        "--duration",
        "60s",
    ]);
    let (live, _lines) = start_live(&["ip", "netns", "exec", &ns.name], &args);
    let replay = Command::new("tcpreplay")
        .args(["-q", "-i", &ns.outside, "--topspeed"])
        .arg(&sample)
        .output()
        .unwrap();
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    std::thread::sleep(Duration::from_millis(700));
    stop(live);
    let live = json(&report);
    let off = offline(&sample, &keys);
    assert_eq!(finding_facts(&live), finding_facts(&off));
    assert_eq!(
        live["summary"]["packets"]["tcp"],
        off["summary"]["packets"]["tcp"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
