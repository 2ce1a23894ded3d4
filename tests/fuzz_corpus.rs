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

/// Writes the TLS targets' seed corpora from the real samples:
/// `cargo test --test fuzz_corpus -- --ignored write_tls_seeds`. Every TLS connection of
/// every sample with a key log becomes a `tls_stream` script (key log plus stream pieces as
/// reassembled), every handshake fixture a `tls_handshake` input, every key log a `keylog`
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
        fn stream(&mut self, id: ConnId, d: Direction, ev: StreamEvent<'_>, _: EventMeta) {
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
        fn stream(&mut self, id: ConnId, dir: Direction, event: StreamEvent<'_>, at: EventMeta) {
            match (self.mistake, event) {
                (Mistake::FlipByte, StreamEvent::Data(d)) => {
                    let mut v = d.to_vec();
                    v[0] ^= 1;
                    self.inner.stream(id, dir, StreamEvent::Data(&v), at);
                }
                (Mistake::DataAfterFin, StreamEvent::Fin) => {
                    self.inner.stream(id, dir, event, at);
                    self.inner.stream(id, dir, StreamEvent::Gap(1), at);
                }
                (Mistake::EmptyData, StreamEvent::Data(_)) => {
                    self.inner.stream(id, dir, StreamEvent::Data(&[]), at);
                }
                _ => self.inner.stream(id, dir, event, at),
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
