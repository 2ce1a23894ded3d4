//! A legacy pcap read in parts by several threads (`pipeline::split`) reports what one thread
//! reports, byte for byte: on every sample, on files cut short anywhere, and on traffic made
//! to mislead the search for record boundaries (payloads that hold pcap records) or to need
//! every part at once (IP fragments).

mod common;

use common::{fragment_ipv4, Conversation, Frame, Link};
use misdirect::capture::{Capture, InputName};
use misdirect::proto::tls::keylog::KeyLog;
use misdirect::Limits;
use std::path::{Path, PathBuf};

fn keylog_for(file: &Path) -> KeyLog {
    let mut keylog = KeyLog::default();
    let keys = file.with_extension("keys");
    if keys.exists() {
        keylog.add(&std::fs::read(keys).unwrap());
    }
    keylog
}

/// The one-thread report and the in-parts reports, as JSON.
fn one_thread(file: &Path, keylog: &KeyLog) -> String {
    let inputs = [InputName::Path(file.to_path_buf())];
    let capture = Capture::open(&inputs, &Limits::default()).unwrap();
    let r =
        misdirect::pipeline::analyze_capture(capture, &Limits::default(), keylog, 1, &mut |_| {});
    serde_json::to_string(&r).unwrap()
}

fn in_parts(file: &Path, keylog: &KeyLog, threads: usize, part: usize) -> String {
    let inputs = [InputName::Path(file.to_path_buf())];
    let r =
        misdirect::pipeline::analyze_in_parts(&inputs, &Limits::default(), keylog, threads, part)
            .unwrap()
            .expect("a legacy pcap file is read in parts");
    serde_json::to_string(&r).unwrap()
}

fn assert_same_in_parts(file: &Path, parts: &[usize]) {
    let keylog = keylog_for(file);
    let one = one_thread(file, &keylog);
    for &part in parts {
        for threads in [2, 3] {
            assert!(
                in_parts(file, &keylog, threads, part) == one,
                "{}: {threads} threads, parts of {part} bytes",
                file.display()
            );
        }
    }
}

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("misdirect-split-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Parts smaller than a record (most have no record start), about one record, and many.
#[test]
fn every_pcap_sample_reads_the_same_in_parts() {
    let mut read = 0;
    for file in common::sample_captures() {
        if file.extension().is_some_and(|e| e == "pcapng") {
            continue;
        }
        assert_same_in_parts(&file, &[61, 1500, 65536]);
        read += 1;
    }
    assert!(read > 20, "{read} samples");
}

/// A file cut inside a record's header, inside its data, and between records: everything
/// before the cut, and the same warning.
#[test]
fn a_file_cut_anywhere_reads_the_same_in_parts() {
    let sample = common::samples_dir().join("h2-tls13.pcap");
    let bytes = std::fs::read(&sample).unwrap();
    let keys = std::fs::read(sample.with_extension("keys")).unwrap();
    for cut in [
        bytes.len() - 1,
        bytes.len() - 7,
        bytes.len() * 2 / 3,
        bytes.len() / 2 + 5,
        bytes.len() / 3,
        400,
    ] {
        let file = temp_file(&format!("cut-{cut}.pcap"), &bytes[..cut]);
        std::fs::write(file.with_extension("keys"), &keys).unwrap();
        let keylog = keylog_for(&file);
        let one = one_thread(&file, &keylog);
        assert!(one.contains("cut short"), "cut at {cut}: no warning");
        for part in [97, 4096] {
            assert!(
                in_parts(&file, &keylog, 2, part) == one,
                "cut at {cut}, parts of {part} bytes"
            );
        }
    }
}

/// A download of a pcap file (whose records look like the capture's own, timestamps and
/// all), some of it in IP fragments, beside other connections.
#[test]
fn payloads_of_pcap_records_and_ip_fragments_read_the_same_in_parts() {
    let inner = std::fs::read(common::samples_dir().join("http1-keepalive-reuse.pcap")).unwrap();
    let mut frames = Vec::new();
    for i in 0..4u16 {
        let mut c = Conversation::new(
            &format!("10.0.0.{}:{}", 1 + i, 40000 + i),
            "10.0.1.1:80",
            Link::Ethernet,
            1000 * u32::from(i),
            7000,
        );
        c.handshake();
        c.client_sends(
            format!("GET /capture-{i}.pcap HTTP/1.1\r\nHost: files.example\r\n\r\n").as_bytes(),
            1400,
        );
        let mut response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/vnd.tcpdump.pcap\r\n\r\n",
            inner.len()
        )
        .into_bytes();
        response.extend_from_slice(&inner);
        // Odd segment sizes put the inner records everywhere in the outer ones.
        c.server_sends(&response, 1000 + 37 * usize::from(i));
        c.close();
        frames.extend(c.frames);
    }
    // Some segments travel as IP fragments.
    let mut out = Vec::new();
    for (n, f) in frames.into_iter().enumerate() {
        let ip = common::encap::ip_of_frame(&f.data).map(<[u8]>::to_vec);
        match ip {
            Some(ip) if n % 5 == 0 && ip.len() > 200 => {
                for frag in fragment_ipv4(&ip, 96, n as u16) {
                    out.push(Frame {
                        ts: f.ts,
                        ..Frame::new(0, common::encap::eth_ip(&frag))
                    });
                }
            }
            _ => out.push(f),
        }
    }
    out.sort_by_key(|f| f.ts);
    let file = temp_file("pcap-downloads.pcap", &common::pcap(1, &out));
    let one = one_thread(&file, &KeyLog::default());
    assert!(one.contains("capture-3.pcap"), "the requests are found");
    assert!(one.contains("\"ip_datagrams_reassembled\":"), "{one}");
    for part in [61, 700, 1500, 4096, 65536] {
        for threads in [2, 3] {
            assert!(
                in_parts(&file, &KeyLog::default(), threads, part) == one,
                "{threads} threads, parts of {part} bytes"
            );
        }
    }
}
