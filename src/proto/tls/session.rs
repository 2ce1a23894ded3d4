//! One TLS connection: the handshake as both sides sent it, key lookup, and decryption.
//!
//! Contract: [`TlsSession::stream`] takes each direction's reassembled stream events. It
//! frames records ([`super::record`]), joins handshake messages ([`super::handshake`]) and
//! parses the ones the report needs ([`super::hello`]). Once the ClientHello and ServerHello
//! are known it looks up the session's secrets in the [`KeyLog`] and decrypts
//! ([`super::decrypt`]). Decrypted application data goes to `out` in order. Its summary is
//! [`TlsInfo`].
//!
//! Key changes followed: TLS 1.2 switches a direction to the key block at its
//! ChangeCipherSpec (full and abbreviated handshakes alike: the key log names the master
//! secret per client random). TLS 1.3 uses handshake traffic keys right after the ServerHello,
//! switches each direction to application traffic keys after its Finished, and to the next
//! generation at each KeyUpdate (RFC 8446 §7.2). A HelloRetryRequest is followed by the second
//! ClientHello.
//!
//! Recovery: TLS has no resynchronisation points. After a gap, a record that is not TLS, or a
//! record that fails to authenticate, that direction stops being parsed and decrypted, and the
//! reason is reported. Nothing after it is guessed.

use super::certs;
use super::decrypt::{RecordDecrypter, RecordProtocol};
use super::handshake::HandshakeReader;
use super::hello::{self, handshake_type as ht, CertificateNames, ClientHello, ServerHello};
use super::keylog::{KeyLog, Label, Secret};
use super::keys::{self, Suite};
use super::opening::Opening;
use super::record::{self, Part, Record, RecordBudget, RecordError, RecordReader};
use super::{CipherSuite, ProtocolName, TlsVersion};
use crate::anomaly::{Anomaly, AnomalyCounts};
use crate::flow::Direction;
use crate::intern::ArcStr;
use crate::rare::{Rare, RareBox};
use crate::Timestamp;
use serde::Serialize;
use std::sync::Arc;

/// What the report says about a TLS connection. Serialized with its rare fields in their
/// places among the others (see the `Serialize` impl): the report's field order is the same
/// as when they were fields of their own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// The first host name of the ClientHello's server_name extension; `None` when absent.
    pub sni: Option<ArcStr>,
    /// The ClientHello's lists; none before it. Read through [`TlsInfo::offered`].
    offered: RareBox<Offered, Arc<Offered>>,
    /// ALPN protocol selected by the server (ServerHello in TLS 1.2, EncryptedExtensions in
    /// TLS 1.3, the latter only when decrypted).
    pub alpn: Option<ProtocolName>,
    /// Negotiated version, e.g. "TLS 1.3".
    pub version: Option<TlsVersion>,
    /// Negotiated cipher suite, by IANA name (or hex when unknown).
    pub cipher: Option<CipherSuite>,
    /// The ClientHello carried an encrypted_client_hello extension; `sni` is then the outer
    /// (public) name, not the name the client really wants.
    pub ech: bool,
    pub hello_retry_request: bool,
    /// Session resumption offered by the client (session ID, ticket or PSK) and whether the
    /// server took it.
    pub resumption_offered: bool,
    pub resumed: bool,
    /// DNS names of the server's leaf certificate: SAN dNSNames, or the subject CN when there
    /// are none (RFC 6125 §6.4.4).
    /// Shared with every connection that received the same Certificate message
    /// ([`certs`]).
    pub server_names: Arc<[String]>,
    pub certificate: Option<Arc<CertificateNames>>,
    /// The server sent its certificate compressed (RFC 8879), so its names are not known.
    pub certificate_compressed: bool,
    /// `decrypted`, `no_keys`, `not_applicable` (no handshake seen), or `failed: <reason>`.
    pub decryption: ArcStr,
    /// True when every direction that carried application data was decrypted.
    pub decrypted: bool,
    pub client_to_server: DirectionInfo,
    pub server_to_client: DirectionInfo,
    /// Made when one of its fields is set; read through [`TlsInfo::rare`].
    rare: RareBox<RareTls>,
}

/// The facts of a TLS connection that most leave empty. Boxed: 48 of `TlsInfo`'s bytes,
/// which every TLS connection keeps while open and in its record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RareTls {
    /// The ClientHello's encrypted_client_hello extension.
    pub ech_detail: Option<hello::EchOffer>,
    /// 0-RTT early data: `decrypted`, or why not; `None` when the client sent none.
    pub early_data: Option<Box<str>>,
    /// Alerts seen (in clear or decrypted), as "level:description" numbers, at most 16.
    pub alerts: Vec<String>,
}

impl Rare for RareTls {
    const NONE: &'static Self = &RareTls {
        ech_detail: None,
        early_data: None,
        alerts: Vec::new(),
    };
}

/// What a ClientHello offered that the report lists. A client sends the same on each of
/// its connections, so it is one value shared by them (interned per thread), where four
/// shared lists took 56 bytes of every TLS connection's facts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Offered {
    /// The whole server_name extension, for the unusual cases (several names, IP literal).
    pub sni: hello::Sni,
    /// ALPN protocols offered by the client, in order.
    pub alpn: Vec<ProtocolName>,
    /// Versions the client offered (supported_versions), e.g. ["TLS 1.3", "TLS 1.2"].
    pub versions: Vec<TlsVersion>,
    /// Key-share groups the client sent shares for (GREASE removed).
    pub key_share_groups: Vec<u16>,
}

/// What a connection whose ClientHello was not seen offered.
impl Rare for Offered {
    const NONE: &'static Offered = &Offered {
        sni: hello::Sni {
            present: false,
            names: Vec::new(),
            ip_literal: false,
            malformed: false,
        },
        alpn: Vec::new(),
        versions: Vec::new(),
        key_share_groups: Vec::new(),
    };
}

impl crate::intern::Weigh for Offered {
    fn weight(&self) -> usize {
        self.sni.weight()
            + self.alpn.weight()
            + std::mem::size_of_val(self.versions.as_slice())
            + std::mem::size_of_val(self.key_share_groups.as_slice())
    }
}

impl From<&Offered> for Arc<Offered> {
    fn from(o: &Offered) -> Self {
        Arc::new(o.clone())
    }
}

impl TlsInfo {
    /// The ClientHello's lists (empty when it was not seen).
    pub fn offered(&self) -> &Offered {
        self.offered.read()
    }

    pub fn rare(&self) -> &RareTls {
        self.rare.read()
    }

    pub fn rare_mut(&mut self) -> &mut RareTls {
        self.rare.write()
    }

    /// The boxes of the ClientHello's lists and of the rare facts as they are, made or not:
    /// for the spill codec (`analysis::codec`), which keeps a box that was never made
    /// unmade.
    pub(crate) fn boxes(&self) -> (&RareBox<Offered, Arc<Offered>>, &RareBox<RareTls>) {
        (&self.offered, &self.rare)
    }

    /// Puts back the boxes [`TlsInfo::boxes`] gave (the spill codec's inverse).
    pub(crate) fn set_boxes(
        &mut self,
        offered: RareBox<Offered, Arc<Offered>>,
        rare: RareBox<RareTls>,
    ) {
        self.offered = offered;
        self.rare = rare;
    }
}

impl Serialize for TlsInfo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let (r, o) = (self.rare(), self.offered());
        let mut st = s.serialize_struct("TlsInfo", 22)?;
        st.serialize_field("sni", &self.sni)?;
        st.serialize_field("sni_detail", &o.sni)?;
        st.serialize_field("alpn_offered", &o.alpn)?;
        st.serialize_field("alpn", &self.alpn)?;
        st.serialize_field("version", &self.version)?;
        st.serialize_field("cipher", &self.cipher)?;
        st.serialize_field("ech", &self.ech)?;
        st.serialize_field("ech_detail", &r.ech_detail)?;
        st.serialize_field("versions_offered", &o.versions)?;
        st.serialize_field("key_share_groups", &o.key_share_groups)?;
        st.serialize_field("hello_retry_request", &self.hello_retry_request)?;
        st.serialize_field("early_data", &r.early_data)?;
        st.serialize_field("resumption_offered", &self.resumption_offered)?;
        st.serialize_field("resumed", &self.resumed)?;
        st.serialize_field("server_names", &self.server_names)?;
        st.serialize_field("certificate", &self.certificate)?;
        st.serialize_field("certificate_compressed", &self.certificate_compressed)?;
        st.serialize_field("decryption", &self.decryption)?;
        st.serialize_field("decrypted", &self.decrypted)?;
        st.serialize_field("client_to_server", &self.client_to_server)?;
        st.serialize_field("server_to_client", &self.server_to_client)?;
        st.serialize_field("alerts", &r.alerts)?;
        st.end()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DirectionInfo {
    pub records: u64,
    /// Application-data record bytes (ciphertext when not decrypted).
    pub application_bytes: u64,
    /// Application data recovered in clear.
    pub decrypted_bytes: u64,
    pub key_updates: u64,
    /// Why this direction stopped being read, if it did.
    pub stopped: Option<ArcStr>,
}

/// Protected records a session holds until it can read them.
#[derive(Default)]
struct Held {
    /// 0-RTT: protected client records seen before the ServerHello, held (bounded) until the
    /// suite is known.
    early: Vec<HeldRecord>,
    early_bytes: usize,
    /// Protected records held while the key log may still bring this session's keys (live
    /// capture), in arrival order over both directions, with their capture time.
    waiting: Vec<(Direction, Timestamp, HeldRecord)>,
    waiting_bytes: usize,
    /// The key log's shared budget the waiting bytes were reserved from.
    budget: Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
}

impl Held {
    /// Takes the records held for late keys and gives their bytes back to the budget.
    fn take_waiting(&mut self) -> Vec<(Direction, Timestamp, HeldRecord)> {
        self.release();
        std::mem::take(&mut self.waiting)
    }

    /// Takes the 0-RTT records held until the suite was known.
    fn take_early(&mut self) -> Vec<HeldRecord> {
        self.early_bytes = 0;
        std::mem::take(&mut self.early)
    }

    fn release(&mut self) {
        if let Some(b) = &self.budget {
            b.fetch_sub(self.waiting_bytes, std::sync::atomic::Ordering::Relaxed);
        }
        self.waiting_bytes = 0;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.release();
    }
}

/// A copy of a protected record, to be read later.
struct HeldRecord {
    content_type: u8,
    version: u16,
    fragment: Vec<u8>,
}

impl HeldRecord {
    fn of(rec: &Record<'_>) -> Self {
        HeldRecord {
            content_type: rec.content_type,
            version: rec.version,
            fragment: rec.fragment.to_vec(),
        }
    }

    fn record(&self) -> Record<'_> {
        Record {
            content_type: self.content_type,
            version: self.version,
            fragment: &self.fragment,
            length: self.fragment.len(),
            part: Part::Whole,
            // Unused: a held record is replayed through `handle`, under the caller's clock.
            at: Timestamp::default(),
        }
    }
}

/// Reading state of one direction.
#[derive(Default)]
struct Dir {
    records: RecordReader,
    handshake: HandshakeReader,
    /// TLS 1.2: ChangeCipherSpec seen, so later records are protected.
    ccs: bool,
    /// A protected record could not be decrypted (no keys, or failure): nothing more is.
    cannot_decrypt: bool,
}

/// Key material of one direction.
#[derive(Default)]
struct DirKeys {
    decrypter: Option<RecordDecrypter>,
    /// TLS 1.2: the key block waiting for this direction's ChangeCipherSpec (boxed: it is
    /// there only until then).
    pending12: Option<Box<keys::TrafficKeys>>,
    /// TLS 1.3: the handshake traffic secret until this direction's Finished (0-RTT ends
    /// with it); after, only an application secret a KeyUpdate derived. The first
    /// application secret is read from the key log when it is needed (at Finished, and at
    /// the first KeyUpdate), rather than kept by every open connection. Boxed again (a thin
    /// pointer, not a slice's two words): an open connection past its handshake has none.
    secret13: Option<Box<Secret>>,
    /// An application-data record (not 0-RTT) authenticated under the current keys: only
    /// application keys open one (TLS 1.3 after this direction's Finished, TLS 1.2 after its
    /// ChangeCipherSpec). The handshake messages that follow a handshake (tickets) come
    /// before the first application data: until then, nothing of this direction streams.
    data_seen: bool,
    /// The server asked for the client's certificate, which comes before the client's
    /// Finished: until that Finished, `data_seen` is not set again.
    cert_requested: bool,
    /// The record being opened piece by piece as it arrives (see `RecordBudget`).
    opening: Option<Box<Opening>>,
}

impl DirKeys {
    /// TLS 1.3: moves on to the keys of `secret` (application keys after Finished, the next
    /// generation at a KeyUpdate).
    fn advance(&mut self, suite: &Suite, secret: &[u8]) {
        if let Some(dec) = self.decrypter.as_mut() {
            dec.rekey(keys::derive_traffic_keys(suite, secret));
        }
    }
}

/// TLS 1.3: a direction's first application traffic secret, as the key log has it.
fn first_application_secret<'k>(
    keylog: &'k KeyLog,
    client_random: &[u8; 32],
    dir: Direction,
) -> Option<&'k [u8]> {
    let secrets = keylog.get(client_random)?;
    match dir {
        Direction::ClientToServer => secrets.get(Label::ClientTraffic0),
        Direction::ServerToClient => secrets.get(Label::ServerTraffic0),
    }
}

/// What decrypting a session takes: the hellos' randoms, the suite, each direction's keys,
/// and the records held for later. Made at the first hello, and dropped as soon as the
/// session cannot be decrypted (no keys in a key log that cannot grow, or an unusable suite
/// or version): most sessions of a capture have no keys, and each open one would keep this
/// for its lifetime. The held records are boxed again, made when there are any; the two
/// directions' key material is made with the keys, in this allocation. The hellos' facts
/// are boxed, and dropped once the keys are found: nothing reads them after.
#[derive(Default)]
struct Keying {
    hellos: Option<Box<Hellos>>,
    /// The ClientHello's random, which names the session in the key log (TLS 1.3 reads
    /// its application secrets there when it needs them); set with the keys.
    client_random: [u8; 32],
    /// TLS 1.2 CBC: both hellos agreed on encrypt_then_mac (RFC 7366); set with the keys.
    encrypt_then_mac: bool,
    suite: Option<Suite>,
    /// `[client to server, server to client]`, made when the keys are found. Not boxed: a
    /// session that will not be decrypted drops its `Keying` at the ServerHello, and one
    /// that will has both, in one allocation rather than two.
    dirs: Option<[DirKeys; 2]>,
    /// 0-RTT: whether the client is still in its early-data epoch.
    early_active: bool,
    held: Option<Box<Held>>,
    /// More was waiting than the hold allows: the session stays undecrypted.
    gave_up_waiting: bool,
    charge: Charge,
}

/// What a decrypting session's incomplete records cost against the shared
/// [`RecordBudget`], per direction; given back when the session ends.
#[derive(Default)]
struct Charge {
    budget: Option<std::sync::Arc<RecordBudget>>,
    /// A record's length at most, so 32 bits.
    bytes: [u32; 2],
}

impl Charge {
    fn set(&mut self, dir: Direction, bytes: usize, keylog: &KeyLog) {
        let i = dir as usize;
        let (Some(was), Ok(bytes)) = (self.bytes.get_mut(i), u32::try_from(bytes)) else {
            return;
        };
        if *was != bytes {
            let budget = self
                .budget
                .get_or_insert_with(|| keylog.record_budget_handle());
            budget.recharge(*was as usize, bytes as usize);
            *was = bytes;
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(b) = &self.budget {
            b.recharge(self.bytes.iter().map(|&b| b as usize).sum(), 0);
        }
    }
}

impl Keying {
    fn dir(&self, dir: Direction) -> Option<&DirKeys> {
        let [c2s, s2c] = self.dirs.as_ref()?;
        Some(match dir {
            Direction::ClientToServer => c2s,
            Direction::ServerToClient => s2c,
        })
    }

    fn dir_mut(&mut self, dir: Direction) -> Option<&mut DirKeys> {
        let [c2s, s2c] = self.dirs.as_mut()?;
        Some(match dir {
            Direction::ClientToServer => c2s,
            Direction::ServerToClient => s2c,
        })
    }

    fn held(&mut self) -> &mut Held {
        self.held.get_or_insert_with(Box::default)
    }

    /// Both hellos' facts, once both were seen (and until the keys are found).
    fn hellos(&self) -> Option<(ClientFacts, ServerFacts)> {
        let h = self.hellos.as_deref()?;
        h.client.zip(h.server)
    }

    fn hellos_mut(&mut self) -> &mut Hellos {
        self.hellos.get_or_insert_with(Box::default)
    }

    fn offers_early_data(&self) -> bool {
        let client = self.hellos.as_deref().and_then(|h| h.client);
        client.is_some_and(|c| c.offers_early_data)
    }

    /// TLS 1.2: a direction whose ChangeCipherSpec was seen switches to its key block.
    fn switch12(&mut self, dir: Direction) {
        let etm = self.encrypt_then_mac;
        let suite = self.suite;
        let Some(d) = self.dir_mut(dir).filter(|d| d.decrypter.is_none()) else {
            return;
        };
        if let (Some(suite), Some(k)) = (suite, d.pending12.take()) {
            d.decrypter = Some(RecordDecrypter::new(
                suite,
                *k,
                RecordProtocol::Tls12 {
                    encrypt_then_mac: etm,
                },
            ));
        }
    }

    /// Leaves the 0-RTT epoch: the client's records are protected with its handshake keys.
    fn end_early_data(&mut self) {
        self.early_active = false;
        let suite = self.suite;
        let Some(c2s) = self.dir_mut(Direction::ClientToServer) else {
            return;
        };
        if let (Some(suite), Some(hs), Some(dec)) =
            (suite, c2s.secret13.as_ref(), c2s.decrypter.as_mut())
        {
            dec.rekey(keys::derive_traffic_keys(&suite, hs.bytes()));
        }
    }

    /// Decrypts `rec` in place with the direction's decrypter (never moved out: it holds
    /// the key, and a moved copy would stay on the stack unwiped); `None` without one.
    fn open(
        &mut self,
        dir: Direction,
        rec: &Record<'_>,
        plain: &mut Vec<u8>,
    ) -> Option<Result<u8, super::decrypt::DecryptError>> {
        let dec = self.dir_mut(dir)?.decrypter.as_mut()?;
        Some(dec.decrypt(rec.content_type, rec.version, rec.fragment, plain))
    }
}

#[derive(Default)]
pub struct TlsSession {
    c2s: Dir,
    s2c: Dir,
    /// `None` before the first hello and once the session cannot be decrypted.
    keying: Option<Box<Keying>>,
    /// A ClientHello was seen (a second one follows a HelloRetryRequest).
    client_hello_seen: bool,
    keys_state: KeysState,
    certificate_seen: bool,
    info: TlsInfo,
    limits: TlsLimits,
    pub anomalies: AnomalyCounts,
}

/// What the hellos said that finding and using the keys takes.
#[derive(Default)]
struct Hellos {
    client: Option<ClientFacts>,
    server: Option<ServerFacts>,
}

/// The ClientHello's facts the session needs once the hello is parsed; the rest went into
/// `info` (a whole ClientHello with its lists was about 0.7 kB, kept for the connection's
/// lifetime).
#[derive(Clone, Copy)]
struct ClientFacts {
    random: [u8; 32],
    offers_early_data: bool,
    encrypt_then_mac: bool,
}

impl ClientFacts {
    fn of(ch: &ClientHello) -> Self {
        ClientFacts {
            random: ch.random,
            offers_early_data: ch.extensions.contains(&hello::extension_type::EARLY_DATA),
            encrypt_then_mac: ch.encrypt_then_mac,
        }
    }
}

/// The ServerHello's facts the session needs once the hello is parsed.
#[derive(Clone, Copy)]
struct ServerFacts {
    random: [u8; 32],
    /// The negotiated version (supported_versions, else the legacy field).
    version: u16,
    cipher_suite: u16,
    encrypt_then_mac: bool,
}

/// The bounds of a session (`Limits::max_tls_handshake_message`, `max_tls_early_data`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsLimits {
    pub max_handshake_message: usize,
    pub max_early_data: usize,
}

impl Default for TlsLimits {
    fn default() -> Self {
        let l = crate::Limits::default();
        TlsLimits {
            max_handshake_message: l.max_tls_handshake_message,
            max_early_data: l.max_tls_early_data,
        }
    }
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum KeysState {
    /// ClientHello and ServerHello not both seen yet.
    #[default]
    Waiting,
    NoKeys,
    Ready,
    /// Keys cannot be used; `TlsInfo::decryption` says why.
    Failed,
}

/// Decrypted application data (or a loss in it) handed to the next parser.
#[derive(Clone, Copy)]
pub enum AppData<'a> {
    Data(&'a [u8]),
    /// This direction's plaintext stops here for good (gap, failure, or no keys).
    Lost,
}

const MAX_ALERTS: usize = 16;

crate::intern::thread_interner!(fn shared_str(str) -> ArcStr);
crate::intern::thread_interner!(fn shared_offered(Offered));
thread_local! {
    /// Space for a decrypted record, one per thread: each session kept one of up to 2 kB
    /// (55 MB of peak RSS with 100k connections open, 72k of them decrypted).
    static PLAIN: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The thread's plaintext space, emptied. Taken out, not borrowed: the plaintext's parsers
/// may decrypt a tunnelled session, which takes it in turn.
fn take_plain() -> Vec<u8> {
    let mut plain = PLAIN.with_borrow_mut(std::mem::take);
    plain.clear();
    plain
}

/// Gives the plaintext space back, the larger of the two kept.
fn give_plain(plain: Vec<u8>) {
    PLAIN.with_borrow_mut(|kept| {
        if kept.capacity() < plain.capacity() {
            *kept = plain;
        }
    });
}

impl TlsSession {
    /// A session bounded by `limits`.
    pub fn new(limits: TlsLimits) -> Self {
        TlsSession {
            limits,
            ..TlsSession::default()
        }
    }

    /// Takes bytes of one direction in order, captured at `clock`'s time. A record's
    /// plaintext is dated when the record began to arrive (held records keep it, so what they
    /// hold is dated when it was captured, not when its keys came): `clock` is set to that
    /// time while it goes to `out`, and back after.
    pub fn data(
        &mut self,
        dir: Direction,
        data: &[u8],
        keylog: &KeyLog,
        clock: &std::cell::Cell<Timestamp>,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        let mut records = std::mem::take(&mut self.dir_mut(dir).records);
        records.stream_long(self.may_stream(dir, keylog));
        let now = clock.get();
        let result = records.feed(data, now, &mut |rec| {
            if rec.part == Part::First {
                keylog.record_budget().count_streamed();
            }
            clock.set(rec.at);
            self.record(dir, rec, keylog, out)
        });
        clock.set(now);
        // The direction stopped while its reader was out: the placeholder was stopped, not
        // the reader.
        if let Some(e) = self.dir_mut(dir).records.failed() {
            records.stop(e);
        }
        // Nothing more of this direction will be decrypted (and no key is awaited): its
        // application data need not be kept, only counted.
        if self.dir_mut(dir).cannot_decrypt && keylog.hold_for_keys() == 0 {
            records.skip_application_data();
        }
        self.dir_mut(dir).records = records;
        self.charge(dir, keylog);
        if let Err(e) = result {
            self.stop(dir, e.reason(), Anomaly::TlsRecordInvalid, out);
        }
    }

    /// Bytes of this direction were never captured: nothing after them can be framed.
    pub fn gap(
        &mut self,
        dir: Direction,
        keylog: &KeyLog,
        clock: &std::cell::Cell<Timestamp>,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        self.pass_on_cut(dir, keylog, clock, out);
        self.dir_mut(dir).records.stop(RecordError::NotTls);
        self.stop(dir, "gap in the captured stream", Anomaly::TlsGap, out);
        self.charge(dir, keylog);
    }

    /// The direction ended (FIN, RST or end of capture).
    pub fn end(
        &mut self,
        dir: Direction,
        keylog: &KeyLog,
        clock: &std::cell::Cell<Timestamp>,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        if self.dir_mut(dir).records.pending() > 0 {
            self.anomalies.add(Anomaly::TlsRecordTruncated);
        }
        self.pass_on_cut(dir, keylog, clock, out);
        self.charge(dir, keylog);
    }

    /// The stream is cut inside a record (a gap, its end, or the connection's end in the
    /// capture). Had the record streamed, its plaintext up to the cut would have been passed
    /// on as it came; held instead, it passes on the same bytes now (unauthenticated, as
    /// those were), so that the report does not depend on which way the record went.
    pub fn pass_on_cut(
        &mut self,
        dir: Direction,
        keylog: &KeyLog,
        clock: &std::cell::Cell<Timestamp>,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        if !self.streamable(dir) {
            return;
        }
        let Some((version, length, held, since)) = self.dir_mut(dir).records.take_cut() else {
            return;
        };
        // What the first part of a streamed record would have been; nothing follows it.
        let first = Record {
            content_type: record::APPLICATION_DATA,
            version,
            fragment: held.get(5..).unwrap_or_default(),
            length,
            part: Part::First,
            at: since,
        };
        let now = clock.get();
        clock.set(since);
        self.stream_part(dir, first, keylog, out);
        clock.set(now);
        if let Some(k) = self.keys_mut(dir) {
            k.opening = None;
        }
    }

    /// Charges what this direction's reader holds against the record budget: only a session
    /// with keys is charged (only such a session can stream, which relieves the budget),
    /// for what it really holds.
    fn charge(&mut self, dir: Direction, keylog: &KeyLog) {
        let holding = if self.keys_state == KeysState::Ready {
            self.dir(dir).records.holding()
        } else {
            0
        };
        if let Some(k) = self.keying.as_deref_mut() {
            k.charge.set(dir, holding, keylog);
        }
    }

    /// What is known so far: handshake facts and record counters. The decryption status is
    /// final only at the end.
    pub fn info(&self) -> &TlsInfo {
        &self.info
    }

    /// The summary, once the connection is over.
    pub fn finish(mut self) -> (TlsInfo, AnomalyCounts) {
        let (c, s) = (&self.c2s, &self.s2c);
        let (ci, si) = (&self.info.client_to_server, &self.info.server_to_client);
        let decryption = match self.keys_state {
            KeysState::Waiting => Some("not_applicable".to_string()),
            KeysState::NoKeys => Some("no_keys".to_string()),
            KeysState::Failed => None,
            KeysState::Ready => {
                let failed: Vec<String> = [
                    (Direction::ClientToServer, c, ci),
                    (Direction::ServerToClient, s, si),
                ]
                .iter()
                .filter(|(_, d, _)| d.cannot_decrypt)
                .map(|(dir, _, info)| {
                    format!(
                        "{} ({})",
                        info.stopped.as_deref().unwrap_or("not decrypted"),
                        dir_name(*dir)
                    )
                })
                .collect();
                Some(if failed.is_empty() {
                    "decrypted".to_string()
                } else {
                    format!("failed: {}", failed.join("; "))
                })
            }
        };
        if let Some(d) = decryption {
            self.info.decryption = shared_str(&d);
        }
        self.info.decrypted = self.keys_state == KeysState::Ready
            && !c.cannot_decrypt
            && !s.cannot_decrypt
            && (ci.application_bytes > 0 || si.application_bytes > 0);
        (
            std::mem::take(&mut self.info),
            std::mem::take(&mut self.anomalies),
        )
    }

    fn dir(&self, dir: Direction) -> &Dir {
        match dir {
            Direction::ClientToServer => &self.c2s,
            Direction::ServerToClient => &self.s2c,
        }
    }

    fn dir_mut(&mut self, dir: Direction) -> &mut Dir {
        self.side(dir).0
    }

    /// A direction's state and its counters (kept in `info`, where the report takes them).
    fn side(&mut self, dir: Direction) -> (&mut Dir, &mut DirectionInfo) {
        match dir {
            Direction::ClientToServer => (&mut self.c2s, &mut self.info.client_to_server),
            Direction::ServerToClient => (&mut self.s2c, &mut self.info.server_to_client),
        }
    }

    /// The key state of a direction, while the session has any.
    fn keys_mut(&mut self, dir: Direction) -> Option<&mut DirKeys> {
        self.keying.as_deref_mut()?.dir_mut(dir)
    }

    /// Where a hello's facts go: made at the first hello, not again once the session
    /// cannot be decrypted.
    fn keying_for_hello(&mut self) -> Option<&mut Keying> {
        if self.keying.is_none() && self.keys_state == KeysState::Waiting {
            self.keying = Some(Box::default());
        }
        self.keying.as_deref_mut()
    }

    /// The version the ServerHello negotiated (supported_versions, else the legacy field),
    /// with or without keys.
    fn version(&self) -> Option<u16> {
        self.info.version.map(|v| v.0)
    }

    /// Whether the ServerHello negotiated TLS 1.3.
    fn tls13(&self) -> bool {
        self.version() == Some(0x0304)
    }

    /// No keys for this session: unless the key log can still bring them, nothing needed
    /// only for decryption is kept.
    fn no_keys(&mut self, keylog: &KeyLog) {
        self.keys_state = KeysState::NoKeys;
        if !keylog.can_grow() {
            self.keying = None;
        }
    }

    /// The keys cannot be used, for good.
    fn keys_failed(&mut self, why: String) {
        self.anomalies.add(Anomaly::TlsUnsupported);
        self.keys_state = KeysState::Failed;
        self.info.decryption = format!("failed: {why}").into();
        self.keying = None;
    }

    fn stop(
        &mut self,
        dir: Direction,
        why: &str,
        anomaly: Anomaly,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        let (d, info) = self.side(dir);
        if info.stopped.is_some() {
            return;
        }
        info.stopped = Some(why.into());
        d.records.stop(RecordError::NotTls);
        if let Some(k) = self.keys_mut(dir) {
            k.opening = None;
            k.decrypter = None;
        }
        // Nothing of this direction is decrypted after this, even with keys found later
        // (its plaintext was reported lost).
        self.dir_mut(dir).cannot_decrypt = true;
        self.anomalies.add(anomaly);
        out(dir, AppData::Lost);
    }

    /// A record as it arrives: counted here, once, whether it is handled now or held and
    /// handled later ([`TlsSession::handle`]).
    fn record(
        &mut self,
        dir: Direction,
        rec: Record<'_>,
        keylog: &KeyLog,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        // Counted when whole, as a held record is: a streamed record cut short is not.
        if matches!(rec.part, Part::Whole | Part::Last) {
            let info = self.side(dir).1;
            info.records += 1;
            if rec.content_type == record::APPLICATION_DATA {
                info.application_bytes += rec.length as u64;
            }
        }
        if rec.part != Part::Whole {
            self.stream_part(dir, rec, keylog, out);
            return;
        }
        self.handle(dir, rec, keylog, out);
    }

    /// Whether this direction's long application-data records may be opened as they come
    /// rather than held: only once the record budget is spent, with keys that can
    /// ([`RecordDecrypter::can_stream`]), on application keys (not 0-RTT ones) that have
    /// already opened application data: then such records are application data in
    /// practice (TLS 1.3 tells a record's real type only at its end).
    fn may_stream(&self, dir: Direction, keylog: &KeyLog) -> bool {
        self.keys_state == KeysState::Ready
            && keylog.record_budget().exhausted()
            && self.streamable(dir)
    }

    /// [`TlsSession::may_stream`] but for the budget.
    fn streamable(&self, dir: Direction) -> bool {
        let Some(k) = self.keying.as_deref() else {
            return false;
        };
        let early = dir == Direction::ClientToServer && k.early_active;
        self.keys_state == KeysState::Ready
            && !self.dir(dir).cannot_decrypt
            && !early
            && k.dir(dir).is_some_and(|keys| {
                keys.data_seen && keys.decrypter.as_ref().is_some_and(|d| d.can_stream())
            })
    }

    /// A part of a streamed record ([`Part`]): opened with the direction's keys as it comes,
    /// its plaintext passed on as application data at once, and the record authenticated
    /// at its last part. A record that then fails, or (TLS 1.3) turns out not to have been
    /// application data, stops the direction like any record that does not decrypt: the
    /// plaintext already passed on is all that is kept of it.
    fn stream_part(
        &mut self,
        dir: Direction,
        rec: Record<'_>,
        keylog: &KeyLog,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        let Some(keys) = self.keys_mut(dir) else {
            return self.lost(dir, out);
        };
        if rec.part == Part::First {
            let Some(dec) = keys.decrypter.as_ref() else {
                return self.lost(dir, out);
            };
            match dec.open_stream(rec.content_type, rec.version, rec.length) {
                Ok(o) => keys.opening = Some(Box::new(o)),
                Err(e) => {
                    let why = format!("record {} did not decrypt: {}", dec.sequence(), e.reason());
                    return self.decrypt_failed(dir, &why, out);
                }
            }
        }
        let Some(mut opening) = keys.opening.take() else {
            return;
        };
        let mut plain = take_plain();
        opening.update(rec.fragment, &mut plain);
        if !plain.is_empty() {
            self.plaintext(dir, record::APPLICATION_DATA, &plain, keylog, out);
        }
        give_plain(plain);
        let Some(keys) = self.keys_mut(dir) else {
            return;
        };
        if rec.part != Part::Last {
            keys.opening = Some(opening);
            return;
        }
        let Some(dec) = keys.decrypter.as_mut() else {
            return;
        };
        let seq = dec.sequence();
        match dec.finish_stream(*opening) {
            Ok(record::APPLICATION_DATA) => keys.data_seen = !keys.cert_requested,
            Ok(inner) => {
                let why = format!(
                    "record {seq} was passed on as it came, as application data, but held content type {inner}"
                );
                self.decrypt_failed(dir, &why, out);
            }
            Err(e) => {
                let why = format!("record {seq} did not decrypt: {}", e.reason());
                self.decrypt_failed(dir, &why, out);
            }
        }
    }

    /// A protected record failed: nothing more of this direction is decrypted.
    fn decrypt_failed(
        &mut self,
        dir: Direction,
        why: &str,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        self.stop(dir, why, Anomaly::TlsDecryptFailed, out);
        self.dir_mut(dir).cannot_decrypt = true;
    }

    fn handle(
        &mut self,
        dir: Direction,
        rec: Record<'_>,
        keylog: &KeyLog,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        let protected = if self.tls13() {
            // RFC 8446 §5: once keys are in use, every record but the compatibility
            // ChangeCipherSpec is application_data on the outside.
            rec.content_type == record::APPLICATION_DATA
        } else {
            self.dir_mut(dir).ccs
        };
        if rec.content_type == record::CHANGE_CIPHER_SPEC {
            // Only a ServerHello that negotiated TLS 1.2 makes a ChangeCipherSpec meaningful;
            // otherwise it is TLS 1.3's compatibility record (RFC 8446 §D.4), e.g. after a
            // HelloRetryRequest or after a 0-RTT ClientHello.
            if self.version().is_some_and(|v| v < 0x0304) {
                self.dir_mut(dir).ccs = true;
                if let Some(k) = self.keying.as_deref_mut() {
                    k.switch12(dir);
                }
                self.resumption_check(dir);
            }
            return;
        }
        if dir == Direction::ClientToServer
            && self.version().is_none()
            && rec.content_type == record::APPLICATION_DATA
        {
            if let Some(k) = self.keying.as_deref_mut().filter(|k| k.offers_early_data()) {
                // 0-RTT data before the ServerHello: which suite protects it is not known yet.
                let held = k.held();
                if held.early_bytes + rec.fragment.len() <= self.limits.max_early_data {
                    held.early_bytes += rec.fragment.len();
                    held.early.push(HeldRecord::of(&rec));
                } else {
                    self.stop(
                        dir,
                        "more 0-RTT data than is held",
                        Anomaly::TlsDecryptFailed,
                        out,
                    );
                }
                return;
            }
        }
        if !protected {
            self.plaintext(dir, rec.content_type, rec.fragment, keylog, out);
            return;
        }
        if self.keys_state == KeysState::NoKeys
            && keylog.hold_for_keys() > 0
            && self.hold(dir, &rec, keylog)
        {
            return;
        }
        self.decrypt(dir, rec, keylog, out);
    }

    /// A protected record: decrypted with its direction's keys, or the direction's
    /// plaintext is lost.
    fn decrypt(
        &mut self,
        dir: Direction,
        rec: Record<'_>,
        keylog: &KeyLog,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        let mut plain = take_plain();
        let Some(k) = self.keying.as_deref_mut() else {
            give_plain(plain);
            return self.lost(dir, out);
        };
        let early = dir == Direction::ClientToServer && k.early_active;
        let Some(mut result) = k.open(dir, &rec, &mut plain) else {
            give_plain(plain);
            return self.lost(dir, out);
        };
        if early && self.info.rare().early_data.is_none() && result.is_ok() {
            self.info.rare_mut().early_data = Some("decrypted".into());
        }
        if result.is_err() && early {
            // The server refused 0-RTT, so the client moved on to handshake keys without an
            // EndOfEarlyData (RFC 8446 §4.2.10).
            k.end_early_data();
            result = k.open(dir, &rec, &mut plain).unwrap_or(result);
        }
        match result {
            Ok(inner) => {
                if let Some(d) = k.dir_mut(dir) {
                    d.data_seen |= !early && !d.cert_requested && inner == record::APPLICATION_DATA;
                }
                if self.tls13()
                    && rec.content_type == record::APPLICATION_DATA
                    && inner != record::APPLICATION_DATA
                {
                    // Handshake and alerts inside protected records are not application data.
                    let info = self.side(dir).1;
                    info.application_bytes = info
                        .application_bytes
                        .saturating_sub(rec.fragment.len() as u64);
                }
                self.plaintext(dir, inner, &plain, keylog, out);
            }
            Err(e) => {
                // The direction stops here: its keys go, dropped (and so wiped) where they
                // lie rather than taken out.
                let d = k.dir_mut(dir);
                let seq = d.as_ref().and_then(|d| d.decrypter.as_ref());
                let seq = seq.map_or(0, RecordDecrypter::sequence);
                if let Some(d) = d {
                    d.decrypter = None;
                }
                let why = format!("record {seq} did not decrypt: {}", e.reason());
                self.decrypt_failed(dir, &why, out);
            }
        }
        give_plain(plain);
    }

    /// A protected record without keys to read it: this direction's plaintext is lost from
    /// here on (said once).
    fn lost(&mut self, dir: Direction, out: &mut dyn FnMut(Direction, AppData<'_>)) {
        let keys_ready = self.keys_state == KeysState::Ready;
        let (d, info) = self.side(dir);
        if !d.cannot_decrypt {
            d.cannot_decrypt = true;
            if keys_ready {
                // Keys were found for the session but not for this point of it.
                info.stopped
                    .get_or_insert_with(|| "no keys for this direction".into());
            }
            out(dir, AppData::Lost);
        }
    }

    /// Whether the key log has every secret this session needs (a growing key log may have
    /// some of a session's lines and not yet the rest).
    fn has_keys_now(&self, keylog: &KeyLog) -> bool {
        let Some((ch, sh)) = self.keying.as_deref().and_then(Keying::hellos) else {
            return false;
        };
        let Some(s) = keylog.get(&ch.random) else {
            return false;
        };
        if sh.version == 0x0304 {
            s.get(Label::ClientHandshake).is_some()
                && s.get(Label::ServerHandshake).is_some()
                && s.get(Label::ClientTraffic0).is_some()
                && s.get(Label::ServerTraffic0).is_some()
        } else {
            s.get(Label::ClientRandom).is_some()
        }
    }

    /// Holds a protected record until the keys come; false when the limit is reached (the
    /// held records are then given up and the session stays undecrypted).
    fn hold(&mut self, dir: Direction, rec: &Record<'_>, keylog: &KeyLog) -> bool {
        let Some(k) = self.keying.as_deref_mut() else {
            return false;
        };
        if k.gave_up_waiting {
            return false;
        }
        let n = rec.fragment.len();
        let waiting = k.held.as_ref().map_or(0, |h| h.waiting_bytes);
        let reserved = if waiting + n <= keylog.hold_for_keys() {
            keylog.reserve_hold(n)
        } else {
            None
        };
        let Some(budget) = reserved else {
            k.gave_up_waiting = true;
            if let Some(h) = k.held.as_mut() {
                h.take_waiting();
            }
            for info in [
                &mut self.info.client_to_server,
                &mut self.info.server_to_client,
            ] {
                info.stopped.get_or_insert_with(|| {
                    "its keys were not logged before the data held for them reached the limit"
                        .into()
                });
            }
            return false;
        };
        let held = k.held();
        held.budget = Some(budget);
        held.waiting_bytes += n;
        held.waiting.push((dir, rec.at, HeldRecord::of(rec)));
        true
    }

    /// Whether a growing key log may still bring this session's keys
    /// ([`TlsSession::keys_arrived`]).
    pub fn awaits_late_keys(&self, keylog: &KeyLog) -> bool {
        self.keys_state == KeysState::NoKeys && keylog.can_grow()
    }

    /// Whether the session has no keys yet and the key log now has them.
    pub fn keys_now_available(&self, keylog: &KeyLog) -> bool {
        self.keys_state == KeysState::NoKeys && self.has_keys_now(keylog)
    }

    /// The key log grew: if it now has this session's keys, set them up and decrypt what
    /// was held. `clock` is set to each held record's capture time while its plaintext goes
    /// to `out`, and restored after.
    pub fn keys_arrived(
        &mut self,
        keylog: &KeyLog,
        clock: &std::cell::Cell<Timestamp>,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        if !self.keys_now_available(keylog) {
            return;
        }
        // Taken first: a suite that turns out unusable drops the keying, and what was held
        // is then read as undecryptable.
        let waiting = self
            .keying
            .as_deref_mut()
            .and_then(|k| k.held.as_mut())
            .map(|h| h.take_waiting())
            .unwrap_or_default();
        self.keys_state = KeysState::Waiting;
        self.setup_keys(keylog, out);
        if let Some(k) = self.keying.as_deref_mut() {
            // A TLS 1.2 ChangeCipherSpec already seen switches its direction now.
            for (dir, d) in [
                (Direction::ClientToServer, &self.c2s),
                (Direction::ServerToClient, &self.s2c),
            ] {
                if d.ccs {
                    k.switch12(dir);
                }
            }
        }
        let now = clock.get();
        for (dir, at, held) in waiting {
            clock.set(at);
            self.handle(dir, held.record(), keylog, out);
        }
        clock.set(now);
    }

    fn plaintext(
        &mut self,
        dir: Direction,
        content_type: u8,
        data: &[u8],
        keylog: &KeyLog,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        match content_type {
            record::HANDSHAKE => {
                let mut hs = std::mem::take(&mut self.dir_mut(dir).handshake);
                let max = self.limits.max_handshake_message;
                let r = hs.feed(data, max, &mut |t, body| {
                    self.message(dir, t, body, keylog, out)
                });
                self.dir_mut(dir).handshake = hs;
                if r.is_err() {
                    self.anomalies.add(Anomaly::TlsHandshakeLimit);
                }
            }
            // Without a decrypter: application data in clear before any key change, not a TLS
            // peer's doing (counted with the records as they came).
            record::APPLICATION_DATA
                if self.keys_mut(dir).is_some_and(|k| k.decrypter.is_some()) =>
            {
                self.side(dir).1.decrypted_bytes += data.len() as u64;
                out(dir, AppData::Data(data));
            }
            record::ALERT => {
                if let [level, desc, ..] = data {
                    if self.info.rare().alerts.len() < MAX_ALERTS {
                        self.info.rare_mut().alerts.push(format!("{level}:{desc}"));
                    }
                }
            }
            _ => {}
        }
    }

    fn message(
        &mut self,
        dir: Direction,
        t: u8,
        body: &[u8],
        keylog: &KeyLog,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        match (dir, t) {
            (Direction::ClientToServer, ht::CLIENT_HELLO) => {
                match hello::parse_client_hello(body) {
                    Ok(ch) => {
                        self.note(ch.anomalies());
                        self.client_hello(ch, keylog, out);
                    }
                    Err(e) => self.anomalies.add(e.anomaly()),
                }
            }
            (Direction::ServerToClient, ht::SERVER_HELLO) => {
                match hello::parse_server_hello(body) {
                    Ok(sh) => {
                        self.note(sh.anomalies());
                        self.server_hello(sh, keylog, out);
                    }
                    Err(e) => self.anomalies.add(e.anomaly()),
                }
            }
            (Direction::ServerToClient, ht::ENCRYPTED_EXTENSIONS) => {
                match hello::parse_encrypted_extensions(body) {
                    Ok(ee) => {
                        self.note(ee.anomalies());
                        if ee.alpn.is_some() {
                            self.info.alpn = ee.alpn;
                        }
                    }
                    Err(e) => self.anomalies.add(e.anomaly()),
                }
            }
            (Direction::ServerToClient, ht::COMPRESSED_CERTIFICATE) => {
                // RFC 8879: the names are inside a compressed certificate we do not inflate.
                self.certificate_seen = true;
                self.info.certificate_compressed = true;
            }
            (Direction::ServerToClient, ht::CERTIFICATE) if !self.certificate_seen => {
                self.certificate_seen = true;
                match certs::server_certificate(body, self.tls13()) {
                    Ok(Some(cert)) => {
                        self.note(cert.names.anomalies());
                        self.info.server_names = cert.server_names;
                        self.info.certificate = Some(cert.names);
                    }
                    Ok(None) => {}
                    Err(e) => self.anomalies.add(e.anomaly()),
                }
            }
            (Direction::ClientToServer, ht::END_OF_EARLY_DATA) => {
                if let Some(k) = self.keying.as_deref_mut().filter(|k| k.early_active) {
                    k.end_early_data();
                }
            }
            (_, ht::FINISHED) if self.tls13() => {
                // RFC 8446 §7.2: after its Finished, a side protects with application keys.
                let Some(k) = self.keying.as_deref_mut() else {
                    return;
                };
                let suite = k.suite;
                let app = first_application_secret(keylog, &k.client_random, dir);
                if let Some(d) = k.dir_mut(dir) {
                    if let (Some(suite), Some(secret)) = (suite, app) {
                        d.advance(&suite, secret);
                        d.secret13 = None;
                    }
                    d.cert_requested = false;
                }
            }
            (Direction::ServerToClient, ht::CERTIFICATE_REQUEST) if self.tls13() => {
                // The client answers with its certificate chain, often several KiB, then its
                // Finished (RFC 8446 §4.4.2, §4.6.2 after the handshake): nothing of the
                // client's streams until then.
                if let Some(c2s) = self.keys_mut(Direction::ClientToServer) {
                    c2s.data_seen = false;
                    c2s.cert_requested = true;
                }
            }
            (_, ht::KEY_UPDATE) if self.tls13() => {
                self.side(dir).1.key_updates += 1;
                let Some(k) = self.keying.as_deref_mut() else {
                    return;
                };
                let suite = k.suite;
                let first = first_application_secret(keylog, &k.client_random, dir);
                if let Some(d) = k.dir_mut(dir) {
                    let current = match d.secret13.take() {
                        Some(updated) => Some(*updated),
                        None => first.map(Secret::from),
                    };
                    if let (Some(suite), Some(current)) = (suite, current) {
                        let next = keys::next_traffic_secret(suite.hash, current.bytes());
                        d.advance(&suite, next.bytes());
                        d.secret13 = Some(Box::new(next));
                    }
                }
            }
            _ => {}
        }
    }

    fn client_hello(
        &mut self,
        ch: ClientHello,
        keylog: &KeyLog,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        let facts = ClientFacts::of(&ch);
        if let Some(k) = self.keying_for_hello() {
            k.hellos_mut().client = Some(facts);
        }
        if self.client_hello_seen {
            // The second ClientHello after a HelloRetryRequest: same random (RFC 8446 §4.1.2).
            return;
        }
        self.client_hello_seen = true;
        let i = &mut self.info;
        // A TLS 1.3 client always sends a legacy session ID (RFC 8446 §4.1.2, middlebox
        // compatibility); only a client without supported_versions resumes by session ID.
        i.resumption_offered = ch.psk_offered
            || ch.session_ticket
            || (ch.session_id_len > 0 && ch.supported_versions.is_empty());
        i.ech = ch.ech.as_ref().is_some_and(|e| e.outer);
        if ch.ech.is_some() {
            i.rare_mut().ech_detail = ch.ech;
        }
        // Shared with the thread's other connections that sent the same: a client repeats
        // its lists on every connection, and they stay for each connection's lifetime. The
        // hello's own lists are moved in, not copied.
        i.sni = ch.sni.names.first().map(|n| shared_str(n));
        i.offered = RareBox::shared(shared_offered(&Offered {
            sni: ch.sni,
            alpn: ch.alpn,
            versions: ch
                .supported_versions
                .iter()
                .map(|&v| TlsVersion(v))
                .collect(),
            key_share_groups: ch.key_share_groups,
        }));
        self.setup_keys(keylog, out);
    }

    fn server_hello(
        &mut self,
        sh: ServerHello,
        keylog: &KeyLog,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        if sh.hello_retry_request {
            self.info.hello_retry_request = true;
            return;
        }
        let version = sh.version();
        self.info.version = Some(TlsVersion(version));
        self.info.cipher = Some(CipherSuite(sh.cipher_suite));
        if sh.alpn.is_some() {
            self.info.alpn = sh.alpn.clone();
        }
        // TLS 1.3 PSK resumption: the ServerHello carries pre_shared_key.
        if version == 0x0304 && sh.psk_accepted {
            self.info.resumed = true;
        }
        if let Some(k) = self.keying_for_hello() {
            k.hellos_mut().server = Some(ServerFacts {
                random: sh.random,
                version,
                cipher_suite: sh.cipher_suite,
                encrypt_then_mac: sh.encrypt_then_mac,
            });
        }
        self.setup_keys(keylog, out);
    }

    fn note(&mut self, anomalies: Vec<Anomaly>) {
        for a in anomalies {
            self.anomalies.add(a);
        }
    }

    /// TLS 1.2 resumption: the server's ChangeCipherSpec came without a Certificate (an
    /// abbreviated handshake, RFC 5246 §7.3).
    fn resumption_check(&mut self, dir: Direction) {
        if dir == Direction::ServerToClient && !self.tls13() && !self.certificate_seen {
            self.info.resumed = true;
        }
    }

    /// Once both hellos are known: find the session's secrets and prepare decryption.
    fn setup_keys(&mut self, keylog: &KeyLog, out: &mut dyn FnMut(Direction, AppData<'_>)) {
        if self.keys_state != KeysState::Waiting {
            return;
        }
        let Some((ch, sh)) = self.keying.as_deref().and_then(Keying::hellos) else {
            return;
        };
        // A growing key log may have only some of this session's lines yet: wait for all.
        let incomplete = keylog.hold_for_keys() > 0 && !self.has_keys_now(keylog);
        let Some(secrets) = keylog.get(&ch.random).filter(|_| !incomplete) else {
            self.no_keys(keylog);
            return;
        };
        let (version, suite_id) = (sh.version, sh.cipher_suite);
        let Some(suite) = keys::suite(suite_id).filter(|s| s.tls13 == (version == 0x0304)) else {
            self.keys_failed(format!("cipher suite 0x{suite_id:04x} is not supported"));
            return;
        };
        let dirs = match version {
            0x0304 => {
                let (Some(c_hs), Some(s_hs)) = (
                    secrets.get(Label::ClientHandshake),
                    secrets.get(Label::ServerHandshake),
                ) else {
                    self.no_keys(keylog);
                    return;
                };
                let tls13 = |hs: &[u8]| DirKeys {
                    decrypter: Some(RecordDecrypter::new(
                        suite,
                        keys::derive_traffic_keys(&suite, hs),
                        RecordProtocol::Tls13,
                    )),
                    pending12: None,
                    secret13: Some(Box::new(Secret::from(hs))),
                    data_seen: false,
                    cert_requested: false,
                    opening: None,
                };
                [tls13(c_hs), tls13(s_hs)]
            }
            0x0303 => {
                let Some(ms) = secrets.get(Label::ClientRandom) else {
                    self.no_keys(keylog);
                    return;
                };
                let (client, server) = keys::tls12_key_block(&suite, ms, &ch.random, &sh.random);
                let tls12 = |keys| DirKeys {
                    pending12: Some(Box::new(keys)),
                    ..DirKeys::default()
                };
                [tls12(client), tls12(server)]
            }
            v => {
                self.keys_failed(format!("{} is not supported", TlsVersion(v)));
                return;
            }
        };
        let Some(k) = self.keying.as_deref_mut() else {
            return;
        };
        k.suite = Some(suite);
        k.client_random = ch.random;
        k.dirs = Some(dirs);
        k.encrypt_then_mac = suite.mac.is_some() && ch.encrypt_then_mac && sh.encrypt_then_mac;
        let early_offered = k.offers_early_data();
        k.hellos = None;
        self.keys_state = KeysState::Ready;
        if version != 0x0304 {
            return;
        }
        // 0-RTT: the client's first protected records use the early traffic secret.
        let stash = k.held.as_mut().map(|h| h.take_early()).unwrap_or_default();
        if let (true, Some(early)) = (early_offered, secrets.get(Label::ClientEarly)) {
            let c2s = k.dir_mut(Direction::ClientToServer);
            if let Some(dec) = c2s.and_then(|d| d.decrypter.as_mut()) {
                dec.rekey(keys::derive_traffic_keys(&suite, early));
                k.early_active = true;
            }
        }
        if k.early_active {
            for held in stash {
                self.handle(Direction::ClientToServer, held.record(), keylog, out);
            }
        } else if !stash.is_empty() {
            self.info.rare_mut().early_data =
                Some("not decrypted: no CLIENT_EARLY_TRAFFIC_SECRET logged".into());
        }
    }
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::ClientToServer => "client to server",
        Direction::ServerToClient => "server to client",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decrypted connection keeps these while it is open (`per_connection_state` in
    /// `lib.rs` watches the public ones): its keys in one allocation of 272 bytes (96 and
    /// two directions of 104 in a box before), the handshake secret boxed.
    #[test]
    fn key_state_stays_small() {
        assert!(std::mem::size_of::<Keying>() <= 272);
        assert!(std::mem::size_of::<DirKeys>() <= 96);
    }

    /// The report's fields, in the order the report has them (docs/report-schema.md): the
    /// `Serialize` impl lists them by hand since some moved into shared or boxed parts.
    #[test]
    fn tls_facts_serialize_every_field_in_schema_order() {
        let names = [
            "sni",
            "sni_detail",
            "alpn_offered",
            "alpn",
            "version",
            "cipher",
            "ech",
            "ech_detail",
            "versions_offered",
            "key_share_groups",
            "hello_retry_request",
            "early_data",
            "resumption_offered",
            "resumed",
            "server_names",
            "certificate",
            "certificate_compressed",
            "decryption",
            "decrypted",
            "client_to_server",
            "server_to_client",
            "alerts",
        ];
        let json = serde_json::to_string(&TlsInfo::default()).unwrap();
        let at: Vec<usize> = names
            .iter()
            .map(|n| {
                json.find(&format!("\"{n}\":"))
                    .unwrap_or_else(|| panic!("{n} missing"))
            })
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{json}");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value.as_object().unwrap().len(), names.len(), "{json}");
        // A ClientHello that offered nothing reads, and compares, as none seen.
        let seen = TlsInfo {
            offered: RareBox::shared(Arc::new(Offered::default())),
            ..TlsInfo::default()
        };
        assert_eq!(seen, TlsInfo::default());
    }

    fn handshake_record(msg_type: u8, body: &[u8]) -> Vec<u8> {
        let len = u32::try_from(body.len()).unwrap().to_be_bytes();
        let mut msg = vec![msg_type, len[1], len[2], len[3]];
        msg.extend_from_slice(body);
        let mut rec = vec![record::HANDSHAKE, 3, 1];
        rec.extend_from_slice(&u16::try_from(msg.len()).unwrap().to_be_bytes());
        rec.extend(msg);
        rec
    }

    /// A TLS 1.3 handshake's hellos, the ServerHello choosing TLS_AES_128_GCM_SHA256.
    fn hellos() -> (Vec<u8>, Vec<u8>) {
        let mut ch = vec![3, 3];
        ch.extend_from_slice(&[7; 32]);
        ch.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
        let mut sh = vec![3, 3];
        sh.extend_from_slice(&[8; 32]);
        // No session id, the suite, no compression, supported_versions = TLS 1.3.
        sh.extend_from_slice(&[0, 0x13, 0x01, 0, 0, 6, 0, 0x2b, 0, 2, 3, 4]);
        (
            handshake_record(ht::CLIENT_HELLO, &ch),
            handshake_record(ht::SERVER_HELLO, &sh),
        )
    }

    fn handshake(keylog: &KeyLog) -> TlsSession {
        let (ch, sh) = hellos();
        let mut s = TlsSession::new(TlsLimits::default());
        s.data(
            Direction::ClientToServer,
            &ch,
            keylog,
            &Default::default(),
            &mut |_, _| {},
        );
        assert!(s.keying.is_some(), "made at the ClientHello");
        s.data(
            Direction::ServerToClient,
            &sh,
            keylog,
            &Default::default(),
            &mut |_, _| {},
        );
        assert_eq!(s.info().version, Some(TlsVersion(0x0304)));
        s
    }

    /// TLS 1.3 through the server's Finished and two KeyUpdates: its application data is
    /// decrypted with the first application secret read from the key log at Finished, and
    /// then with each generation derived from the one before; no application secret is
    /// kept before a KeyUpdate needs one.
    #[test]
    fn key_updates_follow_the_key_log_secret() {
        let random = [7u8; 32];
        let secret = |b: u8| [b; 32];
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let mut keylog = KeyLog::default();
        for (label, b) in [
            ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", 1),
            ("SERVER_HANDSHAKE_TRAFFIC_SECRET", 2),
            ("CLIENT_TRAFFIC_SECRET_0", 3),
            ("SERVER_TRAFFIC_SECRET_0", 4),
        ] {
            let line = format!("{label} {} {}\n", hex(&random), hex(&secret(b)));
            keylog.add(line.as_bytes());
        }
        let mut s = handshake(&keylog);
        let suite = keys::suite(0x1301).unwrap();
        let record = |secret: &[u8], seq: u64, content: &[u8], kind: u8| {
            let keys = keys::derive_traffic_keys(&suite, secret);
            let mut inner = content.to_vec();
            inner.push(kind);
            let sealed = crate::proto::tls::decrypt::tests::seal13(&keys, &suite, seq, &inner);
            let mut rec = vec![23, 3, 3];
            rec.extend_from_slice(&u16::try_from(sealed.len()).unwrap().to_be_bytes());
            rec.extend(sealed);
            rec
        };
        let message = |t: u8, body: &[u8]| {
            let mut m = vec![t, 0, 0, u8::try_from(body.len()).unwrap()];
            m.extend_from_slice(body);
            m
        };
        let gen1 = keys::next_traffic_secret(suite.hash, &secret(4));
        let gen2 = keys::next_traffic_secret(suite.hash, gen1.bytes());
        let mut first = record(&secret(2), 0, &message(ht::FINISHED, &[0; 32]), 22);
        first.extend(record(&secret(4), 0, b"generation 0", 23));
        let mut then = record(&secret(4), 1, &message(ht::KEY_UPDATE, &[0]), 22);
        then.extend(record(gen1.bytes(), 0, b"generation 1", 23));
        then.extend(record(gen1.bytes(), 1, &message(ht::KEY_UPDATE, &[0]), 22));
        then.extend(record(gen2.bytes(), 0, b"generation 2", 23));
        let mut seen = Vec::new();
        let kept = |s: &TlsSession| -> Vec<bool> {
            let dirs = s.keying.as_deref().and_then(|k| k.dirs.as_ref()).unwrap();
            dirs.iter().map(|d| d.secret13.is_some()).collect()
        };
        for (bytes, secrets_kept) in [(first, [true, false]), (then, [true, true])] {
            s.data(
                Direction::ServerToClient,
                &bytes,
                &keylog,
                &Default::default(),
                &mut |_, d| {
                    if let AppData::Data(b) = d {
                        seen.push(b.to_vec());
                    }
                },
            );
            // The client (still on handshake keys) keeps its handshake secret; the server
            // none after its Finished, then only the generation its KeyUpdates derived.
            assert_eq!(kept(&s), secrets_kept);
        }
        let texts: Vec<&[u8]> = seen.iter().map(Vec::as_slice).collect();
        assert_eq!(
            texts,
            [&b"generation 0"[..], b"generation 1", b"generation 2"]
        );
        let info = s.info();
        assert_eq!(info.server_to_client.key_updates, 2);
        assert!(info.server_to_client.stopped.is_none());
    }

    /// Most sessions of a capture have no keys: once that is certain, the session keeps
    /// nothing for decryption. A key log that may still grow keeps it for the late keys.
    #[test]
    fn key_state_is_dropped_only_when_keys_cannot_come() {
        let s = handshake(&KeyLog::default());
        assert!(s.keying.is_none());
        assert_eq!(&*s.finish().0.decryption, "no_keys");

        let mut growing = KeyLog::default();
        growing.set_growing(0, 0);
        let s = handshake(&growing);
        assert!(s.keying.is_some());
        assert_eq!(&*s.finish().0.decryption, "no_keys");
    }
}
