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

fn ng_block(kind: u32, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    while body.len() % 4 != 0 {
        body.push(0);
    }
    let len = (body.len() + 12) as u32;
    let mut v = kind.to_le_bytes().to_vec();
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(&body);
    v.extend_from_slice(&len.to_le_bytes());
    v
}

fn section_header() -> Vec<u8> {
    let mut b = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    b.extend_from_slice(&[1, 0, 0, 0]);
    b.extend_from_slice(&(-1i64).to_le_bytes());
    ng_block(0x0a0d_0d0a, &b)
}

/// An interface with `tsresol` (pcapng §4.2: 6 is microseconds, 9 nanoseconds).
fn interface(linktype: u16, tsresol: u8) -> Vec<u8> {
    let mut b = linktype.to_le_bytes().to_vec();
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&262_144u32.to_le_bytes());
    b.extend_from_slice(&[9, 0, 1, 0, tsresol, 0, 0, 0, 0, 0, 0, 0]);
    ng_block(1, &b)
}

fn enhanced(if_id: u32, units: u64, f: &Frame, data: &[u8]) -> Vec<u8> {
    let ts = f.ts.0 as u64 / (1_000_000_000 / units);
    let mut b = if_id.to_le_bytes().to_vec();
    b.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
    b.extend_from_slice(&(ts as u32).to_le_bytes());
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(data);
    ng_block(6, &b)
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
    let mut f = section_header();
    f.extend(interface(1, 9));
    for (n, fr) in frames[..third].iter().enumerate() {
        f.extend(enhanced(0, 1_000_000_000, fr, &fr.data));
        if n % 50 == 49 {
            f.extend(ng_block(5, &[0; 12]));
        }
    }
    let mut dsb = 0x544c_534bu32.to_le_bytes().to_vec();
    let secrets = b"CLIENT_RANDOM 00 00\n";
    dsb.extend_from_slice(&(secrets.len() as u32).to_le_bytes());
    dsb.extend_from_slice(secrets);
    f.extend(ng_block(10, &dsb));
    f.extend(interface(101, 9));
    for (n, fr) in frames[third..2 * third].iter().enumerate() {
        match common::encap::ip_of_frame(&fr.data) {
            Some(ip) if n % 2 == 1 => f.extend(enhanced(1, 1_000_000_000, fr, ip)),
            _ => f.extend(enhanced(0, 1_000_000_000, fr, &fr.data)),
        }
        if n == 7 {
            let mut spb = (fr.data.len() as u32).to_le_bytes().to_vec();
            spb.extend_from_slice(&fr.data);
            f.extend(ng_block(3, &spb));
        }
    }
    f.extend(enhanced(9, 1_000_000_000, &frames[2 * third], &[0x45]));
    f.extend(section_header());
    f.extend(interface(1, 6));
    for fr in &frames[2 * third..] {
        f.extend(enhanced(0, 1_000_000, fr, &fr.data));
    }
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
