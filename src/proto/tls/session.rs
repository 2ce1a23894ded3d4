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

use super::decrypt::{RecordDecrypter, RecordProtocol};
use super::handshake::HandshakeReader;
use super::hello::{self, handshake_type as ht, CertificateNames, ClientHello, ServerHello};
use super::keylog::{KeyLog, Secret};
use super::keys::{self, Suite};
use super::record::{self, Record, RecordError, RecordReader};
use super::{CipherSuite, ProtocolName, TlsVersion};
use crate::anomaly::{Anomaly, AnomalyCounts};
use crate::flow::Direction;
use crate::Timestamp;
use serde::Serialize;

/// What the report says about a TLS connection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    /// The first host name of the ClientHello's server_name extension; `None` when absent.
    pub sni: Option<String>,
    /// The whole server_name extension, for the unusual cases (several names, IP literal).
    pub sni_detail: hello::Sni,
    /// ALPN protocols offered by the client, in order.
    pub alpn_offered: Vec<ProtocolName>,
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
    pub ech_detail: Option<Box<hello::EchOffer>>,
    /// Versions the client offered (supported_versions), e.g. ["TLS 1.3", "TLS 1.2"].
    pub versions_offered: Vec<TlsVersion>,
    /// Key-share groups the client sent shares for (GREASE removed).
    pub key_share_groups: Vec<u16>,
    pub hello_retry_request: bool,
    /// 0-RTT early data: `decrypted`, or why not; `None` when the client sent none.
    pub early_data: Option<String>,
    /// Session resumption offered by the client (session ID, ticket or PSK) and whether the
    /// server took it.
    pub resumption_offered: bool,
    pub resumed: bool,
    /// DNS names of the server's leaf certificate: SAN dNSNames, or the subject CN when there
    /// are none (RFC 6125 §6.4.4).
    pub server_names: Vec<String>,
    pub certificate: Option<Box<CertificateNames>>,
    /// The server sent its certificate compressed (RFC 8879), so its names are not known.
    pub certificate_compressed: bool,
    /// `decrypted`, `no_keys`, `not_applicable` (no handshake seen), or `failed: <reason>`.
    pub decryption: String,
    /// True when every direction that carried application data was decrypted.
    pub decrypted: bool,
    pub client_to_server: DirectionInfo,
    pub server_to_client: DirectionInfo,
    /// Alerts seen (in clear or decrypted), as "level:description" numbers, at most 16.
    pub alerts: Vec<String>,
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
    pub stopped: Option<String>,
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
    /// The key log's shared budget the waiting bytes were reserved from (given back on drop).
    budget: Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
}

impl Held {
    fn is_empty(&self) -> bool {
        self.early.is_empty() && self.waiting.is_empty() && self.waiting_bytes == 0
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
        }
    }
}

/// Decryption state of one direction.
#[derive(Default)]
struct Dir {
    records: RecordReader,
    handshake: HandshakeReader,
    /// Boxed: most sessions have none (no keys), and it is the largest part of a direction.
    decrypter: Option<Box<RecordDecrypter>>,
    /// Boxed for the same reason.
    secrets: Option<Box<DirSecrets>>,
    /// TLS 1.2: ChangeCipherSpec seen, so later records are protected.
    ccs: bool,
    /// A protected record could not be decrypted (no keys, or failure): nothing more is.
    cannot_decrypt: bool,
}

/// A direction's key material besides its decrypter.
#[derive(Default)]
struct DirSecrets {
    /// TLS 1.2: the key block waiting for this direction's ChangeCipherSpec.
    pending12: Option<keys::TrafficKeys>,
    /// TLS 1.3: the current traffic secret (for KeyUpdate) and the application secret to
    /// switch to after this direction's Finished.
    secret13: Option<Secret>,
    app_secret13: Option<Secret>,
}

impl Dir {
    fn secrets(&mut self) -> &mut DirSecrets {
        self.secrets.get_or_insert_with(Box::default)
    }

    fn take_pending12(&mut self) -> Option<keys::TrafficKeys> {
        self.secrets.as_mut()?.pending12.take()
    }

    fn take_app_secret13(&mut self) -> Option<Secret> {
        self.secrets.as_mut()?.app_secret13.take()
    }

    fn take_secret13(&mut self) -> Option<Secret> {
        self.secrets.as_mut()?.secret13.take()
    }
}

#[derive(Default)]
pub struct TlsSession {
    c2s: Dir,
    s2c: Dir,
    // What the hellos said that is needed after them; the rest went into `info`. A whole
    // ClientHello with its lists was about 0.7 kB per connection, kept for its lifetime.
    client_hello: Option<ClientFacts>,
    server_hello: Option<ServerFacts>,
    suite: Option<Suite>,
    keys_state: KeysState,
    certificate_seen: bool,
    /// Scratch space for a decrypted record, one for both directions.
    plain: Vec<u8>,
    /// 0-RTT: whether the client is still in its early-data epoch.
    early_active: bool,
    /// Protected records held until they can be read; most sessions never hold any.
    held: Option<Box<Held>>,
    /// Capture time of the bytes being read (see [`TlsSession::set_time`]).
    now: Timestamp,
    /// More was waiting than the hold allows: the session stays undecrypted.
    gave_up_waiting: bool,
    info: TlsInfo,
    limits: TlsLimits,
    pub anomalies: AnomalyCounts,
}

/// The ClientHello's facts the session needs once the hello is parsed.
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

impl Drop for TlsSession {
    fn drop(&mut self) {
        self.release_hold();
    }
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

#[derive(Default, Clone, PartialEq, Eq)]
enum KeysState {
    /// ClientHello and ServerHello not both seen yet.
    #[default]
    Waiting,
    NoKeys,
    Ready,
    Failed(String),
}

/// Decrypted application data (or a loss in it) handed to the next parser.
pub enum AppData<'a> {
    Data(&'a [u8]),
    /// This direction's plaintext stops here for good (gap, failure, or no keys).
    Lost,
}

const MAX_ALERTS: usize = 16;
/// Plaintext scratch capacity kept between records.
const SCRATCH_KEEP: usize = 2048;

impl TlsSession {
    /// A session bounded by `limits`.
    pub fn new(limits: TlsLimits) -> Self {
        let mut session = TlsSession::default();
        session.limits = limits;
        session
    }

    /// Takes bytes of one direction in order.
    pub fn data(
        &mut self,
        dir: Direction,
        data: &[u8],
        keylog: &KeyLog,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        let mut records = std::mem::take(&mut self.dir_mut(dir).records);
        let result = records.feed(data, &mut |rec| self.record(dir, rec, keylog, out));
        // Nothing more of this direction will be decrypted (and no key is awaited): its
        // application data need not be kept, only counted.
        if self.dir_mut(dir).cannot_decrypt && keylog.hold_for_keys() == 0 {
            records.skip_application_data();
        }
        self.dir_mut(dir).records = records;
        if let Err(e) = result {
            self.stop(dir, e.reason(), Anomaly::TlsRecordInvalid, out);
        }
    }

    /// Bytes of this direction were never captured: nothing after them can be framed.
    pub fn gap(&mut self, dir: Direction, out: &mut dyn FnMut(Direction, AppData<'_>)) {
        self.dir_mut(dir).records.stop(RecordError::NotTls);
        self.stop(dir, "gap in the captured stream", Anomaly::TlsGap, out);
    }

    /// The direction ended (FIN, RST or end of capture).
    pub fn end(&mut self, dir: Direction) {
        if self.dir_mut(dir).records.pending() > 0 {
            self.anomalies.add(Anomaly::TlsRecordTruncated);
        }
    }

    /// What is known so far (handshake facts and record counters; decryption status only at
    /// the end).
    pub fn info(&self) -> &TlsInfo {
        &self.info
    }

    /// The summary, once the connection is over.
    pub fn finish(mut self) -> (TlsInfo, AnomalyCounts) {
        let (c, s) = (&self.c2s, &self.s2c);
        let (ci, si) = (&self.info.client_to_server, &self.info.server_to_client);
        self.info.decryption = match &self.keys_state {
            KeysState::Waiting => "not_applicable".to_string(),
            KeysState::NoKeys => "no_keys".to_string(),
            KeysState::Failed(why) => format!("failed: {why}"),
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
                if failed.is_empty() {
                    "decrypted".to_string()
                } else {
                    format!("failed: {}", failed.join("; "))
                }
            }
        };
        self.info.decrypted = self.keys_state == KeysState::Ready
            && !c.cannot_decrypt
            && !s.cannot_decrypt
            && (ci.application_bytes > 0 || si.application_bytes > 0);
        (
            std::mem::take(&mut self.info),
            std::mem::take(&mut self.anomalies),
        )
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

    /// Whether the ServerHello negotiated TLS 1.3 (known with or without keys).
    fn tls13(&self) -> bool {
        self.server_hello.is_some_and(|s| s.version == 0x0304)
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
        info.stopped = Some(why.to_string());
        d.records.stop(RecordError::NotTls);
        if d.decrypter.is_some() || d.secrets.as_ref().is_some_and(|s| s.pending12.is_some()) {
            d.cannot_decrypt = true;
        }
        d.decrypter = None;
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
        let info = self.side(dir).1;
        info.records += 1;
        if rec.content_type == record::APPLICATION_DATA {
            info.application_bytes += rec.length as u64;
        }
        self.handle(dir, rec, keylog, out);
    }

    fn handle(
        &mut self,
        dir: Direction,
        rec: Record<'_>,
        keylog: &KeyLog,
        out: &mut dyn FnMut(Direction, AppData<'_>),
    ) {
        let tls13 = self.tls13();
        let d = self.dir_mut(dir);
        let protected = if tls13 {
            // RFC 8446 §5: once keys are in use, every record but the compatibility
            // ChangeCipherSpec is application_data on the outside.
            rec.content_type == record::APPLICATION_DATA
        } else {
            d.ccs
        };
        if rec.content_type == record::CHANGE_CIPHER_SPEC {
            // Only a ServerHello that negotiated TLS 1.2 makes a ChangeCipherSpec meaningful;
            // otherwise it is TLS 1.3's compatibility record (RFC 8446 §D.4), e.g. after a
            // HelloRetryRequest or after a 0-RTT ClientHello.
            let tls12 = self.server_hello.is_some_and(|s| s.version < 0x0304);
            if tls12 {
                let d = self.dir_mut(dir);
                d.ccs = true;
                if let Some(k) = d.take_pending12() {
                    if let Some(suite) = self.suite {
                        let etm = self.encrypt_then_mac();
                        let d = self.dir_mut(dir);
                        d.decrypter = Some(Box::new(RecordDecrypter::new(
                            suite,
                            k,
                            RecordProtocol::Tls12 {
                                encrypt_then_mac: etm,
                            },
                        )));
                    }
                }
                self.resumption_check(dir);
            }
            return;
        }
        if dir == Direction::ClientToServer
            && self.server_hello.is_none()
            && rec.content_type == record::APPLICATION_DATA
            && self.offers_early_data()
        {
            // 0-RTT data before the ServerHello: which suite protects it is not known yet.
            let max = self.limits.max_early_data;
            let held = self.held.get_or_insert_with(Box::default);
            if held.early_bytes + rec.fragment.len() <= max {
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
        let keys_ready = self.keys_state == KeysState::Ready;
        let (d, info) = self.side(dir);
        let Some(mut dec) = d.decrypter.take() else {
            if !d.cannot_decrypt {
                d.cannot_decrypt = true;
                if keys_ready {
                    // Keys were found for the session but not for this point of it.
                    info.stopped
                        .get_or_insert_with(|| "no keys for this direction".to_string());
                }
                out(dir, AppData::Lost);
            }
            return;
        };
        let mut plain = std::mem::take(&mut self.plain);
        plain.clear();
        let mut result = dec.decrypt(rec.content_type, rec.version, rec.fragment, &mut plain);
        if dir == Direction::ClientToServer
            && self.early_active
            && self.info.early_data.is_none()
            && result.is_ok()
        {
            self.info.early_data = Some("decrypted".into());
        }
        if result.is_err() && dir == Direction::ClientToServer && self.early_active {
            // The server refused 0-RTT, so the client moved on to handshake keys without an
            // EndOfEarlyData (RFC 8446 §4.2.10).
            self.end_early_data(&mut dec);
            result = dec.decrypt(rec.content_type, rec.version, rec.fragment, &mut plain);
        }
        match result {
            Ok(inner) => {
                self.dir_mut(dir).decrypter = Some(dec);
                if tls13
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
                let why = format!("record {} did not decrypt: {}", dec.sequence(), e.reason());
                self.stop(dir, &why, Anomaly::TlsDecryptFailed, out);
                self.dir_mut(dir).cannot_decrypt = true;
            }
        }
        // Keep the scratch buffer only while it is small: thousands of idle connections must
        // not each hold a record-sized one.
        if plain.capacity() <= SCRATCH_KEEP {
            self.plain = plain;
        }
    }

    /// Whether the key log has every secret this session needs (a growing key log may have
    /// some of a session's lines and not yet the rest).
    fn has_keys_now(&self, keylog: &KeyLog) -> bool {
        let (Some(ch), Some(sh)) = (&self.client_hello, &self.server_hello) else {
            return false;
        };
        let Some(s) = keylog.get(&ch.random) else {
            return false;
        };
        if sh.version == 0x0304 {
            s.client_handshake.is_some()
                && s.server_handshake.is_some()
                && s.client_traffic_0.is_some()
                && s.server_traffic_0.is_some()
        } else {
            s.master_secret.is_some()
        }
    }

    /// Holds a protected record until the keys come; false when the limit is reached (the
    /// held records are then given up and the session stays undecrypted).
    fn hold(&mut self, dir: Direction, rec: &Record<'_>, keylog: &KeyLog) -> bool {
        if self.gave_up_waiting {
            return false;
        }
        let n = rec.fragment.len();
        let waiting = self.held.as_ref().map_or(0, |h| h.waiting_bytes);
        let reserved = if waiting + n <= keylog.hold_for_keys() {
            keylog.reserve_hold(n)
        } else {
            None
        };
        let Some(budget) = reserved else {
            self.gave_up_waiting = true;
            self.take_waiting();
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
        let now = self.now;
        let held = self.held.get_or_insert_with(Box::default);
        held.budget = Some(budget);
        held.waiting_bytes += n;
        held.waiting.push((dir, now, HeldRecord::of(rec)));
        true
    }

    /// Gives the held bytes back to the key log's budget.
    fn release_hold(&mut self) {
        if let Some(h) = &mut self.held {
            if let Some(b) = &h.budget {
                b.fetch_sub(h.waiting_bytes, std::sync::atomic::Ordering::Relaxed);
            }
            h.waiting_bytes = 0;
        }
    }

    /// The records held for late keys, their bytes given back to the key log's budget.
    fn take_waiting(&mut self) -> Vec<(Direction, Timestamp, HeldRecord)> {
        self.release_hold();
        let waiting = self
            .held
            .as_mut()
            .map(|h| std::mem::take(&mut h.waiting))
            .unwrap_or_default();
        self.tidy_held();
        waiting
    }

    /// The 0-RTT records held until the suite was known.
    fn take_early(&mut self) -> Vec<HeldRecord> {
        let early = self
            .held
            .as_mut()
            .map(|h| {
                h.early_bytes = 0;
                std::mem::take(&mut h.early)
            })
            .unwrap_or_default();
        self.tidy_held();
        early
    }

    /// Frees the hold once it is empty.
    fn tidy_held(&mut self) {
        if self.held.as_ref().is_some_and(|h| h.is_empty()) {
            self.held = None;
        }
    }

    /// Capture time of the bytes the next calls read: held records keep it, so what they
    /// hold is dated when it was captured, not when its keys came.
    pub fn set_time(&mut self, at: Timestamp) {
        self.now = at;
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
        self.keys_state = KeysState::Waiting;
        self.setup_keys(keylog, out);
        // A TLS 1.2 ChangeCipherSpec already seen switches its direction now.
        if let Some(suite) = self.suite {
            let etm = self.encrypt_then_mac();
            for dir in [Direction::ClientToServer, Direction::ServerToClient] {
                let d = self.dir_mut(dir);
                if d.ccs && d.decrypter.is_none() {
                    if let Some(k) = d.take_pending12() {
                        d.decrypter = Some(Box::new(RecordDecrypter::new(
                            suite,
                            k,
                            RecordProtocol::Tls12 {
                                encrypt_then_mac: etm,
                            },
                        )));
                    }
                }
            }
        }
        let now = clock.get();
        for (dir, at, held) in self.take_waiting() {
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
            record::APPLICATION_DATA => {
                let (d, info) = self.side(dir);
                // Without a decrypter: application data in clear before any key change, not a
                // TLS peer's doing (counted with the records as they came).
                if d.decrypter.is_some() {
                    info.decrypted_bytes += data.len() as u64;
                    out(dir, AppData::Data(data));
                }
            }
            record::ALERT => {
                if let [level, desc, ..] = data {
                    if self.info.alerts.len() < MAX_ALERTS {
                        self.info.alerts.push(format!("{level}:{desc}"));
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
                match hello::parse_certificate(body, self.tls13()) {
                    Ok(Some(cert)) => {
                        self.note(cert.anomalies());
                        self.info.server_names = if cert.san_dns.is_empty() {
                            cert.subject_cn.clone()
                        } else {
                            cert.san_dns.clone()
                        };
                        self.info.certificate = Some(Box::new(cert));
                    }
                    Ok(None) => {}
                    Err(e) => self.anomalies.add(e.anomaly()),
                }
            }
            (Direction::ClientToServer, ht::END_OF_EARLY_DATA) if self.early_active => {
                if let Some(mut dec) = self.c2s.decrypter.take() {
                    self.end_early_data(&mut dec);
                    self.c2s.decrypter = Some(dec);
                }
            }
            (_, ht::FINISHED) if self.tls13() => {
                // RFC 8446 §7.2: after its Finished, a side protects with application keys.
                let suite = self.suite;
                let d = self.dir_mut(dir);
                if let (Some(suite), Some(secret)) = (suite, d.take_app_secret13()) {
                    if let Some(dec) = d.decrypter.as_mut() {
                        dec.rekey(keys::derive_traffic_keys(&suite, secret.bytes()));
                    }
                    d.secrets().secret13 = Some(secret);
                }
            }
            (_, ht::KEY_UPDATE) if self.tls13() => {
                let suite = self.suite;
                let (d, info) = self.side(dir);
                info.key_updates += 1;
                if let (Some(suite), Some(current)) = (suite, d.take_secret13()) {
                    let next = keys::next_traffic_secret(suite.hash, current.bytes());
                    if let Some(dec) = d.decrypter.as_mut() {
                        dec.rekey(keys::derive_traffic_keys(&suite, next.bytes()));
                    }
                    d.secrets().secret13 = Some(next);
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
        if self.client_hello.is_some() {
            // The second ClientHello after a HelloRetryRequest: same random (RFC 8446 §4.1.2).
            self.client_hello = Some(ClientFacts::of(&ch));
            return;
        }
        let i = &mut self.info;
        // Clones, not moves: the hello's lists were grown by pushing, their copies are
        // exact-sized, and they stay for the connection's lifetime.
        i.sni = ch.sni.names.first().cloned();
        i.sni_detail = ch.sni.clone();
        i.alpn_offered = ch.alpn.clone();
        i.ech = ch.ech.as_ref().is_some_and(|e| e.outer);
        i.ech_detail = ch.ech.clone().map(Box::new);
        i.versions_offered = ch
            .supported_versions
            .iter()
            .map(|&v| TlsVersion(v))
            .collect();
        i.key_share_groups = ch.key_share_groups.clone();
        // A TLS 1.3 client always sends a legacy session ID (RFC 8446 §4.1.2, middlebox
        // compatibility); only a client without supported_versions resumes by session ID.
        i.resumption_offered = ch.psk_offered
            || ch.session_ticket
            || (ch.session_id_len > 0 && ch.supported_versions.is_empty());
        self.client_hello = Some(ClientFacts::of(&ch));
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
        self.server_hello = Some(ServerFacts {
            random: sh.random,
            version,
            cipher_suite: sh.cipher_suite,
            encrypt_then_mac: sh.encrypt_then_mac,
        });
        self.setup_keys(keylog, out);
    }

    fn note(&mut self, anomalies: Vec<Anomaly>) {
        for a in anomalies {
            self.anomalies.add(a);
        }
    }

    fn offers_early_data(&self) -> bool {
        self.client_hello.is_some_and(|c| c.offers_early_data)
    }

    /// Leaves the 0-RTT epoch: the client's records are protected with its handshake keys.
    fn end_early_data(&mut self, dec: &mut RecordDecrypter) {
        self.early_active = false;
        let hs = self.c2s.secrets.as_ref().and_then(|s| s.secret13.as_ref());
        if let (Some(suite), Some(hs)) = (self.suite, hs) {
            dec.rekey(keys::derive_traffic_keys(&suite, hs.bytes()));
        }
    }

    /// TLS 1.2 resumption: the server's ChangeCipherSpec came without a Certificate (an
    /// abbreviated handshake, RFC 5246 §7.3).
    fn resumption_check(&mut self, dir: Direction) {
        if dir == Direction::ServerToClient
            && !self.tls13()
            && !self.certificate_seen
            && self.server_hello.is_some()
        {
            self.info.resumed = true;
        }
    }

    fn encrypt_then_mac(&self) -> bool {
        let cbc = self.suite.is_some_and(|s| s.mac.is_some());
        cbc && self.client_hello.is_some_and(|c| c.encrypt_then_mac)
            && self.server_hello.is_some_and(|s| s.encrypt_then_mac)
    }

    /// Once both hellos are known: find the session's secrets and prepare decryption.
    fn setup_keys(&mut self, keylog: &KeyLog, out: &mut dyn FnMut(Direction, AppData<'_>)) {
        if self.keys_state != KeysState::Waiting {
            return;
        }
        let (Some(ch), Some(sh)) = (&self.client_hello, &self.server_hello) else {
            return;
        };
        let (client_random, server_random) = (ch.random, sh.random);
        let (version, suite_id) = (sh.version, sh.cipher_suite);
        // A growing key log may have only some of this session's lines yet: wait for all.
        let incomplete = keylog.hold_for_keys() > 0 && !self.has_keys_now(keylog);
        let Some(secrets) = keylog.get(&client_random).filter(|_| !incomplete) else {
            self.keys_state = KeysState::NoKeys;
            return;
        };
        let Some(suite) = keys::suite(suite_id).filter(|s| s.tls13 == (version == 0x0304)) else {
            self.anomalies.add(Anomaly::TlsUnsupported);
            self.keys_state =
                KeysState::Failed(format!("cipher suite 0x{suite_id:04x} is not supported"));
            return;
        };
        self.suite = Some(suite);
        match version {
            0x0304 => {
                let (Some(c_hs), Some(s_hs)) =
                    (&secrets.client_handshake, &secrets.server_handshake)
                else {
                    self.keys_state = KeysState::NoKeys;
                    return;
                };
                for (dir, hs, app) in [
                    (
                        Direction::ClientToServer,
                        c_hs.clone(),
                        secrets.client_traffic_0.clone(),
                    ),
                    (
                        Direction::ServerToClient,
                        s_hs.clone(),
                        secrets.server_traffic_0.clone(),
                    ),
                ] {
                    let d = self.dir_mut(dir);
                    d.decrypter = Some(Box::new(RecordDecrypter::new(
                        suite,
                        keys::derive_traffic_keys(&suite, hs.bytes()),
                        RecordProtocol::Tls13,
                    )));
                    d.secrets = Some(Box::new(DirSecrets {
                        pending12: None,
                        secret13: Some(hs),
                        app_secret13: app,
                    }));
                }
                self.keys_state = KeysState::Ready;
                // 0-RTT: the client's first protected records use the early traffic secret.
                let stash = self.take_early();
                if let (true, Some(early)) = (self.offers_early_data(), &secrets.client_early) {
                    if let Some(dec) = self.c2s.decrypter.as_mut() {
                        dec.rekey(keys::derive_traffic_keys(&suite, early.bytes()));
                        self.early_active = true;
                    }
                }
                if self.early_active {
                    for held in stash {
                        self.handle(Direction::ClientToServer, held.record(), keylog, out);
                    }
                } else if !stash.is_empty() {
                    self.info.early_data =
                        Some("not decrypted: no CLIENT_EARLY_TRAFFIC_SECRET logged".into());
                }
            }
            0x0303 => {
                let Some(ms) = &secrets.master_secret else {
                    self.keys_state = KeysState::NoKeys;
                    return;
                };
                let (client, server) =
                    keys::tls12_key_block(&suite, ms.bytes(), &client_random, &server_random);
                self.c2s.secrets().pending12 = Some(client);
                self.s2c.secrets().pending12 = Some(server);
                self.keys_state = KeysState::Ready;
            }
            v => {
                self.anomalies.add(Anomaly::TlsUnsupported);
                self.keys_state = KeysState::Failed(format!("{} is not supported", TlsVersion(v)));
            }
        }
    }
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::ClientToServer => "client to server",
        Direction::ServerToClient => "server to client",
    }
}
