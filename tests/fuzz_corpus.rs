//! Replays the fuzz corpora (`fuzz/corpus/<target>/`) and the minimised crash inputs
//! (`fuzz/regressions/<target>/`) through the same `misdirect::fuzzing` functions the cargo-fuzz
//! targets call, on the stable toolchain. A file that panics fails the test, named; every file
//! of a target is tried before the test fails, so one run lists all of them.
//! See `docs/robustness.md`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries {
            let path = e.expect("readable corpus directory").path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "no corpus for {target} under fuzz/corpus/{target}"
    );
    // Keep the default hook's message for each failure, but only once per file.
    let mut failed = Vec::new();
    for path in &files {
        let data = match std::fs::read(path) {
            Ok(d) => d,
            // A running fuzzer may have just replaced the file with a smaller one.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} {target} inputs panicked:\n  {}",
        failed.len(),
        files.len(),
        failed.join("\n  ")
    );
}

#[test]
fn capture_file_corpus() {
    replay("capture_file", misdirect::fuzzing::capture_file);
}

/// The capture corpus again, each file analysed with one thread and with three.
#[test]
fn capture_file_corpus_with_threads() {
    replay("capture_file", misdirect::fuzzing::threads_agree);
}

#[test]
fn threads_corpus() {
    replay("threads", misdirect::fuzzing::threads_agree);
}

#[test]
fn decode_packet_corpus() {
    replay("decode_packet", misdirect::fuzzing::decode_packet);
}

#[test]
fn tcp_streams_corpus() {
    replay("tcp_streams", misdirect::fuzzing::tcp_streams);
}

#[test]
fn tls_stream_corpus() {
    replay("tls_stream", misdirect::fuzzing::tls_stream);
}

#[test]
fn tls_handshake_corpus() {
    replay("tls_handshake", misdirect::fuzzing::tls_handshake);
}

#[test]
fn keylog_corpus() {
    replay("keylog", misdirect::fuzzing::keylog);
}

#[test]
fn spill_records_corpus() {
    replay("spill_records", misdirect::fuzzing::spill_records);
}

#[test]
fn http1_corpus() {
    replay("http1", misdirect::fuzzing::http1);
}

#[test]
fn http2_frames_corpus() {
    replay("http2_frames", misdirect::fuzzing::http2_frames);
}

#[test]
fn hpack_corpus() {
    replay("hpack", misdirect::fuzzing::hpack);
}

#[test]
fn control_corpus() {
    replay("control", misdirect::fuzzing::control);
}

#[test]
fn app_stream_corpus() {
    replay("app_stream", misdirect::fuzzing::app_stream);
}

/// Writes the TLS targets' seed corpora from the real samples:
/// `cargo test --test fuzz_corpus -- --ignored write_tls_seeds`. Every TLS connection of
/// every sample with a key log becomes a `tls_stream` script (key log plus stream pieces as
/// reassembled; those of the 1500-byte MTU sample also with no room to hold records), every handshake fixture a `tls_handshake` input, every key log a `keylog`
/// input.
#[test]
#[ignore]
fn write_tls_seeds() {
    use misdirect::capture::{Capture, InputName};
    use misdirect::flow::{ConnId, Connection, Direction, EventMeta, StreamEvent, StreamSink};
    #[derive(Default)]
    struct Pieces(std::collections::BTreeMap<u64, Vec<(Direction, Vec<u8>)>>);
    impl StreamSink for Pieces {
        fn open(&mut self, c: &Connection, _: EventMeta) {
            self.0.insert(c.id.0, Vec::new());
        }
        fn stream(
            &mut self,
            _: &mut misdirect::flow::SinkState,
            id: ConnId,
            d: Direction,
            ev: StreamEvent<'_>,
            _: EventMeta,
        ) {
            if let StreamEvent::Data(b) = ev {
                self.0.entry(id.0).or_default().push((d, b.to_vec()));
            }
        }
        fn close(&mut self, _: Connection, _: EventMeta) {}
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    for e in std::fs::read_dir(root.join("samples")).unwrap() {
        let path = e.unwrap().path();
        let keys = path.with_extension("keys");
        if !keys.exists() || path.extension().is_some_and(|x| x == "keys") {
            continue;
        }
        let keylog = std::fs::read(&keys).unwrap();
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        out("keylog", &stem, &keylog);
        let limits = misdirect::Limits::default();
        let mut cap = Capture::open(&[InputName::Path(path.clone())], &limits).unwrap();
        let mut sink = Pieces::default();
        misdirect::pipeline::run(&mut cap, &limits, &mut sink, &mut |_| {});
        for (id, pieces) in sink.0 {
            out(
                "tls_stream",
                &format!("{stem}-{id}"),
                &misdirect::fuzzing::tls_script(&keylog, &pieces),
            );
            // Its records straddle 1500-byte segments: with no room to hold them, they
            // are decrypted as they come.
            if stem == "mtu1500-tls13-h2" {
                out(
                    "tls_stream",
                    &format!("{stem}-{id}-streamed"),
                    &misdirect::fuzzing::tls_script_with(&keylog, &pieces, true),
                );
            }
        }
    }
    for e in std::fs::read_dir(root.join("tests/data/tls-hello")).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".hex") else {
            continue;
        };
        let hex: String = std::fs::read_to_string(&path)
            .unwrap()
            .split_whitespace()
            .collect();
        let body: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let which = if stem.ends_with("client-hello") {
            0
        } else if stem.ends_with("server-hello") {
            1
        } else if stem.ends_with("encrypted-extensions") {
            2
        } else if stem.contains("tls12") {
            3
        } else {
            4
        };
        let mut input = vec![which];
        input.extend(body);
        out("tls_handshake", stem, &input);
    }
}

/// Writes the application-layer targets' seed corpora from the real samples:
/// `cargo test --test fuzz_corpus -- --ignored write_app_seeds`. Each connection of the
/// cleartext HTTP, FTP and SMTP samples, as reassembled (data, gaps, ends), and the decrypted
/// plaintext of each connection of the samples with a key log, becomes scripts for the
/// targets that parse what it carries: `http1` (starts with an HTTP/1 request), `http2_frames`
/// (HTTP/2), `control` (FTP/SMTP), `app_stream` (every cleartext connection, with the sample's
/// key log, so the TLS inside a CONNECT tunnel decrypts), and `hpack` (each direction's header
/// blocks, also with the first one hidden from a mid-stream observer). Scripts stop after
/// 48 KiB of events: the samples' interesting parts are their heads, and libFuzzer mutates
/// small inputs faster. Minimise afterwards (see `docs/robustness.md`).
#[test]
#[ignore]
fn write_app_seeds() {
    use misdirect::capture::{Capture, InputName};
    use misdirect::flow::{
        ConnId, Connection, Direction, EventMeta, Orientation, StreamEvent, StreamSink,
    };
    use misdirect::fuzzing::{app_script, hpack_op, ScriptEvent};
    use misdirect::proto::http::http2::frame::{self, Frame, FrameReader};
    use misdirect::proto::tls::keylog::KeyLog;
    use misdirect::proto::tls::session::AppData;
    use misdirect::proto::{AppProtocol, ConnProto};
    use std::collections::BTreeMap;

    const CLEARTEXT: &[&str] = &[
        "http1-keepalive-reuse.pcap",
        "http1-framing.pcap",
        "h2c-prior-knowledge.pcap",
        "h2c-upgrade.pcap",
        "h2load-h2c.pcap",
        "h2c-midstream.pcap",
        "websocket-upgrade.pcap",
        "connect-tunnel.pcap",
        "ftp-421.pcap",
        "smtp-421.pcap",
    ];
    const MAX_SCRIPT: usize = 48 << 10;

    type Events = Vec<(Direction, ScriptEvent)>;
    struct Conn {
        proto: Option<ConnProto>,
        mid_stream: bool,
        raw: Events,
        plain: std::rc::Rc<std::cell::RefCell<Events>>,
        protocol: AppProtocol,
        tls: bool,
    }
    struct Sink {
        keylog: KeyLog,
        conns: BTreeMap<u64, Conn>,
    }
    fn push(v: &mut Events, d: Direction, ev: ScriptEvent) {
        let size: usize = v
            .iter()
            .map(|(_, e)| match e {
                ScriptEvent::Data(b) => b.len() + 3,
                _ => 3,
            })
            .sum();
        if size < MAX_SCRIPT {
            v.push((d, ev));
        }
    }
    impl StreamSink for Sink {
        fn open(&mut self, c: &Connection, _: EventMeta) {
            let mid_stream = matches!(c.orientation, Orientation::Ports | Orientation::FirstPacket);
            self.conns.insert(
                c.id.0,
                Conn {
                    proto: Some(ConnProto::new(
                        mid_stream,
                        misdirect::Limits::default().http(),
                    )),
                    mid_stream,
                    raw: Vec::new(),
                    plain: Default::default(),
                    protocol: AppProtocol::None,
                    tls: false,
                },
            );
        }
        fn stream(
            &mut self,
            _: &mut misdirect::flow::SinkState,
            id: ConnId,
            d: Direction,
            ev: StreamEvent<'_>,
            at: EventMeta,
        ) {
            let c = self.conns.get_mut(&id.0).unwrap();
            let se = match ev {
                StreamEvent::Data(b) => ScriptEvent::Data(b.to_vec()),
                StreamEvent::Gap(n) => ScriptEvent::Gap(n),
                StreamEvent::Fin => ScriptEvent::Fin,
                StreamEvent::Rst => ScriptEvent::Rst,
            };
            push(&mut c.raw, d, se.clone());
            let plain = c.plain.clone();
            c.proto
                .as_mut()
                .unwrap()
                .event(d, ev, at.ts, &self.keylog, &mut |d, data| {
                    let ev = match data {
                        AppData::Data(b) => ScriptEvent::Data(b.to_vec()),
                        AppData::Lost => ScriptEvent::Gap(1),
                    };
                    push(&mut plain.borrow_mut(), d, ev);
                });
            if matches!(se, ScriptEvent::Fin | ScriptEvent::Rst) {
                push(&mut c.plain.borrow_mut(), d, se);
            }
        }
        fn close(&mut self, conn: Connection, _: EventMeta) {
            let c = self.conns.get_mut(&conn.id.0).unwrap();
            let s = c.proto.take().unwrap().finish(true);
            c.tls = s.tls.is_some();
            c.protocol = s.protocol;
        }
        fn key_material(&mut self, s: &misdirect::capture::DecryptionSecret) {
            self.keylog.add(&s.data);
        }
    }

    /// Each direction's header blocks (HEADERS or PUSH_PROMISE with their CONTINUATIONs).
    fn header_blocks(events: &Events, d: Direction) -> Vec<Vec<u8>> {
        let mut reader = FrameReader::new((d == Direction::ClientToServer).then_some(true));
        let mut blocks = Vec::new();
        let mut open: Option<Vec<u8>> = None;
        for (dir, ev) in events {
            let ScriptEvent::Data(b) = ev else { continue };
            if *dir != d {
                continue;
            }
            reader.push(b, 1 << 20, &mut |f| {
                let Frame::Full(h, p) = f else { return };
                let end = h.flags & frame::flag::END_HEADERS != 0;
                let fragment = match h.kind {
                    frame::kind::HEADERS | frame::kind::PUSH_PROMISE => {
                        frame::header_block(&h, p).map(|(_, f)| f.to_vec())
                    }
                    frame::kind::CONTINUATION => open.take().map(|mut o| {
                        o.extend_from_slice(p);
                        o
                    }),
                    _ => return,
                };
                if let Some(f) = fragment {
                    if end {
                        blocks.push(f);
                    } else {
                        open = Some(f);
                    }
                }
            });
        }
        blocks
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let mut samples: Vec<(PathBuf, bool)> = CLEARTEXT
        .iter()
        .map(|n| (root.join("samples").join(n), true))
        .collect();
    for e in std::fs::read_dir(root.join("samples")).unwrap() {
        let path = e.unwrap().path();
        let keyed = path.with_extension("keys").exists();
        let capture = path
            .extension()
            .is_some_and(|x| x == "pcap" || x == "pcapng");
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if keyed && capture && !CLEARTEXT.contains(&name.as_str()) {
            samples.push((path, false));
        }
    }
    samples.sort();
    for (path, cleartext) in samples {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let keys = std::fs::read(path.with_extension("keys")).unwrap_or_default();
        let limits = misdirect::Limits::default();
        let mut cap = Capture::open(&[InputName::Path(path.clone())], &limits).unwrap();
        let mut sink = Sink {
            keylog: KeyLog::default(),
            conns: BTreeMap::new(),
        };
        sink.keylog.add(&keys);
        misdirect::pipeline::run(&mut cap, &limits, &mut sink, &mut |_| {});
        for (id, c) in &sink.conns {
            let name = format!("{stem}-{id}");
            let mid = u8::from(c.mid_stream);
            if cleartext && !c.tls {
                let k = keys.get(..usize::from(u16::MAX)).unwrap_or(&keys);
                for preset in [3u8, 0] {
                    let mut header = vec![mid | preset << 1];
                    header.extend_from_slice(&(k.len() as u16).to_be_bytes());
                    header.extend_from_slice(k);
                    out(
                        "app_stream",
                        &format!("{name}-p{preset}"),
                        &app_script(&header, &c.raw),
                    );
                }
            }
            let events = if c.tls {
                c.plain.borrow().clone()
            } else {
                c.raw.clone()
            };
            let client_first: Vec<u8> = events
                .iter()
                .find_map(|(d, e)| match e {
                    ScriptEvent::Data(b) if *d == Direction::ClientToServer => Some(b.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            let preface = client_first.starts_with(frame::PREFACE);
            let http1_start = client_first
                .split(|&b| b == b' ')
                .next()
                .is_some_and(|m| !m.is_empty() && m.iter().all(u8::is_ascii_uppercase))
                && !preface;
            match c.protocol {
                AppProtocol::Http1 | AppProtocol::Http2 if http1_start => {
                    for preset in [3u8, 0] {
                        out(
                            "http1",
                            &format!("{name}-p{preset}"),
                            &app_script(&[mid | preset << 1], &events),
                        );
                    }
                }
                AppProtocol::Http2 => {
                    for preset in [3u8, 0] {
                        let cfg = u8::from(preface) | mid << 1 | preset << 2;
                        out(
                            "http2_frames",
                            &format!("{name}-p{preset}"),
                            &app_script(&[cfg], &events),
                        );
                    }
                }
                AppProtocol::Ftp | AppProtocol::Smtp | AppProtocol::FtpOrSmtp => {
                    out("control", &name, &app_script(&[7], &events));
                }
                _ => {}
            }
            if c.protocol == AppProtocol::Http2 {
                for (d, side) in [
                    (Direction::ClientToServer, "c"),
                    (Direction::ServerToClient, "s"),
                ] {
                    let blocks = header_blocks(&events, d);
                    if blocks.is_empty() {
                        continue;
                    }
                    // Full view with a large cap; a small cap; mid-stream with the first block
                    // hidden.
                    for (cfg, hide_first, tag) in [
                        (7u8 << 1, false, "all"),
                        (4 << 1, false, "cap256"),
                        (7 << 1 | 1, true, "mid"),
                    ] {
                        let mut v = vec![cfg];
                        for (i, b) in blocks.iter().take(64).enumerate() {
                            let op = if i == 0 && hide_first {
                                hpack_op::HIDDEN
                            } else {
                                hpack_op::BLOCK
                            };
                            v.push(op);
                            v.extend_from_slice(&(b.len() as u16).to_be_bytes());
                            v.extend_from_slice(b);
                        }
                        out("hpack", &format!("{name}-{side}-{tag}"), &v);
                    }
                }
            }
        }
    }
}

/// The contract checker is not vacuous: a sink that passes the flow table's events on with one
/// mistake added must make it panic.
mod checker {
    use misdirect::flow::{
        ConnId, Connection, Direction, EventMeta, FlowTable, StreamEvent, StreamSink,
    };
    use misdirect::fuzzing::{content_byte, ContractSink};
    use misdirect::wire::{Decoded, TcpFlags, TcpSegment, Transport};
    use misdirect::{Limits, Timestamp};
    use std::panic::{catch_unwind, AssertUnwindSafe};

    #[derive(Clone, Copy, PartialEq)]
    enum Mistake {
        None,
        FlipByte,
        DataAfterFin,
        NoClose,
        EmptyData,
    }

    struct Faulty {
        inner: ContractSink,
        mistake: Mistake,
    }

    impl StreamSink for Faulty {
        fn open(&mut self, conn: &Connection, at: EventMeta) {
            self.inner.open(conn, at);
        }
        fn stream(
            &mut self,
            state: &mut misdirect::flow::SinkState,
            id: ConnId,
            dir: Direction,
            event: StreamEvent<'_>,
            at: EventMeta,
        ) {
            match (self.mistake, event) {
                (Mistake::FlipByte, StreamEvent::Data(d)) => {
                    let mut v = d.to_vec();
                    v[0] ^= 1;
                    self.inner.stream(state, id, dir, StreamEvent::Data(&v), at);
                }
                (Mistake::DataAfterFin, StreamEvent::Fin) => {
                    self.inner.stream(state, id, dir, event, at);
                    self.inner.stream(state, id, dir, StreamEvent::Gap(1), at);
                }
                (Mistake::EmptyData, StreamEvent::Data(_)) => {
                    self.inner
                        .stream(state, id, dir, StreamEvent::Data(&[]), at);
                }
                _ => self.inner.stream(state, id, dir, event, at),
            }
        }
        fn close(&mut self, conn: Connection, at: EventMeta) {
            if self.mistake != Mistake::NoClose {
                self.inner.close(conn, at);
            }
        }
    }

    fn run(mistake: Mistake) {
        let client = "10.0.0.1:40000".parse().unwrap();
        let server = "10.0.0.2:443".parse().unwrap();
        let mut flows = FlowTable::new(&Limits::default());
        let mut sink = Faulty {
            inner: ContractSink::with_content(content_byte),
            mistake,
        };
        let isn = u32::MAX - 3;
        let data: Vec<u8> = (0..10)
            .map(|i| content_byte(isn.wrapping_add(1 + i), 40000))
            .collect();
        let script: [(bool, u32, TcpFlags, &[u8]); 4] = [
            (
                true,
                isn,
                TcpFlags {
                    syn: true,
                    ..Default::default()
                },
                &[],
            ),
            (
                false,
                7,
                TcpFlags {
                    syn: true,
                    ack: true,
                    ..Default::default()
                },
                &[],
            ),
            (
                true,
                isn.wrapping_add(1),
                TcpFlags {
                    ack: true,
                    ..Default::default()
                },
                &data,
            ),
            (
                true,
                isn.wrapping_add(11),
                TcpFlags {
                    ack: true,
                    fin: true,
                    ..Default::default()
                },
                &[],
            ),
        ];
        let mut last = EventMeta {
            ts: Timestamp(0),
            packet: 0,
        };
        for (i, (from_client, seq, flags, payload)) in script.into_iter().enumerate() {
            let (src, dst) = if from_client {
                (client, server)
            } else {
                (server, client)
            };
            let seg = TcpSegment {
                seq,
                ack: 8,
                flags,
                window: 1000,
                payload,
                missing: 0,
            };
            last = EventMeta {
                ts: Timestamp(i as i64),
                packet: i as u64 + 1,
            };
            let pkt = Decoded {
                index: last.packet,
                origin: Default::default(),
                ts: last.ts,
                src,
                dst,
                transport: Transport::Tcp(seg),
            };
            flows.process(&pkt, &seg, &mut sink);
        }
        flows.finish(last, &mut sink);
        sink.inner.finish();
    }

    #[test]
    fn accepts_a_correct_stream_and_catches_each_mistake() {
        run(Mistake::None);
        for (m, expected) in [
            (Mistake::FlipByte, "wrong byte"),
            (Mistake::DataAfterFin, "after its Fin"),
            (Mistake::NoClose, "never closed"),
            (Mistake::EmptyData, "empty Data"),
        ] {
            let err = catch_unwind(AssertUnwindSafe(|| run(m)))
                .expect_err("a contract violation went unnoticed");
            let msg = err
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            assert!(msg.contains(expected), "expected {expected:?}, got {msg:?}");
        }
    }
}
