//! Reports whose connection records wait on a temporary file until they are written (the
//! command line's) say the same, in every format, as reports that keep them in a list:
//! every sample with its key log, on one and two threads, and all samples as the partitions
//! of one report.

mod common;

use misdirect::capture::InputName;
use misdirect::proto::tls::keylog::KeyLog;
use misdirect::report::{Format, Style};
use misdirect::Limits;
use std::path::Path;

fn keylog_for(file: &Path) -> KeyLog {
    let mut keylog = KeyLog::default();
    if let Ok(keys) = std::fs::read(file.with_extension("keys")) {
        keylog.add(&keys);
    }
    keylog
}

/// Every report of `groups` (partitions of inputs) in every format, from a list of records
/// and from spilled ones.
fn both_ways(groups: &[Vec<InputName>], keylog: &KeyLog, threads: usize) -> Vec<(String, String)> {
    let limits = Limits::default();
    let (kept, _) =
        misdirect::pipeline::analyze_partitions(groups, &limits, keylog, threads, &mut |_| {});
    let (spilled, _) = misdirect::pipeline::analyze_partitions_spilled(
        groups,
        &limits,
        keylog,
        threads,
        &mut |_| {},
    )
    .unwrap();
    let (kept, spilled) = (kept.unwrap(), spilled.unwrap());
    assert_eq!(spilled.connections.trouble(), None);
    assert_eq!(spilled.connections.len(), kept.connections.len() as u64);
    let style = Style { color: false };
    let mut pairs: Vec<(String, String)> =
        [Format::Json, Format::Ndjson, Format::Text, Format::Html]
            .into_iter()
            .map(|format| {
                let mut a = Vec::new();
                misdirect::report::write(&kept, format, style, &mut a).unwrap();
                let mut b = Vec::new();
                misdirect::report::write(&spilled, format, style, &mut b).unwrap();
                (String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap())
            })
            .collect();
    if misdirect::report::PARQUET_AVAILABLE {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("kept"), dir.path().join("spilled"));
        misdirect::report::write_parquet(&kept, &a).unwrap();
        misdirect::report::write_parquet(&spilled, &b).unwrap();
        for table in ["connections", "requests", "findings"] {
            let read = |d: &std::path::Path| {
                format!(
                    "{:?}",
                    std::fs::read(d.join(format!("{table}.parquet"))).unwrap()
                )
            };
            pairs.push((read(&a), read(&b)));
        }
    }
    pairs
}

#[test]
fn spilled_records_report_what_kept_ones_do() {
    for file in common::sample_captures() {
        let keylog = keylog_for(&file);
        for threads in [1, 2] {
            let groups = [vec![InputName::Path(file.clone())]];
            for (kept, spilled) in both_ways(&groups, &keylog, threads) {
                assert!(kept == spilled, "{} on {threads} threads", file.display());
            }
        }
    }
}

#[test]
fn spilled_partitions_report_what_kept_ones_do() {
    let groups: Vec<Vec<InputName>> = common::sample_captures()
        .into_iter()
        .map(|f| vec![InputName::Path(f)])
        .collect();
    for (kept, spilled) in both_ways(&groups, &KeyLog::default(), 2) {
        assert!(kept == spilled, "partitions differ");
    }
}
