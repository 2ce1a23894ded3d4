//! The 421 diagnosis and its reports: findings of every sample against reviewed snapshots,
//! the JSON contract, NDJSON, and the HTML timeline in headless Chromium.
//!
//! Snapshots live in `tests/snapshots/<sample>.findings.json`; after a deliberate change,
//! regenerate them with `UPDATE_SNAPSHOTS=1 cargo test --test report` and review the diff.

mod common;

use common::{Conversation, Link};
use misdirect::analysis::Report;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn samples() -> PathBuf {
    common::samples_dir()
}

fn analyze(file: &Path) -> Report {
    common::analyze_path(file)
}

fn render(report: &Report, format: misdirect::report::Format) -> String {
    let mut out = Vec::new();
    let style = misdirect::report::Style { color: false };
    misdirect::report::write(report, format, style, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Findings without times (the rest is stable across regenerations of the same scenario
/// except ports and times, which the snapshot keeps only where the finding shows them).
fn findings_snapshot(report: &Report) -> Value {
    let mut v = serde_json::to_value(&report.findings).unwrap();
    for f in v.as_array_mut().unwrap() {
        let o = f.as_object_mut().unwrap();
        o.remove("time");
        if let Some(r) = o.get_mut("retry").and_then(Value::as_object_mut) {
            // Milliseconds vary between runs of the same scenario; that a retry came does not.
            r.insert("after_ms".into(), Value::from("…"));
        }
        let text = o["explanation"].as_str().unwrap().to_string();
        let text = regex_lite_ms(&text);
        o.insert("explanation".into(), Value::from(text));
    }
    v
}

/// "5.1 ms later" → "… ms later".
fn regex_lite_ms(s: &str) -> String {
    let mut out = Vec::new();
    for w in s.split(' ') {
        let looks_ms = w.contains('.')
            && !w.ends_with('.')
            && w.chars().all(|c| c.is_ascii_digit() || c == '.');
        out.push(if looks_ms { "…" } else { w });
    }
    out.join(" ")
}

/// Every sample's findings, against the reviewed snapshot.
#[test]
fn findings_of_every_sample_match_their_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let files = common::sample_captures();
    let mut failures = Vec::new();
    for file in files {
        let report = analyze(&file);
        if report.findings.is_empty() {
            continue;
        }
        let got = serde_json::to_string_pretty(&findings_snapshot(&report)).unwrap() + "\n";
        let name = file.file_name().unwrap().to_str().unwrap();
        let snap = dir.join(format!("{name}.findings.json"));
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&snap, &got).unwrap();
            continue;
        }
        match std::fs::read_to_string(&snap) {
            Ok(want) if want == got => {}
            Ok(_) => failures.push(format!(
                "{name}: findings differ from {}\n{got}",
                snap.display()
            )),
            Err(_) => failures.push(format!("{name}: no snapshot {}\n{got}", snap.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The browser case the product exists for, in the contract's terms.
#[test]
fn chromium_coalescing_is_explained_in_the_json_contract() {
    let r = analyze(&samples().join("chromium-coalesce-421.pcapng"));
    let v: Value = serde_json::from_str(&render(&r, misdirect::report::Format::Json)).unwrap();
    let c0 = &v["connections"][0];
    for key in ["id", "client", "server", "tls", "requests"] {
        assert!(c0.get(key).is_some(), "connections[].{key}");
    }
    for key in ["sni", "alpn", "version", "ech", "server_names", "decrypted"] {
        assert!(c0["tls"].get(key).is_some(), "tls.{key}");
    }
    for key in ["stream_id", "method", "authority", "path", "status"] {
        assert!(c0["requests"][0].get(key).is_some(), "requests[].{key}");
    }
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1);
    let f = &findings[0];
    assert_eq!(f["kind"], "http_421");
    assert_eq!(f["connection"], 1);
    assert_eq!(f["sni"], "a.example.test");
    assert_eq!(f["authority"], "b.example.test:7443");
    assert_eq!(
        f["causes"],
        serde_json::json!(["sni_mismatch", "connection_reuse"])
    );
    assert_eq!(f["retry"]["connection"], 3);
    assert_eq!(f["retry"]["status"], 200);
    assert_eq!(f["evidence"]["certificate_covers_authority"], true);
    let text = f["explanation"].as_str().unwrap();
    for words in [
        "Connection 1",
        "SNI a.example.test",
        "certificate for *.example.test",
        "b.example.test:7443",
        "421 Misdirected Request",
        "retried",
        "connection 3",
        "got 200",
    ] {
        assert!(text.contains(words), "{words:?} missing from: {text}");
    }
}

#[test]
fn reverse_proxy_421_names_the_wrong_upstream_sni() {
    let r = analyze(&samples().join("reverse-proxy-421.pcapng"));
    let front = &r.findings[0];
    let causes: Vec<&str> = front.causes.iter().map(|c| c.name()).collect();
    assert_eq!(causes, ["upstream_sni_mismatch", "upstream_421"]);
    let up = front.upstream.as_ref().unwrap();
    assert_eq!(up.sni.as_deref(), Some("b.example.test"));
    assert_eq!(up.status, Some(421));
    let upstream = &r.findings[1];
    assert_eq!(upstream.connection, up.connection);
    assert_eq!(
        upstream.downstream.as_ref().unwrap().connection,
        front.connection
    );
    assert!(
        front.retry.is_none(),
        "the proxy's own upstream request is not a retry"
    );
}

#[test]
fn ftp_and_smtp_421_are_findings_of_their_own() {
    for (name, kind) in [("ftp-421.pcap", "ftp_421"), ("smtp-421.pcap", "smtp_421")] {
        let r = analyze(&samples().join(name));
        let kinds: Vec<&str> = r.findings.iter().map(|f| f.kind.name()).collect();
        assert_eq!(kinds, [kind], "{name}");
        let text = render(&r, misdirect::report::Format::Text);
        assert!(
            !text.contains("HTTP 421"),
            "{name}: counted as HTTP:\n{text}"
        );
    }
}

#[test]
fn ndjson_lines_stand_alone() {
    let r = analyze(&samples().join("chromium-coalesce-421.pcapng"));
    let text = render(&r, misdirect::report::Format::Ndjson);
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["record"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"summary"));
    assert_eq!(kinds.iter().filter(|k| **k == "connection").count(), 3);
    assert_eq!(kinds.iter().filter(|k| **k == "request").count(), 3);
    assert_eq!(kinds.iter().filter(|k| **k == "finding").count(), 1);
    let req = records
        .iter()
        .find(|r| r["record"] == "request" && r["status"] == 421)
        .unwrap();
    assert_eq!(
        (req["connection"].as_u64(), req["index"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(records.iter().all(|r| r.get("requests").is_none()));
}

fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if found.is_none() {
        assert!(
            std::env::var_os("MISDIRECT_REQUIRE_CHROMIUM").is_none(),
            "chromium is required (MISDIRECT_REQUIRE_CHROMIUM is set) but not installed"
        );
        eprintln!("SKIPPED: chromium not installed (apt-get install chromium); CI installs it");
    }
    found
}

/// The DOM after the page's scripts ran, from headless Chromium.
fn dump_dom(browser: &str, html: &str, name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("misdirect-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join(name);
    std::fs::write(&page, html).unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--virtual-time-budget=2000",
            &format!(
                "--user-data-dir={}",
                dir.join(format!("profile-{name}")).display()
            ),
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn html_timeline_renders_the_421_and_its_retry_in_chromium() {
    let Some(browser) = chromium() else { return };
    let r = analyze(&samples().join("chromium-coalesce-421.pcapng"));
    let html = render(&r, misdirect::report::Format::Html);
    // No network fetches: nothing loads from elsewhere, and the page's policy forbids it.
    for fetch in [
        "src=\"http",
        "href=\"http",
        "<link",
        "fetch(",
        "XMLHttpRequest",
        "@import",
    ] {
        assert!(!html.contains(fetch), "{fetch}");
    }
    assert!(html.contains("default-src 'none'"));
    let dom = dump_dom(browser, &html, "coalesce.html");
    assert_eq!(
        dom.matches("class=\"lane\"").count(),
        3,
        "one lane per connection"
    );
    assert_eq!(dom.matches("mark mark-421").count(), 1);
    assert!(dom.contains("mark ok retry"), "the retry is highlighted");
    assert!(dom.contains("<line"), "the retry is linked");
    assert!(dom.contains("HTTP/2 connection coalescing"));
}

/// A capture whose Host and Via headers carry markup: the page shows it as text and runs
/// none of it.
#[test]
fn html_escapes_hostile_captured_strings() {
    let Some(browser) = chromium() else { return };
    let evil_host = "<script>document.body.setAttribute('data-pwned','host')</script>";
    // httparse refuses markup characters in a request target; a header value takes them.
    let evil_ua = "<img src=x onerror=\"document.body.setAttribute('data-pwned','ua')\">";
    let mut c = Conversation::new("10.0.0.1:40000", "10.0.0.2:8080", Link::Ethernet, 1, 2);
    c.handshake();
    let req = format!("GET / HTTP/1.1\r\nHost: {evil_host}\r\nVia: {evil_ua}\r\n\r\n");
    c.client_sends(req.as_bytes(), 1400);
    c.server_sends(
        b"HTTP/1.1 421 Misdirected Request\r\nContent-Length: 0\r\n\r\n",
        1400,
    );
    c.close();
    let file = std::env::temp_dir().join(format!("misdirect-hostile-{}.pcap", std::process::id()));
    std::fs::write(&file, c.pcap()).unwrap();
    let r = analyze(&file);
    let _ = std::fs::remove_file(&file);
    assert_eq!(r.connections[0].requests[0].status, Some(421));
    let dom = dump_dom(
        browser,
        &render(&r, misdirect::report::Format::Html),
        "hostile.html",
    );
    // The scripts would set the attribute; as text the words appear only quoted.
    assert!(
        !dom.contains("data-pwned=\""),
        "captured markup ran:\n{dom}"
    );
    assert!(
        dom.contains("&lt;script&gt;"),
        "the host is shown as text:\n{dom}"
    );
    assert_eq!(dom.matches("mark mark-421").count(), 1);
}
