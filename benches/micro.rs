//! Micro-benchmarks of the hot layers (issue 7): TCP reassembly, ClientHello parsing, TLS
//! record decryption, HPACK decoding and HTTP/1 parsing.
//!
//! ```sh
//! cargo bench --bench micro                 # all of them (about a minute)
//! cargo bench --bench micro -- hpack        # one group
//! ```
//!
//! Every input is built here, deterministically, or read from test data already in the
//! repository (`tests/data/`): the Chromium ClientHello of `samples/chromium-coalesce-421.pcapng`
//! and two hpack-test-case stories. Each input is checked once before it is measured (what
//! the parser makes of it is what was built), so a change that makes a parser skip its work
//! fails here instead of looking fast. Figures and the machine are in `docs/performance.md`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use misdirect::flow::{
    ConnId, Connection, Direction, EventMeta, FlowTable, StreamEvent, StreamSink,
};
use misdirect::proto::http::http2::hpack::{self, Field};
use misdirect::proto::http::{HttpConn, Start};
use misdirect::proto::tls::decrypt::{RecordDecrypter, RecordProtocol};
use misdirect::proto::tls::hello::parse_client_hello;
use misdirect::proto::tls::keys;
use misdirect::wire::{Decoded, TcpFlags, TcpSegment, Transport};
use misdirect::{Limits, Timestamp};
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

/// splitmix64: a small deterministic generator for the inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// Text-like bytes (what compressed-or-not response bodies look like to a parser: opaque).
fn text_bytes(len: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&[u8]] = &[
        b"the ",
        b"misdirected ",
        b"request ",
        b"<div class=\"row\">",
        b"connection ",
        b"function(e){return ",
        b"0123456789",
        b"\n",
        b"authority ",
        b"{\"id\":",
    ];
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(len + 32);
    while out.len() < len {
        out.extend_from_slice(WORDS[(rng.next() % WORDS.len() as u64) as usize]);
    }
    out.truncate(len);
    out
}

fn unhex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| (b as char).to_digit(16).expect("hex digit") as u8)
        .collect();
    digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect()
}

/// Short samples: the whole run (11 benchmarks) takes about a minute on 2 cores.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(800))
        .measurement_time(Duration::from_secs(3))
}

// ------------------------------------------------------------------------- TCP reassembly

const MSS: usize = 1448;

/// One TCP packet of a scripted capture; its payload is a range of the shared byte buffer.
struct ScriptPacket {
    client: SocketAddr,
    server: SocketAddr,
    from_client: bool,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    payload: (usize, usize),
}

/// What one connection carries: a request, then a response of `segments` MSS-sized segments,
/// ACKed every second segment; every `swap_every`-th data segment is captured after its
/// successor, every `retx_every`-th is captured a second time after its successor.
struct ConnSpec {
    client: SocketAddr,
    server: SocketAddr,
    request: usize,
    segments: usize,
    swap_every: usize,
    retx_every: usize,
}

/// The packets of one connection: handshake, request, response, FIN both ways. Payload bytes
/// are appended to `bytes`.
fn connection_script(spec: &ConnSpec, bytes: &mut Vec<u8>, seed: u64) -> Vec<ScriptPacket> {
    const ACK: TcpFlags = TcpFlags {
        syn: false,
        ack: true,
        fin: false,
        rst: false,
    };
    let (cisn, sisn) = (
        0x1000_0000u32.wrapping_mul(seed as u32 | 1),
        0xdead_0000u32 ^ seed as u32,
    );
    let (client, server) = (spec.client, spec.server);
    let pkt = |from_client, seq, ack, flags, payload| ScriptPacket {
        client,
        server,
        from_client,
        seq,
        ack,
        flags,
        payload,
    };
    let mut out = vec![
        pkt(
            true,
            cisn,
            0,
            TcpFlags {
                syn: true,
                ..TcpFlags::default()
            },
            (0, 0),
        ),
        pkt(
            false,
            sisn,
            cisn.wrapping_add(1),
            TcpFlags { syn: true, ..ACK },
            (0, 0),
        ),
        pkt(
            true,
            cisn.wrapping_add(1),
            sisn.wrapping_add(1),
            ACK,
            (0, 0),
        ),
    ];
    let mut cseq = cisn.wrapping_add(1);
    let mut sseq = sisn.wrapping_add(1);
    let start = bytes.len();
    bytes.extend_from_slice(&text_bytes(spec.request, seed));
    out.push(pkt(true, cseq, sseq, ACK, (start, bytes.len())));
    cseq = cseq.wrapping_add(spec.request as u32);

    let body = text_bytes(spec.segments * MSS, seed ^ 0x5555);
    let base = bytes.len();
    bytes.extend_from_slice(&body);
    // Data segments in capture order, as indexes; then ACKs every second one, acknowledging
    // what the receiver holds in order (a swapped pair is acknowledged once both are in).
    let mut order: Vec<usize> = (0..spec.segments).collect();
    let mut k = spec.swap_every;
    while k < spec.segments {
        order.swap(k - 1, k);
        k += spec.swap_every;
    }
    let mut captured = Vec::with_capacity(order.len() + order.len() / spec.retx_every + 1);
    for (n, &i) in order.iter().enumerate() {
        captured.push(i);
        if n > 0 && n % spec.retx_every == 0 {
            captured.push(order[n - 1]);
        }
    }
    let mut have = vec![false; spec.segments];
    let mut in_order = 0;
    for (n, &i) in captured.iter().enumerate() {
        let seq = sseq.wrapping_add((i * MSS) as u32);
        out.push(pkt(
            false,
            seq,
            cseq,
            ACK,
            (base + i * MSS, base + (i + 1) * MSS),
        ));
        have[i] = true;
        while in_order < spec.segments && have[in_order] {
            in_order += 1;
        }
        if n % 2 == 1 || n + 1 == captured.len() {
            let ack = sseq.wrapping_add((in_order * MSS) as u32);
            out.push(pkt(true, cseq, ack, ACK, (0, 0)));
        }
    }
    sseq = sseq.wrapping_add((spec.segments * MSS) as u32);
    let fin = TcpFlags { fin: true, ..ACK };
    out.push(pkt(true, cseq, sseq, fin, (0, 0)));
    out.push(pkt(false, sseq, cseq.wrapping_add(1), fin, (0, 0)));
    out.push(pkt(
        true,
        cseq.wrapping_add(1),
        sseq.wrapping_add(1),
        ACK,
        (0, 0),
    ));
    out
}

/// Decoded packets, as the decoder would hand them to the flow table.
fn decoded<'a>(script: &[ScriptPacket], bytes: &'a [u8]) -> Vec<(Decoded<'a>, TcpSegment<'a>)> {
    script
        .iter()
        .enumerate()
        .map(|(n, p)| {
            let seg = TcpSegment {
                seq: p.seq,
                ack: p.ack,
                flags: p.flags,
                window: 0xffff,
                payload: &bytes[p.payload.0..p.payload.1],
                missing: 0,
            };
            let (src, dst) = if p.from_client {
                (p.client, p.server)
            } else {
                (p.server, p.client)
            };
            let d = Decoded {
                index: n as u64 + 1,
                origin: Default::default(),
                ts: Timestamp(1_700_000_000 * Timestamp::NANOS_PER_SEC + n as i64 * 10_000),
                src,
                dst,
                transport: Transport::Tcp(seg),
            };
            (d, seg)
        })
        .collect()
}

/// Counts what reassembly delivers and does nothing else with it.
#[derive(Default)]
struct CountingSink {
    data: u64,
    gaps: u64,
    opened: u64,
    closed: u64,
}

impl StreamSink for CountingSink {
    fn open(&mut self, _: &Connection, _: EventMeta) {
        self.opened += 1;
    }
    fn stream(
        &mut self,
        _: &mut misdirect::flow::SinkState,
        _: ConnId,
        _: Direction,
        ev: StreamEvent<'_>,
        _: EventMeta,
    ) {
        match ev {
            StreamEvent::Data(d) => self.data += d.len() as u64,
            StreamEvent::Gap(n) => self.gaps += n,
            StreamEvent::Fin | StreamEvent::Rst => {}
        }
    }
    fn close(&mut self, _: Connection, _: EventMeta) {
        self.closed += 1;
    }
}

fn reassemble(limits: &Limits, packets: &[(Decoded<'_>, TcpSegment<'_>)]) -> CountingSink {
    let mut table = FlowTable::new(limits);
    let mut sink = CountingSink::default();
    for (d, seg) in packets {
        table.process(d, seg, &mut sink);
    }
    let last = packets.last().map_or(Timestamp(0), |(d, _)| d.ts);
    table.finish(
        EventMeta {
            ts: last,
            packet: packets.len() as u64,
        },
        &mut sink,
    );
    sink
}

fn bench_reassembly(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("tcp_reassembly");

    // One bulk connection: 1000 MSS segments, 5 swapped pairs, 3 retransmissions.
    let mut bytes = Vec::new();
    let spec = ConnSpec {
        client: "10.0.0.1:50000".parse().unwrap(),
        server: "10.0.0.2:443".parse().unwrap(),
        request: 517,
        segments: 1000,
        swap_every: 199,
        retx_every: 331,
    };
    let script = connection_script(&spec, &mut bytes, 1);
    let packets = decoded(&script, &bytes);
    let stream_bytes = (spec.request + spec.segments * MSS) as u64;
    let wire_bytes: u64 = packets.iter().map(|(_, s)| s.payload.len() as u64).sum();
    let s = reassemble(&limits, &packets);
    assert_eq!(
        (s.data, s.gaps, s.opened, s.closed),
        (stream_bytes, 0, 1, 1)
    );
    assert!(
        wire_bytes > stream_bytes,
        "retransmissions are in the input"
    );
    g.throughput(Throughput::ElementsAndBytes {
        elements: packets.len() as u64,
        bytes: wire_bytes,
    });
    g.bench_function("1_flow_1000_segments", |b| {
        b.iter(|| black_box(reassemble(&limits, black_box(&packets))).data)
    });

    // 64 shorter connections (16 segments each), their packets interleaved round-robin:
    // connection setup and teardown, and the table lookup with several flows live.
    let mut bytes = Vec::new();
    let scripts: Vec<Vec<ScriptPacket>> = (0..64u16)
        .map(|i| {
            let spec = ConnSpec {
                client: SocketAddr::from(([10, 0, 1, (i % 7) as u8 + 1], 40000 + i)),
                server: SocketAddr::from(([10, 0, 2, (i % 2) as u8 + 1], 443)),
                request: 400 + usize::from(i) * 3,
                segments: 16,
                swap_every: 7,
                retx_every: 13,
            };
            connection_script(&spec, &mut bytes, u64::from(i) + 2)
        })
        .collect();
    let mut merged = Vec::new();
    let mut iters: Vec<_> = scripts.into_iter().map(Vec::into_iter).collect();
    loop {
        let before = merged.len();
        for it in &mut iters {
            merged.extend(it.next());
        }
        if merged.len() == before {
            break;
        }
    }
    let packets = decoded(&merged, &bytes);
    let stream_bytes: u64 = (0..64u64).map(|i| 400 + i * 3 + 16 * MSS as u64).sum();
    let wire_bytes: u64 = packets.iter().map(|(_, s)| s.payload.len() as u64).sum();
    let s = reassemble(&limits, &packets);
    assert_eq!(
        (s.data, s.gaps, s.opened, s.closed),
        (stream_bytes, 0, 64, 64)
    );
    g.throughput(Throughput::ElementsAndBytes {
        elements: packets.len() as u64,
        bytes: wire_bytes,
    });
    g.bench_function("64_flows_interleaved", |b| {
        b.iter(|| black_box(reassemble(&limits, black_box(&packets))).data)
    });
    g.finish();
}

// ------------------------------------------------------------------------- ClientHello

/// Chromium 156's ClientHello of `samples/chromium-coalesce-421.pcapng` (connection 0), the
/// handshake body without its 4-byte header: 1945 bytes, GREASE, X25519MLKEM768 + X25519 key
/// shares, ECH GREASE. Extracted by `tests/data/tls-hello/extract.py`.
const CHROMIUM_HELLO: &str = include_str!("../tests/data/tls-hello/chromium-client-hello.hex");
/// curl 7.88 / OpenSSL 3.0, TLS 1.3 (same directory).
const CURL_HELLO: &str = include_str!("../tests/data/tls-hello/curl-tls13-client-hello.hex");

fn bench_client_hello(c: &mut Criterion) {
    let mut g = c.benchmark_group("tls_client_hello");
    for (name, hex, groups) in [
        ("chromium_pq_ech", CHROMIUM_HELLO, &[0x11ec, 0x001d][..]),
        ("curl_tls13", CURL_HELLO, &[0x001d][..]),
    ] {
        let body = unhex(hex);
        let ch = parse_client_hello(&body).expect("the fixture parses");
        assert_eq!(ch.sni.names, ["a.example.test"]);
        assert_eq!(ch.key_share_groups, groups);
        g.throughput(Throughput::ElementsAndBytes {
            elements: 1,
            bytes: body.len() as u64,
        });
        g.bench_function(format!("{name}_{}B", body.len()), |b| {
            b.iter(|| parse_client_hello(black_box(&body)))
        });
    }
    g.finish();
}

// ------------------------------------------------------------------------- record decryption

const RECORD_PLAINTEXT: usize = 16 << 10;
const RECORDS: usize = 64;

/// `RECORDS` TLS 1.3 application-data records of 16 KiB plaintext each, sealed as a sender
/// would (RFC 8446 §5.2): ciphertext of `plaintext || 23`, nonce `iv XOR seq`, the record
/// header as additional data. Returns the record fragments (without the 5-byte headers).
fn seal_records(suite: u16, alg: &'static ring::aead::Algorithm, secret: &[u8]) -> Vec<Vec<u8>> {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey};
    let suite = keys::suite(suite).expect("suite supported");
    let k = keys::derive_traffic_keys(&suite, secret);
    let key = LessSafeKey::new(UnboundKey::new(alg, k.key.bytes()).expect("key length"));
    (0..RECORDS)
        .map(|seq| {
            let mut rec = text_bytes(RECORD_PLAINTEXT, seq as u64);
            rec.push(23);
            let len = rec.len() + alg.tag_len();
            let header = [23, 3, 3, (len >> 8) as u8, len as u8];
            let mut nonce = [0u8; 12];
            nonce.copy_from_slice(k.iv.bytes());
            for (n, s) in nonce[4..].iter_mut().zip((seq as u64).to_be_bytes()) {
                *n ^= s;
            }
            key.seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(header),
                &mut rec,
            )
            .expect("sealed");
            rec
        })
        .collect()
}

fn bench_record_decryption(c: &mut Criterion) {
    let mut g = c.benchmark_group("tls13_record_decrypt");
    g.throughput(Throughput::ElementsAndBytes {
        elements: RECORDS as u64,
        bytes: (RECORDS * RECORD_PLAINTEXT) as u64,
    });
    let secret = [0x42u8; 32];
    for (name, id, alg) in [
        ("aes_128_gcm_16KiB", 0x1301, &ring::aead::AES_128_GCM),
        (
            "chacha20_poly1305_16KiB",
            0x1303,
            &ring::aead::CHACHA20_POLY1305,
        ),
    ] {
        let records = seal_records(id, alg, &secret);
        let suite = keys::suite(id).expect("suite supported");
        let k = keys::derive_traffic_keys(&suite, &secret);
        let mut dec = RecordDecrypter::new(suite, k.clone(), RecordProtocol::Tls13);
        let mut out = Vec::with_capacity(RECORD_PLAINTEXT + 256);
        let run = |dec: &mut RecordDecrypter, out: &mut Vec<u8>| {
            // Back to sequence number 0 (and the same keys) for each pass.
            dec.rekey(k.clone());
            let mut n = 0;
            for r in &records {
                out.clear();
                let ty = dec
                    .decrypt(23, 0x0303, black_box(r), out)
                    .expect("decrypts");
                n += out.len() + usize::from(ty);
            }
            n
        };
        assert_eq!(run(&mut dec, &mut out), RECORDS * (RECORD_PLAINTEXT + 23));
        assert_eq!(out, text_bytes(RECORD_PLAINTEXT, RECORDS as u64 - 1));
        g.bench_function(name, |b| b.iter(|| run(&mut dec, &mut out)));
        // The same records opened as they would arrive in 1448-byte segments, as when the
        // record budget is spent (`max_tls_records_held`).
        let streamed = |dec: &mut RecordDecrypter, out: &mut Vec<u8>| {
            dec.rekey(k.clone());
            let mut n = 0;
            for r in &records {
                out.clear();
                let mut o = dec.open_stream(23, 0x0303, r.len()).expect("opens");
                for piece in black_box(r).chunks(1448) {
                    o.update(piece, out);
                }
                let ty = dec.finish_stream(o).expect("authenticates");
                n += out.len() + usize::from(ty);
            }
            n
        };
        assert_eq!(
            streamed(&mut dec, &mut out),
            RECORDS * (RECORD_PLAINTEXT + 23)
        );
        assert_eq!(out, text_bytes(RECORD_PLAINTEXT, RECORDS as u64 - 1));
        g.bench_function(format!("{name}_in_segments"), |b| {
            b.iter(|| streamed(&mut dec, &mut out))
        });
    }
    g.finish();
}

// ------------------------------------------------------------------------- HPACK

/// One hpack-test-case story: the header blocks of one direction in order, each with the
/// SETTINGS_HEADER_TABLE_SIZE acknowledged before it (if any) and its decoded fields.
struct Story {
    blocks: Vec<(Option<u32>, Vec<u8>)>,
    fields: Vec<Vec<(String, String)>>,
}

fn story(json: &str) -> Story {
    let v: serde_json::Value = serde_json::from_str(json).expect("story JSON");
    let cases = v["cases"].as_array().expect("cases");
    Story {
        blocks: cases
            .iter()
            .map(|c| {
                let size = c["header_table_size"].as_u64().map(|n| n as u32);
                (size, unhex(c["wire"].as_str().expect("wire")))
            })
            .collect(),
        fields: cases
            .iter()
            .map(|c| {
                let headers = c["headers"].as_array().expect("headers");
                headers
                    .iter()
                    .flat_map(|h| h.as_object().expect("one field").iter())
                    .map(|(n, v)| (n.clone(), v.as_str().expect("value").to_owned()))
                    .collect()
            })
            .collect(),
    }
}

/// Decodes every block of a story with a fresh decoder (the blocks share one compression
/// context), as the HTTP/2 parser does: limit as in `Limits::default()`.
fn decode_story(blocks: &[(Option<u32>, Vec<u8>)], cap: usize, mut each: impl FnMut(&[u8], &[u8])) {
    let mut d = hpack::Decoder::new(false, cap);
    for (size, block) in blocks {
        if let Some(n) = size {
            d.set_allowed_size(*n);
        }
        d.decode(block, &mut |f| match f {
            Field::Known { name, value } => each(name, value),
            Field::Unknown => panic!("unknown field"),
        })
        .expect("block decodes");
    }
}

fn bench_hpack(c: &mut Criterion) {
    let cap = Limits::default().max_hpack_table;
    let mut g = c.benchmark_group("hpack_decode");
    for (name, json) in [
        // 10 browser requests (Firefox, 2012: http2/http_samples), Huffman-coded, dynamic
        // table used.
        (
            "requests_10_blocks",
            include_str!("../tests/data/hpack/stories/haskell-http2-linear-huffman/story_02.json"),
        ),
        // 29 server responses encoded by nghttp2 (Huffman when shorter, dynamic table,
        // entries evicted from the 4096-byte table).
        (
            "responses_29_blocks",
            include_str!("../tests/data/hpack/stories/nghttp2-change-table-size/story_30.json"),
        ),
    ] {
        let s = story(json);
        let mut got = Vec::new();
        decode_story(&s.blocks, cap, |n, v| {
            got.push((
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            ))
        });
        assert_eq!(got, s.fields.concat(), "{name}");
        g.throughput(Throughput::ElementsAndBytes {
            elements: got.len() as u64,
            bytes: s.blocks.iter().map(|(_, b)| b.len() as u64).sum(),
        });
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0;
                decode_story(black_box(&s.blocks), cap, |name, value| {
                    n += name.len() + value.len()
                });
                n
            })
        });
    }
    // What each new connection direction pays before its first fields: a fresh decoder and
    // one small block with one Huffman string (RFC 7541 C.4.1: `:authority www.example.com`).
    let first = vec![(None, unhex("828684418cf1e3c2e5f23a6ba0ab90f4ff"))];
    let mut got = Vec::new();
    decode_story(&first, cap, |n, v| got.push((n.to_vec(), v.to_vec())));
    assert_eq!(
        got[3],
        (b":authority".to_vec(), b"www.example.com".to_vec())
    );
    g.throughput(Throughput::ElementsAndBytes {
        elements: 4,
        bytes: first[0].1.len() as u64,
    });
    g.bench_function("fresh_decoder_first_block", |b| {
        b.iter(|| {
            let mut n = 0;
            decode_story(black_box(&first), cap, |name, value| {
                n += name.len() + value.len()
            });
            n
        })
    });
    g.finish();
}

// ------------------------------------------------------------------------- HTTP/1

/// One keep-alive connection: `n` browser-like requests, each answered before the next.
/// With `bodies`, responses carry text bodies (60% 0.2-8 kB, 35% 8-40 kB, 5% 40-120 kB), a
/// third of them chunked (4 KiB chunks), the rest with Content-Length, and every tenth is a
/// 304; without, every response is a 304 (heads only). Returns the stream as the reassembly
/// would deliver it: each request whole, each response in MSS-sized pieces.
fn http1_stream(n: usize, bodies: bool, seed: u64) -> (Vec<(Direction, Vec<u8>)>, Vec<u16>) {
    let mut rng = Rng(seed);
    let mut events = Vec::new();
    let mut statuses = Vec::new();
    let body_src = text_bytes(120_000, seed);
    for i in 0..n {
        let (path, dest) = match i % 4 {
            0 => (format!("/static/js/app.{i:04}.js"), "script"),
            1 => (format!("/static/css/site.{i:04}.css"), "style"),
            2 => (format!("/img/hero-{i}.webp?w=1280&q=80"), "image"),
            _ => (format!("/api/v1/items?page={i}&sort=recent"), "empty"),
        };
        let req = format!(
            "GET {path} HTTP/1.1\r\n\
             Host: www.example.test\r\n\
             Connection: keep-alive\r\n\
             sec-ch-ua: \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\n\
             sec-ch-ua-mobile: ?0\r\n\
             sec-ch-ua-platform: \"Linux\"\r\n\
             User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n\
             Accept: */*\r\n\
             Sec-Fetch-Site: same-origin\r\n\
             Sec-Fetch-Mode: no-cors\r\n\
             Sec-Fetch-Dest: {dest}\r\n\
             Referer: https://www.example.test/articles/2026/11/misdirected\r\n\
             Accept-Encoding: gzip, deflate, br, zstd\r\n\
             Accept-Language: en-US,en;q=0.9\r\n\
             Cookie: session=5f2b7c9e1a4d8f3b6e0c2a7d9b1f4e8c; theme=dark; consent=1\r\n\
             If-None-Match: \"{:016x}\"\r\n\r\n",
            rng.next()
        );
        events.push((Direction::ClientToServer, req.into_bytes()));
        let common = format!(
            "Date: Mon, 23 Nov 2026 21:02:{:02} GMT\r\n\
             Server: nginx/1.22.1\r\n\
             ETag: \"{:016x}\"\r\n\
             Cache-Control: public, max-age=31536000, immutable\r\n\
             Connection: keep-alive\r\n",
            i % 60,
            rng.next()
        );
        let mut rs;
        if !bodies || i % 10 == 9 {
            rs = format!("HTTP/1.1 304 Not Modified\r\n{common}\r\n").into_bytes();
            statuses.push(304);
        } else {
            let len = match rng.range(0, 100) {
                0..=59 => rng.range(200, 8_000),
                60..=94 => rng.range(8_000, 40_000),
                _ => rng.range(40_000, 120_000),
            } as usize;
            let at = rng.range(0, (body_src.len() - len) as u64 + 1) as usize;
            let body = &body_src[at..at + len];
            let ctype = [
                "text/javascript",
                "text/css",
                "image/webp",
                "application/json",
            ][i % 4];
            if i % 3 == 0 {
                rs = format!(
                    "HTTP/1.1 200 OK\r\n{common}Content-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                .into_bytes();
                for chunk in body.chunks(4096) {
                    rs.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    rs.extend_from_slice(chunk);
                    rs.extend_from_slice(b"\r\n");
                }
                rs.extend_from_slice(b"0\r\n\r\n");
            } else {
                rs = format!(
                    "HTTP/1.1 200 OK\r\n{common}Content-Type: {ctype}\r\nContent-Length: {len}\r\n\r\n"
                )
                .into_bytes();
                rs.extend_from_slice(body);
            }
            statuses.push(200);
        }
        for piece in rs.chunks(MSS) {
            events.push((Direction::ServerToClient, piece.to_vec()));
        }
    }
    (events, statuses)
}

fn parse_http1(
    events: &[(Direction, Vec<u8>)],
    limits: &std::sync::Arc<misdirect::proto::http::HttpLimits>,
) -> usize {
    let mut conn = HttpConn::new(Start::Http1, false, limits.clone());
    let at = Timestamp(1_700_000_000 * Timestamp::NANOS_PER_SEC);
    for (dir, bytes) in events {
        let handover = conn.data(*dir, bytes, at);
        debug_assert!(handover.is_none());
    }
    conn.end(Direction::ClientToServer);
    conn.end(Direction::ServerToClient);
    let (log, _) = conn.finish();
    log.exchanges.len()
}

fn bench_http1(c: &mut Criterion) {
    let limits = Limits::default().http();
    let mut g = c.benchmark_group("http1_parse");
    for (name, bodies) in [
        ("keepalive_100_with_bodies", true),
        ("keepalive_100_heads_only", false),
    ] {
        let (events, statuses) = http1_stream(100, bodies, 7);
        // Checked once: every exchange parsed, paired, with its status.
        let mut conn = HttpConn::new(Start::Http1, false, limits.clone());
        for (dir, bytes) in &events {
            conn.data(*dir, bytes, Timestamp(0));
        }
        let (log, _) = conn.finish();
        let got: Vec<u16> = log
            .exchanges
            .iter()
            .map(|e| e.status.unwrap_or(0))
            .collect();
        assert_eq!(got, statuses, "{name}");
        assert!(log.anomalies.is_empty(), "{name}: {:?}", log.anomalies);
        assert!(log
            .exchanges
            .iter()
            .all(|e| e.request_seen && e.method.as_deref() == Some("GET")));
        g.throughput(Throughput::ElementsAndBytes {
            elements: statuses.len() as u64,
            bytes: events.iter().map(|(_, b)| b.len() as u64).sum(),
        });
        g.bench_function(name, |b| {
            b.iter(|| parse_http1(black_box(&events), &limits))
        });
    }
    g.finish();
}

criterion_group! {
    name = micro;
    config = config();
    targets = bench_reassembly, bench_client_hello, bench_record_decryption, bench_hpack, bench_http1
}
criterion_main!(micro);
