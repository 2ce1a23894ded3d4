//! A legacy pcap read in parts by several threads (`pipeline::split`) reports what one thread
//! reports, byte for byte: on every sample, on files cut short anywhere, and on traffic made
//! to mislead the search for record boundaries (payloads that hold pcap records) or to need
//! every part at once (IP fragments).

mod common;

use common::{fragment_ipv4, Conversation, Frame, Link};
use misdirect::capture::write::PcapNgWriter;
use misdirect::capture::{Capture, DecryptionSecret, InputName};
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
            .expect("a capture file is read in parts");
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
fn every_sample_reads_the_same_in_parts() {
    for file in common::sample_captures() {
        assert_same_in_parts(&file, &[61, 1500, 65536]);
    }
}

/// A file cut inside a record's header, inside its data, and between records: everything
/// before the cut, and the same warning.
#[test]
fn a_file_cut_anywhere_reads_the_same_in_parts() {
    for sample in ["h2-tls13.pcap", "mtu1500-tls13-h2.pcapng"] {
        let sample = common::samples_dir().join(sample);
        let bytes = std::fs::read(&sample).unwrap();
        let keys = std::fs::read(sample.with_extension("keys")).unwrap();
        let name = sample.file_name().unwrap().to_string_lossy().to_string();
        for cut in [
            bytes.len() - 1,
            bytes.len() - 7,
            bytes.len() * 2 / 3,
            bytes.len() / 2 + 5,
            bytes.len() / 3,
            1200,
        ] {
            let file = temp_file(&format!("cut-{cut}-{name}"), &bytes[..cut]);
            std::fs::write(file.with_extension("keys"), &keys).unwrap();
            let keylog = keylog_for(&file);
            let one = one_thread(&file, &keylog);
            assert!(one.contains("cut short"), "{name} cut at {cut}: no warning");
            for part in [97, 4096] {
                assert!(
                    in_parts(&file, &keylog, 2, part) == one,
                    "{name} cut at {cut}, parts of {part} bytes"
                );
            }
        }
    }
}

/// Frames of `n` connections that each download `body`, in odd segment sizes (so that the
/// body's bytes fall everywhere in the outer records), some segments sent as IP fragments.
fn downloads(n: u16, body: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    for i in 0..n {
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
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(body);
        c.server_sends(&response, 1000 + 37 * usize::from(i));
        c.close();
        frames.extend(c.frames);
    }
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
    out
}

fn assert_same_in_parts_of(file: &Path, keylog: &KeyLog, parts: &[usize]) {
    let one = one_thread(file, keylog);
    assert!(one.contains("capture-3.pcap"), "the requests are found");
    assert!(one.contains("\"ip_datagrams_reassembled\":"), "{one}");
    for &part in parts {
        for threads in [2, 3] {
            assert!(
                in_parts(file, keylog, threads, part) == one,
                "{}: {threads} threads, parts of {part} bytes",
                file.display()
            );
        }
    }
}

/// Downloads of pcap and pcapng files (whose records and blocks look like the capture's own,
/// timestamps and all) in pcap and pcapng captures.
#[test]
fn payloads_of_capture_records_and_ip_fragments_read_the_same_in_parts() {
    for inner in ["http1-keepalive-reuse.pcap", "mtu1500-tls13-h2.pcapng"] {
        let body = std::fs::read(common::samples_dir().join(inner)).unwrap();
        let frames = downloads(4, &body);
        for (name, outer) in [
            ("pcap", common::pcap(1, &frames)),
            ("pcapng", common::pcapng(1, &frames)),
        ] {
            let file = temp_file(&format!("downloads-of-{inner}.{name}"), &outer);
            assert_same_in_parts_of(&file, &KeyLog::default(), &[61, 700, 1500, 4096, 65536]);
        }
    }
}

/// A pcapng whose blocks change what its reader keeps along the way: interface statistics
/// (skipped), secrets, a second interface of another link type, a simple packet (which
/// takes the time of the one before), a second section with microsecond times; and a
/// packet on an undeclared interface.
#[test]
fn pcapng_blocks_that_change_the_reader_read_the_same_in_parts() {
    let body = std::fs::read(common::samples_dir().join("http1-keepalive-reuse.pcap")).unwrap();
    let frames = downloads(4, &body);
    let third = frames.len() / 3;
    let packet = |w: &mut PcapNgWriter<Vec<u8>>, if_id, fr: &Frame, data: &[u8]| {
        let len = data.len() as u32;
        w.write_packet(if_id, fr.ts, data, len).unwrap();
    };
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    w.add_interface(1, 262_144, 9).unwrap();
    for (n, fr) in frames[..third].iter().enumerate() {
        packet(&mut w, 0, fr, &fr.data);
        if n % 50 == 49 {
            w.write_other(5, &[0; 12]).unwrap();
        }
    }
    w.write_secrets(&DecryptionSecret {
        secrets_type: DecryptionSecret::TLS_KEY_LOG,
        data: b"CLIENT_RANDOM 00 00\n".to_vec(),
    })
    .unwrap();
    w.add_interface(101, 262_144, 9).unwrap();
    for (n, fr) in frames[third..2 * third].iter().enumerate() {
        match common::encap::ip_of_frame(&fr.data) {
            Some(ip) if n % 2 == 1 => packet(&mut w, 1, fr, ip),
            _ => packet(&mut w, 0, fr, &fr.data),
        }
        if n == 7 {
            let mut spb = (fr.data.len() as u32).to_le_bytes().to_vec();
            spb.extend_from_slice(&fr.data);
            w.write_other(3, &spb).unwrap();
        }
    }
    // An Enhanced Packet Block on interface 9, which no block declared.
    let mut epb = 9u32.to_le_bytes().to_vec();
    epb.extend_from_slice(&[0; 8]);
    epb.extend_from_slice(&1u32.to_le_bytes());
    epb.extend_from_slice(&1u32.to_le_bytes());
    epb.push(0x45);
    w.write_other(6, &epb).unwrap();
    // A second section, with microsecond times.
    let mut w = PcapNgWriter::new(w.into_inner()).unwrap();
    w.add_interface(1, 262_144, 6).unwrap();
    for fr in &frames[2 * third..] {
        packet(&mut w, 0, fr, &fr.data);
    }
    let f = w.into_inner();
    let file = temp_file("stateful-blocks.pcapng", &f);
    let one = one_thread(&file, &KeyLog::default());
    assert!(one.contains("undeclared interface"), "{one}");
    assert_same_in_parts_of(&file, &KeyLog::default(), &[61, 700, 4096, 65536]);
}

/// A writer's quirk (microseconds past their second) makes no record header look plausible:
/// such a file is not read in parts (every guess would be read again by every owner), and
/// two threads still report what one does.
#[test]
fn a_file_whose_records_never_look_plausible_is_not_read_in_parts() {
    let body = std::fs::read(common::samples_dir().join("http1-keepalive-reuse.pcap")).unwrap();
    let mut f = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    f.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&262_144u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    for (n, fr) in downloads(2, &body).iter().enumerate() {
        f.extend_from_slice(&(1_700_000_000u32 + n as u32 / 100).to_le_bytes());
        f.extend_from_slice(&(1_000_000u32 + n as u32).to_le_bytes());
        f.extend_from_slice(&(fr.data.len() as u32).to_le_bytes());
        f.extend_from_slice(&(fr.data.len() as u32).to_le_bytes());
        f.extend_from_slice(&fr.data);
    }
    let file = temp_file("quirky-microseconds.pcap", &f);
    let inputs = [InputName::Path(file.clone())];
    let parts = misdirect::pipeline::analyze_in_parts(
        &inputs,
        &Limits::default(),
        &KeyLog::default(),
        2,
        700,
    )
    .unwrap();
    assert!(parts.is_none(), "read in parts");
    let one = one_thread(&file, &KeyLog::default());
    assert!(one.contains("capture-1.pcap"), "the requests are found");
    let report = |threads| {
        let r = misdirect::pipeline::analyze_inputs(
            &inputs,
            &Limits::default(),
            &KeyLog::default(),
            threads,
            &mut |_| {},
        )
        .unwrap();
        serde_json::to_string(&r).unwrap()
    };
    assert!(report(2) == one);
}
