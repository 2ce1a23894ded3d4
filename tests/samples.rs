//! The real-traffic corpus against its manifest (`samples/expected.tsv`, written by
//! `samples/generate.sh` from tshark's counts): every sample is listed, and misdirect finds
//! the listed number of TCP connections on the listed link type; and every sample reports
//! the same with any number of threads. Runs without tshark.

mod common;

use misdirect::capture::LinkType;
use std::path::Path;

#[test]
fn every_sample_matches_its_manifest_row() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let manifest = std::fs::read_to_string(dir.join("expected.tsv")).unwrap();
    let mut listed = Vec::new();
    for line in manifest.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, conns, link) = (cols[0], cols[1].parse::<usize>().unwrap(), cols[2]);
        listed.push(file.to_string());
        let (sink, stats) = common::run_files(
            vec![std::fs::read(dir.join(file)).unwrap()],
            &Default::default(),
        );
        assert_eq!(sink.conns.len(), conns, "{file}: TCP connections");
        assert!(stats.anomalies.is_empty(), "{file}: {:?}", stats.anomalies);
        let expected_link = match link {
            "Ethernet" => LinkType::Ethernet,
            "Linux cooked-mode capture v2" => LinkType::LinuxSll2,
            other => panic!("{file}: unmapped link type {other}"),
        };
        let cap = misdirect::capture::Capture::open(
            &[misdirect::capture::InputName::Path(dir.join(file))],
            &Default::default(),
        )
        .unwrap();
        assert_eq!(cap.summaries()[0].link_types, vec![expected_link], "{file}");
        for s in sink.conns.values() {
            assert!(
                s.gaps(misdirect::flow::Direction::ClientToServer)
                    .is_empty(),
                "{file}: gap"
            );
            assert!(
                s.gaps(misdirect::flow::Direction::ServerToClient)
                    .is_empty(),
                "{file}: gap"
            );
        }
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    on_disk.sort();
    listed.sort();
    assert_eq!(on_disk, listed, "samples on disk vs manifest");
}

#[test]
fn decryption_secrets_block_is_collected() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut cap = misdirect::capture::Capture::open(
        &[misdirect::capture::InputName::Path(
            dir.join("mtu1500-tls13-h2-dsb.pcapng"),
        )],
        &Default::default(),
    )
    .unwrap();
    let mut secrets = cap.take_secrets();
    while cap.advance() {
        secrets.extend(cap.take_secrets());
    }
    assert_eq!(secrets.len(), 1);
    assert_eq!(
        secrets[0].secrets_type,
        misdirect::capture::DecryptionSecret::TLS_KEY_LOG
    );
    let keys = std::fs::read(dir.join("mtu1500-tls13-h2.keys")).unwrap();
    assert_eq!(secrets[0].data, keys);
    // Secrets never show in debug output.
    assert!(!format!("{:?}", secrets[0]).contains("TRAFFIC_SECRET"));
}

/// Every sample, with its key log (or the secrets its pcapng carries), gives the same report
/// with one thread and with two, three and four (`pipeline::handoff`: the reading thread
/// owns a share of the connections and one to three workers the rest).
#[test]
fn every_sample_reports_the_same_with_threads() {
    for file in common::sample_captures() {
        let report = |threads: usize| {
            let r = common::analyze_path_with(&file, &misdirect::Limits::default(), threads);
            serde_json::to_string(&r).unwrap()
        };
        let one = report(1);
        for threads in [2, 3, 4] {
            assert!(
                report(threads) == one,
                "{}: {threads} threads",
                file.display()
            );
        }
    }
}
