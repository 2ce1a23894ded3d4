//! The capture synthesizer behind `examples/synth` (and `tests/synth.rs`): a deterministic,
//! realistic Ethernet pcap of about a requested size, with the NSS key log that decrypts it
//! and the facts misdirect should find in it.
//!
//! Traffic: TLS 1.3 (TLS_AES_128_GCM_SHA256) connections carrying HTTP/2, cleartext HTTP/1.1
//! keep-alive connections (port 80) and h2c prior-knowledge connections (port 8080). Many
//! connections are open at once and their packets interleave. TCP segments carry at most
//! 1448 bytes; the receiver ACKs every second segment; a small share of segments are swapped
//! (out of order) or sent twice (retransmitted, identical bytes). Some TLS connections are
//! "coalesced": after requests for their SNI the client asks for another host covered by the
//! certificate, the server answers 421, and the client retries on a new connection opened
//! for that host. Every 421 is counted in [`Expect`].
//!
//! Records are encrypted with keys derived by misdirect's own TLS 1.3 key schedule
//! (`misdirect::proto::tls::keys`) from random traffic secrets written to the key log;
//! nothing else in the handshake is cryptographically real (key shares, signature and
//! Finished are random bytes), which a passive analyser cannot tell.

use loona_hpack::encoder::encode_integer_into;
use misdirect::capture::write::PcapWriter;
use misdirect::proto::tls::keys;
use misdirect::Timestamp;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};

/// What to synthesize.
#[derive(Clone, Debug)]
pub struct Config {
    /// Stop opening connections once this many capture bytes are written; the connections
    /// still open then are ended after their current exchange.
    pub size: u64,
    pub seed: u64,
    /// Connections open at once (their packets interleave).
    pub concurrency: usize,
}

impl Config {
    pub fn new(size: u64, seed: u64) -> Self {
        Config {
            size,
            seed,
            concurrency: 64,
        }
    }
}

/// The facts misdirect (with the key log) and tshark should find.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Expect {
    pub seed: u64,
    pub bytes: u64,
    pub packets: u64,
    pub connections: u64,
    pub tls_connections: u64,
    pub http1_connections: u64,
    pub h2c_connections: u64,
    /// TLS connections per SNI.
    pub snis: BTreeMap<String, u64>,
    /// HTTP requests (each answered), all connections.
    pub requests: u64,
    /// Requests on cleartext connections: what is visible without the key log.
    pub requests_cleartext: u64,
    /// HTTP 421 responses (all on TLS connections, so found only with the key log).
    pub http_421: u64,
    pub out_of_order_segments: u64,
    pub retransmitted_segments: u64,
}

const MSS: usize = 1448;
const TLS_PORT: u16 = 443;
const HTTP1_PORT: u16 = 80;
const H2C_PORT: u16 = 8080;
/// Per mille of data segments swapped with the next one, and sent twice.
const OUT_OF_ORDER_PERMILLE: u64 = 5;
const RETRANSMIT_PERMILLE: u64 = 3;

/// SplitMix64: small, fast, and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x6d69_7364_6972_6563)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..hi` (`hi > lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo)
    }
    pub fn permille(&mut self, p: u64) -> bool {
        self.next_u64() % 1000 < p
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.fill(&mut b);
        b
    }
}

/// Hosts served (all covered by the certificate's `*.example.test`).
const HOSTS: &[&str] = &[
    "www.example.test",
    "api.example.test",
    "static.example.test",
    "img.example.test",
    "cdn.example.test",
    "auth.example.test",
    "app.example.test",
    "shop.example.test",
];

const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/app.js",
    "/style.css",
    "/logo.png",
    "/api/v1/items",
    "/api/v1/user",
    "/fonts/main.woff2",
    "/img/hero.jpg",
    "/search?q=misdirect",
];

const CONTENT_TYPES: &[&str] = &[
    "text/html",
    "application/javascript",
    "text/css",
    "image/png",
    "application/json",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    TlsH2,
    Http1,
    H2c,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    C2s,
    S2c,
}

/// AES-128-GCM record protection for one direction (RFC 8446 §5.2, §5.3).
struct Sealer {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
}

impl Sealer {
    fn new(secret: &[u8]) -> Self {
        let suite = keys::suite(0x1301).expect("TLS_AES_128_GCM_SHA256 is supported");
        let k = keys::derive_traffic_keys(&suite, secret);
        let key = LessSafeKey::new(
            UnboundKey::new(&AES_128_GCM, k.key.bytes()).expect("16-byte AES key"),
        );
        let mut iv = [0u8; 12];
        iv.copy_from_slice(k.iv.bytes());
        Sealer { key, iv, seq: 0 }
    }

    /// Appends TLSCiphertext records carrying `data` of inner type `content_type`.
    fn seal(&mut self, content_type: u8, data: &[u8], out: &mut Vec<u8>) {
        for chunk in data.chunks(16_384) {
            let len = chunk.len() + 1 + 16;
            let header = [23, 3, 3, (len >> 8) as u8, len as u8];
            out.extend_from_slice(&header);
            let start = out.len();
            out.extend_from_slice(chunk);
            out.push(content_type);
            let mut nonce = self.iv;
            for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
                *n ^= s;
            }
            self.seq += 1;
            let tag = self
                .key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(header),
                    &mut out[start..],
                )
                .expect("record within AEAD limits");
            out.extend_from_slice(tag.as_ref());
        }
    }
}

/// An HPACK encoder (RFC 7541) writing literals without Huffman coding and reusing its
/// dynamic table for repeated fields. The table never reaches 4096 bytes here (a few
/// entries per connection), so nothing is evicted.
#[derive(Default)]
struct Hpack {
    /// Newest first: dynamic index 62 + position.
    table: Vec<(String, String)>,
}

/// An HPACK integer with a `prefix_bits`-bit prefix after the bits of `first` (RFC 7541
/// §5.1), by loona-hpack's encoder.
fn hpack_int(out: &mut Vec<u8>, prefix_bits: u8, first: u8, v: usize) {
    encode_integer_into(v, prefix_bits, first, out).expect("a Vec takes every byte");
}

fn hpack_str(out: &mut Vec<u8>, s: &str) {
    hpack_int(out, 7, 0, s.len());
    out.extend_from_slice(s.as_bytes());
}

impl Hpack {
    /// A field from the static table, by index.
    fn indexed(&mut self, out: &mut Vec<u8>, index: usize) {
        hpack_int(out, 7, 0x80, index);
    }

    /// A field worth remembering: indexed when in the dynamic table, else a literal with
    /// incremental indexing whose name is static index `name_index`.
    fn remembered(&mut self, out: &mut Vec<u8>, name_index: usize, name: &str, value: &str) {
        if let Some(pos) = self.table.iter().position(|(n, v)| n == name && v == value) {
            hpack_int(out, 7, 0x80, 62 + pos);
        } else {
            hpack_int(out, 6, 0x40, name_index);
            hpack_str(out, value);
            self.table.insert(0, (name.to_owned(), value.to_owned()));
        }
    }

    /// A literal without indexing, its name static index `name_index`.
    fn literal(&mut self, out: &mut Vec<u8>, name_index: usize, value: &str) {
        hpack_int(out, 4, 0x00, name_index);
        hpack_str(out, value);
    }
}

fn h2_frame(out: &mut Vec<u8>, ty: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len();
    out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const SETTINGS: u8 = 4;
const WINDOW_UPDATE: u8 = 8;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;
const ACK: u8 = 1;

struct Tls {
    c: Sealer,
    s: Sealer,
}

struct H2 {
    next_stream: u32,
    client: Hpack,
    server: Hpack,
}

/// One request to make: the authority, and whether the server refuses it with 421.
struct Request {
    authority: String,
    path: String,
    misdirected: bool,
    /// The retry of a 421 (made even when the budget is spent, like the 421 itself).
    retry: bool,
}

struct Conn {
    kind: Kind,
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    /// Next sequence number of each side.
    cseq: u32,
    sseq: u32,
    ip_id: u16,
    queue: VecDeque<Vec<u8>>,
    tls: Option<Tls>,
    h2: Option<H2>,
    host: String,
    requests: VecDeque<Request>,
    /// A 421'd request to retry on a new connection once this exchange is over.
    retry: Option<Request>,
    closed: bool,
}

/// A retry: the request, from the client address of the connection that got the 421.
struct Retry {
    request: Request,
    client: ([u8; 4], u16),
}

/// The synthesizer's state.
struct Synth<W: Write, K: Write> {
    rng: Rng,
    out: PcapWriter<W>,
    keylog: K,
    expect: Expect,
    /// Capture time in microseconds since the epoch.
    now_us: i64,
    next_client: u32,
    body: Vec<u8>,
    cert: Vec<u8>,
}

/// The leaf certificate served by every synthetic TLS server: `CN=*.example.test`, SAN
/// `*.example.test`, `example.test` (the one in `samples/chromium-coalesce-421.pcapng`).
const CERT_HEX: &str = concat!(
    "308203953082027da003020102021408ff0a0c1ba1423cbe54a27e18c2415b564f3ccc300d06092a864886f70d01010b",
    "0500303531173015060355040a0c0e6d69736469726563742074657374311a301806035504030c116d69736469726563",
    "742074657374204341301e170d3236313132333231303135325a170d3237313132333231303135325a30323117301506",
    "0355040a0c0e6d697364697265637420746573743117301506035504030c0e2a2e6578616d706c652e74657374308201",
    "22300d06092a864886f70d01010105000382010f003082010a0282010100d5a24ad030a6b088514ad45eb6518005aa89",
    "cf2b93b086ea5ded7ab4eb56f5acfea3575f5c0e824bb0bd2550f03f167da9884408f2ff222258ebdfee91f059e1f124",
    "29b52e837dda831de92b5f831ebf8fcf7ee1d82438a5857862bd0be3b64113ec4015c7db62187196a62b4d4be5e60842",
    "5594596ae30bad9d710b5a470e9ab3e31151cbaf624e500fa414a5120f0e1c421d880449f1017f88024d6cd059cc753c",
    "1b80677a96c6f1987c6cd0b614562f34b09788907de53464c4f35dba64a9d9c2fa4030c77adf909047d7224d954d7e30",
    "2d115fd324d1c0b7b5efb6f096f3dcdad33a30047e8bc4aaddce097113340ddef0997b1ba0ed299c1db974c639690203",
    "010001a3819f30819c300c0603551d130101ff04023000300e0603551d0f0101ff0404030205a030130603551d25040c",
    "300a06082b06010505070301301d0603551d0e04160414ae69d0fc9d876c948b881d961ba2ad26b0e42376301f060355",
    "1d230418301680140bbc75b634244548d6225fb7803cc2412e1b4b8430270603551d110420301e820e2a2e6578616d70",
    "6c652e74657374820c6578616d706c652e74657374300d06092a864886f70d01010b050003820101006a0f18a858d33c",
    "9731d8c508be569c55dc079c357ce0db09fe68e2f5e5d2290b249e60b5b366853d127bc87ee7ccab965ee185a5ecf868",
    "030ace8f036edee0974d751d497f9adaedd5485b13e64afb62fb5f7a9387575972e09b8b17e0f171e0dc7a966a99180d",
    "9e1141eb42df6f979dea8b41dff8a3953c4fcdc6aad4710e13fe481a389db8599391576b0984a495becd65c23026072f",
    "a77978468c67070aa2af21b98e38486c659b50c51c7184d014a89b9356656b16fcd94c27eed33cdf17c1913a9ff25e37",
    "81288c4636de690ae23e21ef195395f58491917902aecd0b711d9f034db17ac049ecfbb6c73635908c2d6ffc0f9097b7",
    "aa19f56586e88a1ac0",
);

fn cert_der() -> Vec<u8> {
    (0..CERT_HEX.len() / 2)
        .map(|i| u8::from_str_radix(&CERT_HEX[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes the capture to `pcap` and the key log to `keylog`; returns what is in them.
pub fn synthesize<W: Write, K: Write>(cfg: &Config, pcap: W, keylog: K) -> io::Result<Expect> {
    let mut rng = Rng::new(cfg.seed);
    // Bodies are slices of one buffer of text-like bytes (compressible, like real pages).
    let mut body = Vec::with_capacity(1 << 20);
    while body.len() < 1 << 20 {
        let w = rng.range(2, 10) as usize;
        for _ in 0..w {
            body.push(b'a' + rng.range(0, 26) as u8);
        }
        body.push(if rng.permille(100) { b'\n' } else { b' ' });
    }
    let mut s = Synth {
        rng,
        out: PcapWriter::new(pcap, 1, 65_535, false)?,
        keylog,
        expect: Expect {
            seed: cfg.seed,
            bytes: 24,
            ..Expect::default()
        },
        now_us: 1_795_000_000_000_000,
        next_client: 0,
        body,
        cert: cert_der(),
    };
    let mut active: Vec<Conn> = Vec::new();
    loop {
        let budget_left = s.expect.bytes < cfg.size;
        while budget_left && active.len() < cfg.concurrency {
            let c = s.new_conn(None)?;
            active.push(c);
        }
        if active.is_empty() {
            break;
        }
        let i = s.rng.range(0, active.len() as u64) as usize;
        if active[i].queue.is_empty() {
            if !budget_left {
                // Out of budget: end after the exchange under way.
                active[i].requests.retain(|r| r.misdirected || r.retry);
            }
            match active[i].requests.pop_front() {
                Some(req) => s.exchange(&mut active[i], req),
                None if !active[i].closed => s.close(&mut active[i]),
                None => {
                    active.swap_remove(i);
                    continue;
                }
            }
        }
        if let Some(frame) = active[i].queue.pop_front() {
            s.now_us += s.rng.range(1, 40) as i64;
            let ts = Timestamp::from_parts(
                s.now_us / 1_000_000,
                (s.now_us % 1_000_000) as u64,
                1_000_000,
            );
            s.out.write_packet(ts, &frame, frame.len() as u32)?;
            s.expect.packets += 1;
            s.expect.bytes += 16 + frame.len() as u64;
        }
        if active[i].queue.is_empty() {
            // The client retries a 421 once it has the answer.
            if let Some(request) = active[i].retry.take() {
                let retry = Retry {
                    request,
                    client: active[i].client,
                };
                let c = s.new_conn(Some(retry))?;
                active.push(c);
            }
        }
    }
    s.out.into_inner().flush()?;
    s.keylog.flush()?;
    Ok(s.expect)
}

impl<W: Write, K: Write> Synth<W, K> {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.rng.range(0, from.len() as u64) as usize]
    }

    /// Opens a connection (its TCP, TLS and HTTP/2 handshakes are queued). `retry` is a
    /// request refused with 421 elsewhere: a TLS connection for its authority, carrying it.
    fn new_conn(&mut self, retry: Option<Retry>) -> io::Result<Conn> {
        let kind = if retry.is_some() {
            Kind::TlsH2
        } else {
            match self.rng.range(0, 100) {
                0..=59 => Kind::TlsH2,
                60..=79 => Kind::Http1,
                _ => Kind::H2c,
            }
        };
        self.next_client += 1;
        let n = self.next_client;
        // 10.0.0.1 onwards, skipping .0 and .255.
        let (rest, last) = (n / 254, (n % 254 + 1) as u8);
        let mut client = ([10, (rest >> 8) as u8, rest as u8, last], 0);
        client.1 = self.rng.range(32_768, 61_000) as u16;
        if let Some(r) = &retry {
            // The same client, its next port.
            client = (r.client.0, r.client.1.wrapping_add(1).max(1024));
        }
        let host = match &retry {
            Some(r) => r.request.authority.clone(),
            None => self.pick(HOSTS).to_owned(),
        };
        let host_index = HOSTS.iter().position(|h| *h == host).unwrap_or(0) as u8;
        let port = match kind {
            Kind::TlsH2 => TLS_PORT,
            Kind::Http1 => HTTP1_PORT,
            Kind::H2c => H2C_PORT,
        };
        let mut c = Conn {
            kind,
            client,
            server: ([192, 0, 2, 10 + host_index % 2], port),
            cseq: self.rng.next_u64() as u32,
            sseq: self.rng.next_u64() as u32,
            ip_id: self.rng.next_u64() as u16,
            queue: VecDeque::new(),
            tls: None,
            h2: None,
            host: host.clone(),
            requests: VecDeque::new(),
            retry: None,
            closed: false,
        };
        // Short connections (1-3 requests) mostly, some long ones (20-200).
        let count = if retry.is_some() {
            1
        } else if self.rng.permille(100) {
            self.rng.range(20, 200)
        } else {
            self.rng.range(1, 4)
        };
        if let Some(r) = retry {
            c.requests.push_back(r.request);
        } else {
            // A tenth of TLS connections with more than one request get coalesced onto.
            let coalesce_at = (kind == Kind::TlsH2 && count > 1 && self.rng.permille(100))
                .then(|| self.rng.range(1, count));
            for i in 0..count {
                let misdirected = coalesce_at == Some(i);
                let authority = if misdirected {
                    // Browsers coalesce onto a connection to the same address: another
                    // host of the same server.
                    let mut other = self.pick(HOSTS);
                    while other == host || same_server(other) != same_server(&host) {
                        other = self.pick(HOSTS);
                    }
                    other.to_owned()
                } else {
                    host.clone()
                };
                let path = self.pick(PATHS).to_owned();
                c.requests.push_back(Request {
                    authority,
                    path,
                    misdirected,
                    retry: false,
                });
            }
        }
        self.expect.connections += 1;
        // TCP handshake, with the MSS option.
        let syn = self.segment(&mut c, Dir::C2s, 0x02, &[]);
        c.queue.push_back(syn);
        let synack = self.segment(&mut c, Dir::S2c, 0x12, &[]);
        c.queue.push_back(synack);
        c.cseq = c.cseq.wrapping_add(1);
        c.sseq = c.sseq.wrapping_add(1);
        let ack = self.segment(&mut c, Dir::C2s, 0x10, &[]);
        c.queue.push_back(ack);
        match kind {
            Kind::TlsH2 => {
                self.expect.tls_connections += 1;
                *self.expect.snis.entry(host.clone()).or_default() += 1;
                self.tls_handshake(&mut c)?;
                self.h2_open(&mut c);
            }
            Kind::Http1 => self.expect.http1_connections += 1,
            Kind::H2c => {
                self.expect.h2c_connections += 1;
                self.h2_open(&mut c);
            }
        }
        Ok(c)
    }

    fn tls_handshake(&mut self, c: &mut Conn) -> io::Result<()> {
        let client_random: [u8; 32] = self.rng.bytes();
        let secrets: [[u8; 32]; 4] = [
            self.rng.bytes(),
            self.rng.bytes(),
            self.rng.bytes(),
            self.rng.bytes(),
        ];
        let cr = hex(&client_random);
        for (label, secret) in [
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            "CLIENT_TRAFFIC_SECRET_0",
            "SERVER_TRAFFIC_SECRET_0",
        ]
        .iter()
        .zip(&secrets)
        {
            writeln!(self.keylog, "{label} {cr} {}", hex(secret))?;
        }
        let session_id: [u8; 32] = self.rng.bytes();

        // ClientHello (RFC 8446 §4.1.2).
        let mut ext = Vec::new();
        let name = c.host.as_bytes();
        ext_push(&mut ext, 0, &{
            let mut v = u16be(name.len() + 3).to_vec();
            v.push(0);
            v.extend_from_slice(&u16be(name.len()));
            v.extend_from_slice(name);
            v
        });
        ext_push(&mut ext, 10, &[0, 4, 0, 0x1d, 0, 0x17]);
        ext_push(&mut ext, 13, &[0, 8, 4, 3, 8, 4, 4, 1, 5, 3]);
        ext_push(&mut ext, 16, b"\x00\x0c\x02h2\x08http/1.1");
        ext_push(&mut ext, 43, &[4, 3, 4, 3, 3]);
        ext_push(&mut ext, 45, &[1, 1]);
        let share: [u8; 32] = self.rng.bytes();
        let mut ks = vec![0, 36, 0, 0x1d, 0, 32];
        ks.extend_from_slice(&share);
        ext_push(&mut ext, 51, &ks);
        let mut ch = vec![3, 3];
        ch.extend_from_slice(&client_random);
        ch.push(32);
        ch.extend_from_slice(&session_id);
        ch.extend_from_slice(&[0, 6, 0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 1, 0]);
        ch.extend_from_slice(&u16be(ext.len()));
        ch.extend_from_slice(&ext);
        let mut flight = Vec::new();
        plain_record(&mut flight, 22, 0x0301, &handshake(1, &ch));
        self.send(c, Dir::C2s, &flight);

        // ServerHello, ChangeCipherSpec, then the encrypted server flight.
        let mut ext = Vec::new();
        ext_push(&mut ext, 43, &[3, 4]);
        let share: [u8; 32] = self.rng.bytes();
        let mut ks = vec![0, 0x1d, 0, 32];
        ks.extend_from_slice(&share);
        ext_push(&mut ext, 51, &ks);
        let mut sh = vec![3, 3];
        sh.extend_from_slice(&self.rng.bytes::<32>());
        sh.push(32);
        sh.extend_from_slice(&session_id);
        sh.extend_from_slice(&[0x13, 0x01, 0]);
        sh.extend_from_slice(&u16be(ext.len()));
        sh.extend_from_slice(&ext);
        let mut flight = Vec::new();
        plain_record(&mut flight, 22, 0x0303, &handshake(2, &sh));
        plain_record(&mut flight, 20, 0x0303, &[1]);
        let mut msgs = Vec::new();
        let mut ee = Vec::new();
        ext_push(&mut ee, 16, b"\x00\x03\x02h2");
        let mut body = u16be(ee.len()).to_vec();
        body.extend_from_slice(&ee);
        msgs.extend_from_slice(&handshake(8, &body));
        let mut cert = vec![0];
        let entry_len = 3 + self.cert.len() + 2;
        cert.extend_from_slice(&u24be(entry_len));
        cert.extend_from_slice(&u24be(self.cert.len()));
        cert.extend_from_slice(&self.cert);
        cert.extend_from_slice(&[0, 0]);
        msgs.extend_from_slice(&handshake(11, &cert));
        let mut cv = vec![8, 4, 1, 0];
        let mut sig = [0u8; 256];
        self.rng.fill(&mut sig);
        cv.extend_from_slice(&sig);
        msgs.extend_from_slice(&handshake(15, &cv));
        msgs.extend_from_slice(&handshake(20, &self.rng.bytes::<32>()));
        let mut s_hs = Sealer::new(&secrets[1]);
        s_hs.seal(22, &msgs, &mut flight);
        self.send(c, Dir::S2c, &flight);

        // The client's ChangeCipherSpec and Finished.
        let mut flight = Vec::new();
        plain_record(&mut flight, 20, 0x0303, &[1]);
        let mut c_hs = Sealer::new(&secrets[0]);
        c_hs.seal(22, &handshake(20, &self.rng.bytes::<32>()), &mut flight);
        // The client's first application flight goes in the same segment burst (h2_open).
        c.tls = Some(Tls {
            c: Sealer::new(&secrets[2]),
            s: Sealer::new(&secrets[3]),
        });
        self.send_raw(c, Dir::C2s, &flight);
        Ok(())
    }

    /// The HTTP/2 connection preface and SETTINGS exchange (RFC 9113 §3.4).
    fn h2_open(&mut self, c: &mut Conn) {
        let mut cl = H2_PREFACE.to_vec();
        // SETTINGS_ENABLE_PUSH=0, SETTINGS_INITIAL_WINDOW_SIZE=6 MiB; a large connection window.
        h2_frame(
            &mut cl,
            SETTINGS,
            0,
            0,
            &[0, 2, 0, 0, 0, 0, 0, 4, 0, 0x60, 0, 0],
        );
        h2_frame(&mut cl, WINDOW_UPDATE, 0, 0, &[0, 0xef, 0, 1]);
        self.send(c, Dir::C2s, &cl);
        let mut sv = Vec::new();
        h2_frame(&mut sv, SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]);
        h2_frame(&mut sv, SETTINGS, ACK, 0, &[]);
        self.send(c, Dir::S2c, &sv);
        let mut ack = Vec::new();
        h2_frame(&mut ack, SETTINGS, ACK, 0, &[]);
        self.send(c, Dir::C2s, &ack);
        c.h2 = Some(H2 {
            next_stream: 1,
            client: Hpack::default(),
            server: Hpack::default(),
        });
    }

    fn body_len(&mut self, misdirected: bool) -> usize {
        if misdirected {
            return 0;
        }
        match self.rng.range(0, 100) {
            0..=59 => self.rng.range(200, 8_000) as usize,
            60..=94 => self.rng.range(8_000, 120_000) as usize,
            _ => self.rng.range(120_000, 1_000_000) as usize,
        }
    }

    fn body_slice(&mut self, len: usize) -> (usize, usize) {
        let max = self.body.len() - len.min(self.body.len());
        let at = self.rng.range(0, max as u64 + 1) as usize;
        (at, at + len.min(self.body.len()))
    }

    /// Queues one request and its response; a 421 leaves its retry in `c.retry`.
    fn exchange(&mut self, c: &mut Conn, req: Request) {
        self.expect.requests += 1;
        if c.kind != Kind::TlsH2 {
            self.expect.requests_cleartext += 1;
        }
        if req.misdirected {
            self.expect.http_421 += 1;
        }
        let len = self.body_len(req.misdirected);
        let (a, b) = self.body_slice(len);
        let ctype = self.pick(CONTENT_TYPES);
        if c.kind == Kind::Http1 {
            let rq = format!(
                "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: synth/1.0\r\nAccept: */*\r\n\r\n",
                req.path, req.authority
            );
            self.send(c, Dir::C2s, rq.as_bytes());
            let mut rs = format!(
                "HTTP/1.1 200 OK\r\nServer: synth\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
                b - a
            )
            .into_bytes();
            rs.extend_from_slice(&self.body[a..b]);
            self.send(c, Dir::S2c, &rs);
            return;
        }
        let Some(h2) = c.h2.as_mut() else {
            return;
        };
        let stream = h2.next_stream;
        h2.next_stream += 2;
        let mut block = Vec::new();
        h2.client.indexed(&mut block, 2); // :method GET
        h2.client
            .indexed(&mut block, if c.kind == Kind::TlsH2 { 7 } else { 6 }); // :scheme
        h2.client
            .remembered(&mut block, 1, ":authority", &req.authority);
        if req.path == "/" {
            h2.client.indexed(&mut block, 4);
        } else {
            h2.client.literal(&mut block, 4, &req.path);
        }
        h2.client
            .remembered(&mut block, 58, "user-agent", "synth/1.0");
        h2.client.remembered(&mut block, 19, "accept", "*/*");
        let mut rq = Vec::new();
        h2_frame(&mut rq, HEADERS, END_HEADERS | END_STREAM, stream, &block);
        let mut block = Vec::new();
        if req.misdirected {
            h2.server.literal(&mut block, 8, "421");
            h2.server.literal(&mut block, 28, "0");
        } else {
            h2.server.indexed(&mut block, 8); // :status 200
            h2.server.remembered(&mut block, 31, "content-type", ctype);
            h2.server.literal(&mut block, 28, &(b - a).to_string());
        }
        h2.server.remembered(&mut block, 54, "server", "synth");
        let mut rs = Vec::new();
        if b == a {
            h2_frame(&mut rs, HEADERS, END_HEADERS | END_STREAM, stream, &block);
        } else {
            h2_frame(&mut rs, HEADERS, END_HEADERS, stream, &block);
            let chunks: Vec<(usize, usize)> = (a..b)
                .step_by(16_384)
                .map(|s| (s, (s + 16_384).min(b)))
                .collect();
            for (k, (s, e)) in chunks.iter().enumerate() {
                let flags = if k + 1 == chunks.len() { END_STREAM } else { 0 };
                h2_frame(&mut rs, DATA, flags, stream, &self.body[*s..*e]);
            }
        }
        self.send(c, Dir::C2s, &rq);
        self.send(c, Dir::S2c, &rs);
        if req.misdirected {
            c.retry = Some(Request {
                authority: req.authority,
                path: req.path,
                misdirected: false,
                retry: true,
            });
        }
    }

    /// Client FIN, server FIN, last ACK.
    fn close(&mut self, c: &mut Conn) {
        let f = self.segment(c, Dir::C2s, 0x11, &[]);
        c.queue.push_back(f);
        c.cseq = c.cseq.wrapping_add(1);
        let f = self.segment(c, Dir::S2c, 0x11, &[]);
        c.queue.push_back(f);
        c.sseq = c.sseq.wrapping_add(1);
        let a = self.segment(c, Dir::C2s, 0x10, &[]);
        c.queue.push_back(a);
        c.closed = true;
    }

    /// Application bytes from one side: TLS-protected when the connection is TLS.
    fn send(&mut self, c: &mut Conn, dir: Dir, data: &[u8]) {
        match c.tls.as_mut() {
            Some(tls) => {
                let mut rec = Vec::with_capacity(data.len() + data.len() / 1000 + 32);
                match dir {
                    Dir::C2s => tls.c.seal(23, data, &mut rec),
                    Dir::S2c => tls.s.seal(23, data, &mut rec),
                }
                self.send_raw(c, dir, &rec);
            }
            None => self.send_raw(c, dir, data),
        }
    }

    /// Stream bytes as MSS-sized segments, ACKed every second one by the receiver, with the
    /// occasional swap or retransmission.
    fn send_raw(&mut self, c: &mut Conn, dir: Dir, data: &[u8]) {
        let mut pending: Option<Vec<u8>> = None;
        let n = data.chunks(MSS).len();
        for (k, chunk) in data.chunks(MSS).enumerate() {
            let last = k + 1 == n;
            let flags = if last { 0x18 } else { 0x10 };
            let seg = self.segment(c, dir, flags, chunk);
            match dir {
                Dir::C2s => c.cseq = c.cseq.wrapping_add(chunk.len() as u32),
                Dir::S2c => c.sseq = c.sseq.wrapping_add(chunk.len() as u32),
            }
            if let Some(held) = pending.take() {
                // Swapped: this segment overtakes the one held back.
                c.queue.push_back(seg);
                c.queue.push_back(held);
            } else if !last && self.rng.permille(OUT_OF_ORDER_PERMILLE) {
                self.expect.out_of_order_segments += 1;
                pending = Some(seg);
                continue;
            } else {
                if self.rng.permille(RETRANSMIT_PERMILLE) {
                    self.expect.retransmitted_segments += 1;
                    c.queue.push_back(seg.clone());
                }
                c.queue.push_back(seg);
            }
            if k % 2 == 1 || last {
                let back = match dir {
                    Dir::C2s => Dir::S2c,
                    Dir::S2c => Dir::C2s,
                };
                let ack = self.segment(c, back, 0x10, &[]);
                c.queue.push_back(ack);
            }
        }
        if let Some(held) = pending {
            c.queue.push_back(held);
        }
    }

    /// One Ethernet/IPv4/TCP frame from `dir`'s side at its current sequence number,
    /// acknowledging everything the other side sent.
    fn segment(&mut self, c: &mut Conn, dir: Dir, flags: u8, payload: &[u8]) -> Vec<u8> {
        let (src, dst, seq, ack) = match dir {
            Dir::C2s => (c.client, c.server, c.cseq, c.sseq),
            Dir::S2c => (c.server, c.client, c.sseq, c.cseq),
        };
        let syn = flags & 0x02 != 0;
        let opts: &[u8] = if syn { &[2, 4, 0x05, 0xa8] } else { &[] };
        let tcp_len = 20 + opts.len() + payload.len();
        let total = 20 + tcp_len;
        let mut f = Vec::with_capacity(14 + total);
        let mac = |ip: [u8; 4]| [0x02, 0x00, ip[0], ip[1], ip[2], ip[3]];
        f.extend_from_slice(&mac(dst.0));
        f.extend_from_slice(&mac(src.0));
        f.extend_from_slice(&[0x08, 0x00]);
        c.ip_id = c.ip_id.wrapping_add(1);
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&c.ip_id.to_be_bytes());
        ip[6] = 0x40; // DF
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&src.0);
        ip[16..20].copy_from_slice(&dst.0);
        let sum = checksum(0, &ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        let tcp_start = f.len();
        f.extend_from_slice(&src.1.to_be_bytes());
        f.extend_from_slice(&dst.1.to_be_bytes());
        f.extend_from_slice(&seq.to_be_bytes());
        let ack_no = if flags & 0x10 != 0 { ack } else { 0 };
        f.extend_from_slice(&ack_no.to_be_bytes());
        f.push((((20 + opts.len()) / 4) << 4) as u8);
        f.push(flags);
        f.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        f.extend_from_slice(opts);
        f.extend_from_slice(payload);
        // Pseudo-header: addresses, protocol, TCP length.
        let mut pseudo = [0u8; 12];
        pseudo[..4].copy_from_slice(&src.0);
        pseudo[4..8].copy_from_slice(&dst.0);
        pseudo[9] = 6;
        pseudo[10..12].copy_from_slice(&(tcp_len as u16).to_be_bytes());
        let partial = sum_words(0, &pseudo);
        let sum = checksum(partial, &f[tcp_start..]);
        f[tcp_start + 16..tcp_start + 18].copy_from_slice(&sum.to_be_bytes());
        f
    }
}

/// Which of the two server addresses serves `host` (192.0.2.10 or .11).
fn same_server(host: &str) -> usize {
    HOSTS.iter().position(|h| *h == host).unwrap_or(0) % 2
}

fn sum_words(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        acc += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u32::from(*b) << 8;
    }
    acc
}

/// The Internet checksum (RFC 1071) of `data`, starting from a partial sum.
fn checksum(partial: u32, data: &[u8]) -> u16 {
    let mut acc = u64::from(sum_words(partial, data));
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

fn u16be(n: usize) -> [u8; 2] {
    (n as u16).to_be_bytes()
}

fn u24be(n: usize) -> [u8; 3] {
    [(n >> 16) as u8, (n >> 8) as u8, n as u8]
}

fn ext_push(out: &mut Vec<u8>, ty: u16, body: &[u8]) {
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&u16be(body.len()));
    out.extend_from_slice(body);
}

fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ty];
    v.extend_from_slice(&u24be(body.len()));
    v.extend_from_slice(body);
    v
}

fn plain_record(out: &mut Vec<u8>, ty: u8, version: u16, body: &[u8]) {
    out.push(ty);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&u16be(body.len()));
    out.extend_from_slice(body);
}
