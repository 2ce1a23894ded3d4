//! The benchmark capture synthesizer (`examples/synth`): what it says it wrote is what
//! misdirect finds, with and without the key log, with no anomaly; and it is deterministic.

#[path = "../examples/synth/gen.rs"]
mod gen;

use misdirect::analysis::Report;
use misdirect::capture::{Capture, FileSource, InputName};
use misdirect::proto::tls::keylog::KeyLog;
use misdirect::Limits;
use std::collections::BTreeMap;
use std::path::Path;

fn analyze(pcap: &Path, keys: Option<&[u8]>) -> Report {
    analyze_with(pcap, keys, &Limits::default()).0
}

/// The report, and how many records were decrypted as they came rather than held.
fn analyze_with(pcap: &Path, keys: Option<&[u8]>, limits: &Limits) -> (Report, u64) {
    let mut keylog = KeyLog::default();
    if let Some(k) = keys {
        keylog.add(k);
    }
    let budget = keylog.record_budget_handle();
    let src = FileSource::open(&InputName::Path(pcap.to_path_buf()), 1 << 24).unwrap();
    let cap = Capture::from_sources(vec![src]).unwrap();
    let r = misdirect::pipeline::analyze(cap, limits, keylog, &mut |_| {});
    (r, budget.streamed())
}

/// The report, and the HTTP 421s a live watcher on the same ledger announced as they were
/// parsed, as (connection, request index).
fn watched(pcap: &Path, keys: &[u8]) -> (Report, Vec<(u64, usize)>) {
    use std::sync::{Arc, Mutex};
    let mut keylog = KeyLog::default();
    keylog.add(keys);
    let limits = Limits::default();
    let mut ledger = misdirect::analysis::Ledger::new(&keylog, &limits);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let into = Arc::clone(&seen);
    ledger.watch(Box::new(move |f| {
        into.lock()
            .unwrap()
            .push((f.connection.0, f.request.unwrap()))
    }));
    let src = FileSource::open(&InputName::Path(pcap.to_path_buf()), 1 << 24).unwrap();
    let mut cap = Capture::from_sources(vec![src]).unwrap();
    let run = misdirect::pipeline::run(&mut cap, &limits, &mut ledger, &mut |_| {});
    let report = ledger.into_report(cap.summaries(), run);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    (report, seen)
}

/// Every HTTP 421 of the report, as (connection, request index).
fn all_421(r: &Report) -> Vec<(u64, usize)> {
    let mut v: Vec<_> = r
        .connections
        .iter()
        .flat_map(|c| {
            c.requests
                .iter()
                .enumerate()
                .filter(|(_, e)| e.status == Some(421))
                .map(|(i, _)| (c.id.0, i))
        })
        .collect();
    v.sort();
    v
}

/// A little-endian pcap without every `nth` packet longer than 1000 bytes.
fn drop_packets(pcap: &[u8], nth: usize) -> Vec<u8> {
    assert_eq!(pcap[..4], [0xd4, 0xc3, 0xb2, 0xa1], "little-endian pcap");
    let mut out = pcap[..24].to_vec();
    let (mut at, mut long) = (24, 0);
    while let Some(head) = pcap.get(at..at + 16) {
        let len = u32::from_le_bytes(head[8..12].try_into().unwrap()) as usize;
        let end = at + 16 + len;
        if len > 1000 {
            long += 1;
        }
        if len <= 1000 || long % nth != 0 {
            out.extend_from_slice(&pcap[at..end]);
        }
        at = end;
    }
    out
}

fn count_421(r: &Report) -> usize {
    r.connections
        .iter()
        .flat_map(|c| &c.requests)
        .filter(|e| e.status == Some(421))
        .count()
}

#[test]
fn synthesized_capture_is_found_as_described() {
    let dir = std::env::temp_dir().join(format!("misdirect-synth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (pcap, keys) = (dir.join("s.pcap"), dir.join("s.keys"));
    let cfg = gen::Config::new(3 << 20, 7);
    let expect = gen::synthesize(
        &cfg,
        std::fs::File::create(&pcap).unwrap(),
        std::fs::File::create(&keys).unwrap(),
    )
    .unwrap();
    assert!(expect.http_421 > 0 && expect.h2c_connections > 0 && expect.http1_connections > 0);
    assert!(expect.out_of_order_segments > 0 && expect.retransmitted_segments > 0);
    assert_eq!(std::fs::metadata(&pcap).unwrap().len(), expect.bytes);

    // Deterministic: the same seed gives the same bytes.
    let mut again = Vec::new();
    let mut again_keys = Vec::new();
    gen::synthesize(&cfg, &mut again, &mut again_keys).unwrap();
    assert_eq!(again, std::fs::read(&pcap).unwrap());
    assert_eq!(again_keys, std::fs::read(&keys).unwrap());

    let key_text = std::fs::read(&keys).unwrap();
    let r = analyze(&pcap, Some(&key_text));
    let s = &r.summary;
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    assert!(r.connections.iter().all(|c| c.anomalies.is_empty()));
    assert_eq!(s.packets.tcp, expect.packets);
    assert_eq!(s.tcp_connections, expect.connections);
    assert_eq!(s.tls.connections, expect.tls_connections);
    assert_eq!(s.tls.decrypted, expect.tls_connections);
    let mut snis = BTreeMap::new();
    for c in &r.connections {
        if let Some(sni) = c
            .tls
            .as_ref()
            .and_then(|t| t.sni.as_deref().map(str::to_string))
        {
            *snis.entry(sni).or_insert(0u64) += 1;
        }
    }
    assert_eq!(snis, expect.snis);
    let requests: usize = r.connections.iter().map(|c| c.requests.len()).sum();
    assert_eq!(requests as u64, expect.requests);
    assert_eq!(count_421(&r) as u64, expect.http_421);
    assert_eq!(r.findings.len() as u64, expect.http_421);
    assert!(r.findings.iter().all(|f| f.retry.is_some()));

    // With no memory to hold records in, long records are decrypted as their segments
    // come: the same report, to the byte (a record's plaintext is dated when the record
    // began, held or not).
    let json = |r: &Report| serde_json::to_string(r).unwrap();
    let (held, none) = analyze_with(&pcap, Some(&key_text), &Limits::default());
    let no_room = Limits {
        max_tls_records_held: 0,
        ..Limits::default()
    };
    let (streamed, n) = analyze_with(&pcap, Some(&key_text), &no_room);
    assert_eq!(none, 0);
    assert!(n > 100, "{n} records streamed");
    assert!(
        json(&held) == json(&streamed),
        "streaming changed the report"
    );
    // Cut short, the capture ends inside records, held or streamed: the same report too
    // (what a streamed record passed on before the cut, a held one passes on at the cut).
    let cut = dir.join("cut.pcap");
    let bytes = std::fs::read(&pcap).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 5]).unwrap();
    let (held, _) = analyze_with(&cut, Some(&key_text), &Limits::default());
    let (streamed, n) = analyze_with(&cut, Some(&key_text), &no_room);
    assert!(n > 0);
    assert!(
        json(&held) == json(&streamed),
        "streaming changed the cut report"
    );
    // A live watcher announces every 421 of the report, those in records the end of the
    // capture cut short too (their plaintext is passed on only then).
    let (report, seen) = watched(&cut, &key_text);
    assert!(json(&report) == json(&held));
    assert_eq!(seen, all_421(&report));

    // Some long packets lost: each gap stops its direction inside a record, held or
    // streamed, and the report is the same again.
    let gaps = dir.join("gaps.pcap");
    std::fs::write(&gaps, drop_packets(&bytes, 97)).unwrap();
    let (held, _) = analyze_with(&gaps, Some(&key_text), &Limits::default());
    let (streamed, n) = analyze_with(&gaps, Some(&key_text), &no_room);
    assert!(n > 0);
    assert!(held.anomalies.get(misdirect::anomaly::Anomaly::TlsGap) > 0);
    assert!(
        json(&held) == json(&streamed),
        "streaming changed the report with gaps"
    );

    // Without keys: the same connections and SNIs, the cleartext requests only.
    let r = analyze(&pcap, None);
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
    assert_eq!(r.summary.tcp_connections, expect.connections);
    assert_eq!(r.summary.tls.decrypted, 0);
    let requests: usize = r.connections.iter().map(|c| c.requests.len()).sum();
    assert_eq!(requests as u64, expect.requests_cleartext);
    assert_eq!(count_421(&r), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
