//! TLS handshake-message parsers: ClientHello, ServerHello, EncryptedExtensions, Certificate.
//!
//! Contract: every `parse_*` function takes **one complete handshake message body**, i.e. the
//! bytes after the 4-byte `HandshakeType` + `uint24 length` header (RFC 8446 §4, RFC 5246
//! §7.4), already reassembled across records and TCP segments by the caller (a ClientHello of
//! ~1.9 KB with a post-quantum key share spans two segments). It returns an owned,
//! serializable record that borrows nothing from the input. Parsing is sans-IO, never panics,
//! and allocates at most in proportion to the input, with every kept list capped by a named
//! constant below (hitting a cap sets `lists_capped`).
//!
//! Strictness follows what real peers tolerate, because a passive analyzer wants the SNI even
//! from an odd hello. **Hard errors** (`Err(HelloError)`) are reserved for the fixed header
//! fields (version, random, session id, cipher suites, compression methods, and in the
//! ServerHello the cipher suite and compression method) and for the framing of the extensions
//! block (its length and each extension's type/length header): after those nothing can be
//! located. A Certificate fails hard when its list framing is broken or the leaf is not X.509.
//! Everything inside one extension is **lenient**: an extension whose own structure does not
//! parse is listed in `malformed_extensions` (SNI problems also set `sni.malformed`) and the
//! rest of the hello is still returned. Unknown extensions are kept by type. Repeated
//! extension types (RFC 8446 §4.2 forbids them) are listed in `duplicate_extensions`; the first
//! occurrence is the one interpreted. Bytes after the extensions block (or after the
//! certificate list) are tolerated and reported as `trailing_data: true`, not as an error.
//! GREASE values (RFC 8701) are dropped from every kept list and only set `grease`.

use super::{protocol_name, ProtocolName};
use crate::anomaly::Anomaly;
use crate::proto::codec::Reader;

/// Most host names kept from one server_name extension (a real client sends exactly one).
pub const MAX_SNI_NAMES: usize = 64;
/// Most ALPN protocol names kept from one ClientHello.
pub const MAX_ALPN: usize = 256;
/// Most entries kept per list of u16 code points (cipher suites, groups, versions, key shares).
pub const MAX_CODE_POINTS: usize = 256;
/// Most extension types kept per message (also caps `malformed_`/`duplicate_extensions`).
pub const MAX_EXTENSIONS: usize = 256;
/// Most names kept per certificate list (subject CNs, SAN DNS names, SAN IP addresses).
pub const MAX_CERT_NAMES: usize = 1024;

/// Handshake message types (RFC 8446 §4 `HandshakeType`, RFC 5246 §7.4, RFC 8879).
pub mod handshake_type {
    pub const HELLO_REQUEST: u8 = 0;
    pub const CLIENT_HELLO: u8 = 1;
    pub const SERVER_HELLO: u8 = 2;
    pub const NEW_SESSION_TICKET: u8 = 4;
    pub const END_OF_EARLY_DATA: u8 = 5;
    pub const ENCRYPTED_EXTENSIONS: u8 = 8;
    pub const CERTIFICATE: u8 = 11;
    pub const SERVER_KEY_EXCHANGE: u8 = 12;
    pub const CERTIFICATE_REQUEST: u8 = 13;
    pub const SERVER_HELLO_DONE: u8 = 14;
    pub const CERTIFICATE_VERIFY: u8 = 15;
    pub const CLIENT_KEY_EXCHANGE: u8 = 16;
    pub const FINISHED: u8 = 20;
    /// RFC 6066 §8: OCSP staple, sent between Certificate and ServerKeyExchange in TLS 1.2.
    pub const CERTIFICATE_STATUS: u8 = 22;
    pub const KEY_UPDATE: u8 = 24;
    /// RFC 8879: replaces Certificate when both sides negotiated compress_certificate; its
    /// names cannot be read without decompressing (brotli/zlib/zstd).
    pub const COMPRESSED_CERTIFICATE: u8 = 25;
    pub const MESSAGE_HASH: u8 = 254;

    /// The RFC name of a handshake type, for reports; `None` when unknown.
    pub fn name(t: u8) -> Option<&'static str> {
        Some(match t {
            HELLO_REQUEST => "hello_request",
            CLIENT_HELLO => "client_hello",
            SERVER_HELLO => "server_hello",
            NEW_SESSION_TICKET => "new_session_ticket",
            END_OF_EARLY_DATA => "end_of_early_data",
            ENCRYPTED_EXTENSIONS => "encrypted_extensions",
            CERTIFICATE => "certificate",
            SERVER_KEY_EXCHANGE => "server_key_exchange",
            CERTIFICATE_REQUEST => "certificate_request",
            SERVER_HELLO_DONE => "server_hello_done",
            CERTIFICATE_VERIFY => "certificate_verify",
            CLIENT_KEY_EXCHANGE => "client_key_exchange",
            FINISHED => "finished",
            CERTIFICATE_STATUS => "certificate_status",
            KEY_UPDATE => "key_update",
            COMPRESSED_CERTIFICATE => "compressed_certificate",
            MESSAGE_HASH => "message_hash",
            _ => return None,
        })
    }
}

/// Extension types interpreted here (IANA "TLS ExtensionType Values").
pub mod extension_type {
    /// RFC 6066 §3.
    pub const SERVER_NAME: u16 = 0;
    /// RFC 8446 §4.2.7 (named `elliptic_curves` before RFC 8422).
    pub const SUPPORTED_GROUPS: u16 = 10;
    /// RFC 7301 §3.1.
    pub const ALPN: u16 = 16;
    /// RFC 7366 §2.
    pub const ENCRYPT_THEN_MAC: u16 = 22;
    /// RFC 7627 §5.1.
    pub const EXTENDED_MASTER_SECRET: u16 = 23;
    /// RFC 5077 §3.2.
    pub const SESSION_TICKET: u16 = 35;
    /// RFC 8446 §4.2.11.
    pub const PRE_SHARED_KEY: u16 = 41;
    /// RFC 8446 §4.2.10.
    pub const EARLY_DATA: u16 = 42;
    /// RFC 8446 §4.2.1.
    pub const SUPPORTED_VERSIONS: u16 = 43;
    /// RFC 8446 §4.2.8.
    pub const KEY_SHARE: u16 = 51;
    /// RFC 9849 §5 (draft-ietf-tls-esni).
    pub const ENCRYPTED_CLIENT_HELLO: u16 = 0xfe0d;
}

/// RFC 8446 §4.1.3: a HelloRetryRequest is a ServerHello whose random is SHA-256 of
/// "HelloRetryRequest"; nothing else in the message tells the two apart.
pub const HELLO_RETRY_REQUEST_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// RFC 8701 §2: GREASE cipher suites, extensions, groups, versions and ALPN ids are the 16
/// values `0x?A?A` whose two bytes are equal. Peers must ignore them, so we drop them too.
pub fn is_grease(v: u16) -> bool {
    let [hi, lo] = v.to_be_bytes();
    hi == lo && lo & 0x0f == 0x0a
}

/// The server_name extension of a ClientHello (RFC 6066 §3).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Sni {
    /// The server_name extension is present.
    pub present: bool,
    /// host_name entries as sent (lossy UTF-8, not lowercased, trailing dot kept), in order.
    /// More than one is itself an RFC 6066 §3 violation; `malformed` is not set for it.
    pub names: Vec<String>,
    /// Some name parses as an IPv4/IPv6 address (optionally in brackets or with a trailing
    /// dot); RFC 6066 §3 says "Literal IPv4 and IPv6 addresses are not permitted".
    pub ip_literal: bool,
    /// The extension is present but its list does not parse or is empty, a name_type other
    /// than host_name(0) occurs, or a name is empty, has an empty label, or holds a byte other
    /// than ASCII letters, digits, `-`, `_` and `.` (one trailing dot is not flagged).
    pub malformed: bool,
}

impl crate::intern::Weigh for Sni {
    fn weight(&self) -> usize {
        std::mem::size_of::<Sni>()
            + self
                .names
                .iter()
                .map(|n| std::mem::size_of::<String>() + n.len())
                .sum::<usize>()
    }
}

impl From<&Sni> for std::sync::Arc<Sni> {
    fn from(sni: &Sni) -> Self {
        std::sync::Arc::new(sni.clone())
    }
}

/// An encrypted_client_hello extension (0xfe0d) in a ClientHello (RFC 9849 §5). A passive
/// observer cannot tell real ECH from ECH GREASE (§6.2): both look like an outer offer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EchOffer {
    /// `ECHClientHelloType` outer(0); false for inner(1), which only the server sees decrypted.
    pub outer: bool,
    /// HPKE KDF of the cipher suite (outer only).
    pub kdf_id: Option<u16>,
    /// HPKE AEAD of the cipher suite (outer only).
    pub aead_id: Option<u16>,
    /// ECHConfig identifier (outer only).
    pub config_id: Option<u8>,
    /// Length of the HPKE encapsulated key; 0 in the second ClientHello after HRR (§5.1).
    pub enc_len: usize,
    /// Length of the encrypted ClientHelloInner.
    pub payload_len: usize,
}

/// What a ClientHello offered (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ClientHello {
    pub legacy_version: u16,
    #[serde(skip)]
    pub random: [u8; 32],
    /// Length of legacy_session_id; more than 32 violates RFC 8446 §4.1.2 but is tolerated.
    pub session_id_len: usize,
    /// Offered cipher suites in order, GREASE removed.
    pub cipher_suites: Vec<u16>,
    pub sni: Sni,
    /// Offered ALPN protocol names (lossy UTF-8), in order, GREASE ids removed.
    pub alpn: Vec<ProtocolName>,
    /// supported_versions, GREASE removed; empty when the extension is absent (TLS ≤ 1.2).
    pub supported_versions: Vec<u16>,
    /// Groups of the key_share entries, GREASE removed.
    pub key_share_groups: Vec<u16>,
    /// supported_groups, GREASE removed.
    pub supported_groups: Vec<u16>,
    pub ech: Option<EchOffer>,
    /// pre_shared_key present (TLS 1.3 resumption or external PSK); its content is not read.
    pub psk_offered: bool,
    /// session_ticket present and non-empty: a TLS 1.2 resumption attempt (RFC 5077 §3.2).
    pub session_ticket: bool,
    pub encrypt_then_mac: bool,
    pub extended_master_secret: bool,
    /// Some GREASE value was seen in suites, extension types, groups, versions or ALPN.
    pub grease: bool,
    /// Extension types in order, GREASE removed (duplicates appear each time they were sent).
    pub extensions: Vec<u16>,
    /// Extensions whose content did not parse (interpreted as absent; SNI keeps what parsed).
    pub malformed_extensions: Vec<u16>,
    /// Extension types sent more than once (each listed once); only the first is interpreted.
    pub duplicate_extensions: Vec<u16>,
    /// Bytes followed the extensions block.
    pub trailing_data: bool,
    /// Some list was longer than its cap and was cut (see the `MAX_*` constants).
    pub lists_capped: bool,
}

/// What a ServerHello (or HelloRetryRequest) selected (RFC 8446 §4.1.3, RFC 5246 §7.4.1.3).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ServerHello {
    pub legacy_version: u16,
    #[serde(skip)]
    pub random: [u8; 32],
    /// Echoed or new session id: equal to the client's non-empty id means TLS 1.2 session-ID
    /// resumption (RFC 5246 §7.4.1.3).
    pub session_id: Vec<u8>,
    pub cipher_suite: u16,
    /// supported_versions (TLS 1.3, RFC 8446 §4.2.1).
    pub selected_version: Option<u16>,
    /// The random is [`HELLO_RETRY_REQUEST_RANDOM`]: the server asks for another ClientHello.
    pub hello_retry_request: bool,
    /// Selected ALPN protocol (TLS ≤ 1.2 only: TLS 1.3 sends it in EncryptedExtensions).
    pub alpn: Option<ProtocolName>,
    /// key_share group (in an HRR, the group the server asks the client to use).
    pub key_share_group: Option<u16>,
    pub encrypt_then_mac: bool,
    pub extended_master_secret: bool,
    /// session_ticket present: the server will send NewSessionTicket (TLS 1.2, RFC 5077 §3.2).
    pub session_ticket: bool,
    /// Empty server_name present: the server used the client's SNI (RFC 6066 §3, TLS ≤ 1.2).
    pub server_name_ack: bool,
    /// pre_shared_key present: the server accepted a TLS 1.3 PSK, i.e. resumed a session.
    pub psk_accepted: bool,
    /// Extension types in order, GREASE removed.
    pub extensions: Vec<u16>,
    pub malformed_extensions: Vec<u16>,
    pub duplicate_extensions: Vec<u16>,
    pub trailing_data: bool,
    pub lists_capped: bool,
}

impl ServerHello {
    /// The negotiated version: supported_versions if present, else legacy_version.
    pub fn version(&self) -> u16 {
        self.selected_version.unwrap_or(self.legacy_version)
    }
}

/// TLS 1.3 EncryptedExtensions (RFC 8446 §4.3.1).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EncryptedExtensions {
    /// Selected ALPN protocol.
    pub alpn: Option<ProtocolName>,
    /// Empty server_name present: the server used the client's SNI (RFC 6066 §3).
    pub server_name_ack: bool,
    pub extensions: Vec<u16>,
    pub malformed_extensions: Vec<u16>,
    pub duplicate_extensions: Vec<u16>,
    pub trailing_data: bool,
    pub lists_capped: bool,
}

/// Names of the leaf (first) certificate of a Certificate message.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CertificateNames {
    /// Subject commonName values, in order.
    pub subject_cn: Vec<String>,
    /// subjectAltName dNSName entries, as written (wildcards kept).
    pub san_dns: Vec<String>,
    /// subjectAltName iPAddress entries, printed as addresses (other lengths as hex).
    pub san_ip: Vec<String>,
    /// Subject as an RFC 4514 string (last RDN first, `,` between RDNs, `+` inside one).
    pub subject: String,
    /// Issuer as an RFC 4514 string.
    pub issuer: String,
    /// Validity as RFC 3339 UTC, e.g. `2026-11-23T20:29:22Z`.
    pub not_before: String,
    pub not_after: String,
    /// Certificates in the message (leaf included).
    pub chain_len: usize,
    /// Bytes followed the certificate list, or the leaf's DER inside its cert_data.
    pub trailing_data: bool,
    pub lists_capped: bool,
}

/// Which message a [`HelloError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum MessageKind {
    ClientHello,
    ServerHello,
    EncryptedExtensions,
    Certificate,
}

impl MessageKind {
    pub fn name(self) -> &'static str {
        match self {
            MessageKind::ClientHello => "client_hello",
            MessageKind::ServerHello => "server_hello",
            MessageKind::EncryptedExtensions => "encrypted_extensions",
            MessageKind::Certificate => "certificate",
        }
    }
}

impl std::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a handshake message could not be parsed at all.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum HelloError {
    /// A field, or a length prefix, reaches beyond the message.
    #[error("TLS {message}: truncated in {field}")]
    Truncated {
        message: MessageKind,
        field: &'static str,
    },
    /// A fixed field has an impossible shape (e.g. an odd cipher_suites length).
    #[error("TLS {message}: invalid {field}: {reason}")]
    Invalid {
        message: MessageKind,
        field: &'static str,
        reason: &'static str,
    },
    /// The leaf certificate is not parseable X.509 (or its subjectAltName is broken).
    #[error("TLS certificate: leaf is not valid X.509: {0}")]
    BadCertificate(String),
}

impl HelloError {
    /// The named anomaly this error is reported as.
    pub fn anomaly(&self) -> Anomaly {
        match self {
            HelloError::Truncated { message, .. } | HelloError::Invalid { message, .. } => {
                match message {
                    MessageKind::ClientHello => Anomaly::TlsClientHelloMalformed,
                    MessageKind::ServerHello => Anomaly::TlsServerHelloMalformed,
                    MessageKind::EncryptedExtensions => Anomaly::TlsEncryptedExtensionsMalformed,
                    MessageKind::Certificate => Anomaly::TlsCertificateMalformed,
                }
            }
            HelloError::BadCertificate(_) => Anomaly::TlsCertificateUnparseable,
        }
    }

    /// The message the error is about.
    pub fn message(&self) -> MessageKind {
        match self {
            HelloError::Truncated { message, .. } | HelloError::Invalid { message, .. } => *message,
            HelloError::BadCertificate(_) => MessageKind::Certificate,
        }
    }
}

impl ClientHello {
    /// The anomalies of this otherwise parsed hello.
    pub fn anomalies(&self) -> Vec<Anomaly> {
        let mut out = Vec::new();
        if self.sni.malformed {
            out.push(Anomaly::TlsSniMalformed);
        }
        if self.sni.ip_literal {
            out.push(Anomaly::TlsSniIpLiteral);
        }
        if self.sni.names.len() > 1 {
            out.push(Anomaly::TlsSniMultipleNames);
        }
        common_anomalies(
            &mut out,
            &self.malformed_extensions,
            &self.duplicate_extensions,
            self.trailing_data,
            self.lists_capped,
        );
        out
    }
}

impl ServerHello {
    /// The anomalies of this otherwise parsed hello.
    pub fn anomalies(&self) -> Vec<Anomaly> {
        let mut out = Vec::new();
        common_anomalies(
            &mut out,
            &self.malformed_extensions,
            &self.duplicate_extensions,
            self.trailing_data,
            self.lists_capped,
        );
        out
    }
}

impl EncryptedExtensions {
    /// The anomalies of this otherwise parsed message.
    pub fn anomalies(&self) -> Vec<Anomaly> {
        let mut out = Vec::new();
        common_anomalies(
            &mut out,
            &self.malformed_extensions,
            &self.duplicate_extensions,
            self.trailing_data,
            self.lists_capped,
        );
        out
    }
}

impl CertificateNames {
    /// The anomalies of this otherwise parsed message.
    pub fn anomalies(&self) -> Vec<Anomaly> {
        let mut out = Vec::new();
        common_anomalies(&mut out, &[], &[], self.trailing_data, self.lists_capped);
        out
    }
}

fn common_anomalies(
    out: &mut Vec<Anomaly>,
    malformed: &[u16],
    duplicate: &[u16],
    trailing: bool,
    capped: bool,
) {
    if !malformed.is_empty() {
        out.push(Anomaly::TlsExtensionMalformed);
    }
    if !duplicate.is_empty() {
        out.push(Anomaly::TlsExtensionDuplicate);
    }
    if trailing {
        out.push(Anomaly::TlsHandshakeTrailingData);
    }
    if capped {
        out.push(Anomaly::TlsHandshakeListCapped);
    }
}

fn truncated(message: MessageKind, field: &'static str) -> HelloError {
    HelloError::Truncated { message, field }
}

/// Pushes `v` unless `list` is at `cap`, in which case `capped` is set instead.
fn push_capped<T>(list: &mut Vec<T>, v: T, cap: usize, capped: &mut bool) {
    if list.len() < cap {
        list.push(v);
    } else {
        *capped = true;
    }
}

/// Walks an extensions block (RFC 8446 §4.2: `Extension extensions<0..2^16-1>`, each
/// `uint16 type` + `opaque data<0..2^16-1>`), keeping the bookkeeping every message shares:
/// types in order, GREASE, duplicates, malformed ones, caps.
struct ExtensionWalk<'a> {
    message: MessageKind,
    block: Reader<'a>,
    /// Types seen, and types already recorded as duplicates: O(1) per extension whatever
    /// the count (a 64 KiB block holds up to 16,383 extensions).
    seen: TypeSet,
    repeated: TypeSet,
    types: Vec<u16>,
    malformed: Vec<u16>,
    duplicates: Vec<u16>,
    grease: bool,
    capped: bool,
}

/// A set of u16 values as a 65,536-bit bitmap (8 KiB).
struct TypeSet([u64; 1024]);

impl Default for TypeSet {
    fn default() -> Self {
        TypeSet([0; 1024])
    }
}

impl TypeSet {
    /// Adds `v`; true if it was not there yet.
    fn insert(&mut self, v: u16) -> bool {
        let bit = 1u64 << (v & 63);
        match self.0.get_mut(usize::from(v >> 6)) {
            Some(word) if *word & bit == 0 => {
                *word |= bit;
                true
            }
            _ => false,
        }
    }
}

struct ExtensionSummary {
    types: Vec<u16>,
    malformed: Vec<u16>,
    duplicates: Vec<u16>,
    grease: bool,
    capped: bool,
}

impl<'a> ExtensionWalk<'a> {
    /// Opens the block at the reader's position. An absent block (nothing left at all) is
    /// legal before TLS 1.3 (RFC 5246 §7.4.1.2 and §7.4.1.3) and reads as empty.
    fn open(r: &mut Reader<'a>, message: MessageKind, optional: bool) -> Result<Self, HelloError> {
        let block = if optional && r.is_empty() {
            Reader::new(&[])
        } else {
            r.sub_u16().ok_or(truncated(message, "extensions"))?
        };
        Ok(ExtensionWalk {
            message,
            block,
            seen: TypeSet::default(),
            repeated: TypeSet::default(),
            types: Vec::new(),
            malformed: Vec::new(),
            duplicates: Vec::new(),
            grease: false,
            capped: false,
        })
    }

    /// The next extension to interpret: GREASE types are skipped (and noted), repeats are
    /// recorded as duplicates and skipped so that the first occurrence wins.
    fn next(&mut self) -> Result<Option<(u16, Reader<'a>)>, HelloError> {
        while !self.block.is_empty() {
            let typ = self
                .block
                .u16()
                .ok_or(truncated(self.message, "extension type"))?;
            let data = self
                .block
                .sub_u16()
                .ok_or(truncated(self.message, "extension data"))?;
            if is_grease(typ) {
                self.grease = true;
                continue;
            }
            push_capped(&mut self.types, typ, MAX_EXTENSIONS, &mut self.capped);
            if !self.seen.insert(typ) {
                if self.repeated.insert(typ) {
                    push_capped(&mut self.duplicates, typ, MAX_EXTENSIONS, &mut self.capped);
                }
                continue;
            }
            return Ok(Some((typ, data)));
        }
        Ok(None)
    }

    fn malformed(&mut self, typ: u16) {
        push_capped(&mut self.malformed, typ, MAX_EXTENSIONS, &mut self.capped);
    }

    fn finish(self) -> ExtensionSummary {
        ExtensionSummary {
            types: self.types,
            malformed: self.malformed,
            duplicates: self.duplicates,
            grease: self.grease,
            capped: self.capped,
        }
    }
}

/// A list of u16 code points filling `r` exactly; `None` if its length is odd. GREASE is
/// dropped and noted.
fn code_points(mut r: Reader<'_>, grease: &mut bool, capped: &mut bool) -> Option<Vec<u16>> {
    if r.left() % 2 != 0 {
        return None;
    }
    let mut out = Vec::new();
    while let Some(v) = r.u16() {
        if is_grease(v) {
            *grease = true;
        } else {
            push_capped(&mut out, v, MAX_CODE_POINTS, capped);
        }
    }
    Some(out)
}

/// `r` read to its end, as the extension's whole content must be.
fn exhausted(r: &Reader<'_>) -> Option<()> {
    r.is_empty().then_some(())
}

/// RFC 7301 §3.1: `ProtocolName protocol_name_list<2..2^16-1>`, `opaque ProtocolName<1..2^8-1>`.
/// GREASE ids (RFC 8701 §2: two equal bytes `0x?A`) are dropped and noted.
fn alpn_list(
    mut data: Reader<'_>,
    grease: &mut bool,
    capped: &mut bool,
) -> Option<Vec<ProtocolName>> {
    let mut list = data.sub_u16()?;
    exhausted(&data)?;
    if list.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    while !list.is_empty() {
        let name = list.sub_u8()?.rest();
        if name.is_empty() {
            return None;
        }
        if let [a, b] = name {
            if is_grease(u16::from_be_bytes([*a, *b])) {
                *grease = true;
                continue;
            }
        }
        push_capped(&mut out, protocol_name(name), MAX_ALPN, capped);
    }
    Some(out)
}

/// The single protocol a server selects (RFC 7301 §3.1: "exactly one ProtocolName").
fn alpn_selected(data: Reader<'_>) -> Option<ProtocolName> {
    let mut ignored = false;
    let mut capped = false;
    let list = alpn_list(data, &mut ignored, &mut capped)?;
    match list.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

/// RFC 6066 §3 `ServerNameList`. Keeps every host_name that parsed before any error.
fn parse_sni(mut data: Reader<'_>, sni: &mut Sni, capped: &mut bool) {
    sni.present = true;
    let Some(mut list) = data.sub_u16() else {
        sni.malformed = true;
        return;
    };
    // server_name_list<1..2^16-1>: an empty list (or an empty extension, which is what a
    // *server* sends) is not a valid ClientHello SNI.
    if !data.is_empty() || list.is_empty() {
        sni.malformed = true;
    }
    while !list.is_empty() {
        let (Some(name_type), Some(name)) = (list.u8(), list.sub_u16()) else {
            sni.malformed = true;
            return;
        };
        // Only host_name(0) is defined; other types are assumed to share its u16-prefixed
        // layout (as every implementation does) so the walk can go on.
        if name_type != 0 {
            sni.malformed = true;
            continue;
        }
        let bytes = name.rest();
        if !valid_host_name(bytes) {
            sni.malformed = true;
        }
        let name = String::from_utf8_lossy(bytes).into_owned();
        if is_ip_literal(&name) {
            sni.ip_literal = true;
        }
        push_capped(&mut sni.names, name, MAX_SNI_NAMES, capped);
    }
}

/// RFC 6066 §3: "HostName contains the fully qualified DNS hostname ... represented as a byte
/// string using ASCII encoding without a trailing dot". A trailing dot is tolerated here (it
/// is kept in `names`, so the analysis can point at it); `_` is tolerated because real
/// deployments use it.
fn valid_host_name(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_suffix(b".").unwrap_or(bytes);
    !bytes.is_empty()
        && bytes.split(|&b| b == b'.').all(|label| {
            !label.is_empty()
                && label
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn is_ip_literal(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let name = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    name.parse::<std::net::IpAddr>().is_ok()
}

/// RFC 9849 §5 `ECHClientHello`: type outer(0) with cipher suite, config id, `enc<0..2^16-1>`
/// and `payload<1..2^16-1>`; or inner(1) with nothing.
fn parse_ech(mut d: Reader<'_>) -> Option<EchOffer> {
    match d.u8()? {
        0 => {
            let kdf_id = d.u16()?;
            let aead_id = d.u16()?;
            let config_id = d.u8()?;
            let enc_len = d.sub_u16()?.left();
            let payload_len = d.sub_u16()?.left();
            exhausted(&d)?;
            (payload_len > 0).then_some(EchOffer {
                outer: true,
                kdf_id: Some(kdf_id),
                aead_id: Some(aead_id),
                config_id: Some(config_id),
                enc_len,
                payload_len,
            })
        }
        1 => exhausted(&d).map(|()| EchOffer {
            outer: false,
            kdf_id: None,
            aead_id: None,
            config_id: None,
            enc_len: 0,
            payload_len: 0,
        }),
        _ => None,
    }
}

/// Parses a ClientHello body (RFC 8446 §4.1.2; RFC 5246 §7.4.1.2 for TLS ≤ 1.2).
///
/// Fails only on the fixed fields and the extensions block framing; see the module docs.
pub fn parse_client_hello(body: &[u8]) -> Result<ClientHello, HelloError> {
    const M: MessageKind = MessageKind::ClientHello;
    let mut r = Reader::new(body);
    let legacy_version = r.u16().ok_or(truncated(M, "legacy_version"))?;
    let random = r.array::<32>().ok_or(truncated(M, "random"))?;
    let session_id_len = r.sub_u8().ok_or(truncated(M, "legacy_session_id"))?.left();
    let suites = r.sub_u16().ok_or(truncated(M, "cipher_suites"))?;
    let mut grease = false;
    let mut capped = false;
    let cipher_suites =
        code_points(suites, &mut grease, &mut capped).ok_or(HelloError::Invalid {
            message: M,
            field: "cipher_suites",
            reason: "odd length",
        })?;
    r.sub_u8()
        .ok_or(truncated(M, "legacy_compression_methods"))?;

    let mut hello = ClientHello {
        legacy_version,
        random,
        session_id_len,
        cipher_suites,
        sni: Sni::default(),
        alpn: Vec::new(),
        supported_versions: Vec::new(),
        key_share_groups: Vec::new(),
        supported_groups: Vec::new(),
        ech: None,
        psk_offered: false,
        session_ticket: false,
        encrypt_then_mac: false,
        extended_master_secret: false,
        grease: false,
        extensions: Vec::new(),
        malformed_extensions: Vec::new(),
        duplicate_extensions: Vec::new(),
        trailing_data: false,
        lists_capped: false,
    };
    let mut walk = ExtensionWalk::open(&mut r, M, true)?;
    while let Some((typ, mut data)) = walk.next()? {
        use extension_type as ext;
        let ok = match typ {
            ext::SERVER_NAME => {
                parse_sni(data.clone(), &mut hello.sni, &mut capped);
                // Only a framing failure counts as a malformed extension; odd names are
                // reported through `sni.malformed` alone.
                let framed = data.sub_u16().is_some() && data.is_empty();
                framed.then_some(())
            }
            ext::ALPN => alpn_list(data, &mut grease, &mut capped).map(|v| hello.alpn = v),
            // RFC 8446 §4.2.1: `ProtocolVersion versions<2..254>` in a ClientHello.
            ext::SUPPORTED_VERSIONS => data
                .sub_u8()
                .filter(|_| data.is_empty())
                .and_then(|list| code_points(list, &mut grease, &mut capped))
                .map(|v| hello.supported_versions = v),
            // RFC 8446 §4.2.7: `NamedGroup named_group_list<2..2^16-1>`.
            ext::SUPPORTED_GROUPS => data
                .sub_u16()
                .filter(|_| data.is_empty())
                .and_then(|list| code_points(list, &mut grease, &mut capped))
                .map(|v| hello.supported_groups = v),
            ext::KEY_SHARE => client_key_shares(data, &mut grease, &mut capped)
                .map(|v| hello.key_share_groups = v),
            ext::ENCRYPTED_CLIENT_HELLO => parse_ech(data).map(|e| hello.ech = Some(e)),
            // RFC 8446 §4.2.11; its identities and binders are not needed here.
            ext::PRE_SHARED_KEY => {
                hello.psk_offered = true;
                Some(())
            }
            // RFC 5077 §3.2: empty asks for a new ticket, non-empty presents one.
            ext::SESSION_TICKET => {
                hello.session_ticket = !data.is_empty();
                Some(())
            }
            // RFC 7366 §2 and RFC 7627 §5.1: "extension_data" is empty.
            ext::ENCRYPT_THEN_MAC => {
                hello.encrypt_then_mac = true;
                exhausted(&data)
            }
            ext::EXTENDED_MASTER_SECRET => {
                hello.extended_master_secret = true;
                exhausted(&data)
            }
            _ => Some(()),
        };
        if ok.is_none() {
            walk.malformed(typ);
        }
    }
    let summary = walk.finish();
    hello.grease = grease || summary.grease;
    hello.lists_capped = capped || summary.capped;
    hello.extensions = summary.types;
    hello.malformed_extensions = summary.malformed;
    hello.duplicate_extensions = summary.duplicates;
    hello.trailing_data = !r.is_empty();
    Ok(hello)
}

/// RFC 8446 §4.2.8: `KeyShareEntry client_shares<0..2^16-1>`, each `NamedGroup group` and
/// `opaque key_exchange<1..2^16-1>`. Returns the groups.
fn client_key_shares(
    mut data: Reader<'_>,
    grease: &mut bool,
    capped: &mut bool,
) -> Option<Vec<u16>> {
    let mut shares = data.sub_u16()?;
    exhausted(&data)?;
    let mut groups = Vec::new();
    while !shares.is_empty() {
        let group = shares.u16()?;
        shares.sub_u16()?;
        if is_grease(group) {
            *grease = true;
        } else {
            push_capped(&mut groups, group, MAX_CODE_POINTS, capped);
        }
    }
    Some(groups)
}

/// Parses a ServerHello or HelloRetryRequest body (RFC 8446 §4.1.3; RFC 5246 §7.4.1.3).
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello, HelloError> {
    const M: MessageKind = MessageKind::ServerHello;
    let mut r = Reader::new(body);
    let legacy_version = r.u16().ok_or(truncated(M, "legacy_version"))?;
    let random = r.array::<32>().ok_or(truncated(M, "random"))?;
    let session_id = r
        .sub_u8()
        .ok_or(truncated(M, "legacy_session_id_echo"))?
        .rest()
        .to_vec();
    let cipher_suite = r.u16().ok_or(truncated(M, "cipher_suite"))?;
    r.u8().ok_or(truncated(M, "legacy_compression_method"))?;
    let hello_retry_request = random == HELLO_RETRY_REQUEST_RANDOM;

    let mut hello = ServerHello {
        legacy_version,
        random,
        session_id,
        cipher_suite,
        selected_version: None,
        hello_retry_request,
        alpn: None,
        key_share_group: None,
        encrypt_then_mac: false,
        extended_master_secret: false,
        session_ticket: false,
        server_name_ack: false,
        psk_accepted: false,
        extensions: Vec::new(),
        malformed_extensions: Vec::new(),
        duplicate_extensions: Vec::new(),
        trailing_data: false,
        lists_capped: false,
    };
    let mut walk = ExtensionWalk::open(&mut r, M, true)?;
    while let Some((typ, mut data)) = walk.next()? {
        use extension_type as ext;
        let ok = match typ {
            // RFC 8446 §4.2.1: a single `ProtocolVersion selected_version`.
            ext::SUPPORTED_VERSIONS => data
                .u16()
                .filter(|_| data.is_empty())
                .map(|v| hello.selected_version = Some(v)),
            // RFC 8446 §4.2.8: an HRR carries only `NamedGroup selected_group`; a ServerHello
            // a whole `KeyShareEntry server_share`.
            ext::KEY_SHARE => {
                let group = data.u16();
                let share_ok = hello_retry_request || data.sub_u16().is_some();
                group
                    .filter(|_| share_ok && data.is_empty())
                    .map(|g| hello.key_share_group = Some(g))
            }
            ext::ALPN => alpn_selected(data).map(|p| hello.alpn = Some(p)),
            // RFC 6066 §3: the server's server_name is empty.
            ext::SERVER_NAME => {
                hello.server_name_ack = true;
                exhausted(&data)
            }
            // RFC 8446 §4.2.11: `uint16 selected_identity`.
            ext::PRE_SHARED_KEY => {
                hello.psk_accepted = true;
                data.u16().filter(|_| data.is_empty()).map(|_| ())
            }
            ext::SESSION_TICKET => {
                hello.session_ticket = true;
                exhausted(&data)
            }
            ext::ENCRYPT_THEN_MAC => {
                hello.encrypt_then_mac = true;
                exhausted(&data)
            }
            ext::EXTENDED_MASTER_SECRET => {
                hello.extended_master_secret = true;
                exhausted(&data)
            }
            _ => Some(()),
        };
        if ok.is_none() {
            walk.malformed(typ);
        }
    }
    let summary = walk.finish();
    hello.lists_capped = summary.capped;
    hello.extensions = summary.types;
    hello.malformed_extensions = summary.malformed;
    hello.duplicate_extensions = summary.duplicates;
    hello.trailing_data = !r.is_empty();
    Ok(hello)
}

/// Parses a TLS 1.3 EncryptedExtensions body (RFC 8446 §4.3.1: `Extension
/// extensions<0..2^16-1>` and nothing else). The caller decrypted it.
pub fn parse_encrypted_extensions(body: &[u8]) -> Result<EncryptedExtensions, HelloError> {
    const M: MessageKind = MessageKind::EncryptedExtensions;
    let mut r = Reader::new(body);
    let mut ee = EncryptedExtensions::default();
    let mut walk = ExtensionWalk::open(&mut r, M, false)?;
    while let Some((typ, data)) = walk.next()? {
        let ok = match typ {
            extension_type::ALPN => alpn_selected(data).map(|p| ee.alpn = Some(p)),
            extension_type::SERVER_NAME => {
                ee.server_name_ack = true;
                exhausted(&data)
            }
            _ => Some(()),
        };
        if ok.is_none() {
            walk.malformed(typ);
        }
    }
    let summary = walk.finish();
    ee.lists_capped = summary.capped;
    ee.extensions = summary.types;
    ee.malformed_extensions = summary.malformed;
    ee.duplicate_extensions = summary.duplicates;
    ee.trailing_data = !r.is_empty();
    Ok(ee)
}

/// Parses a Certificate body and returns the leaf's names, or `None` for an empty list (what
/// a client without a certificate answers to CertificateRequest).
///
/// `tls13 == false`: RFC 5246 §7.4.2, `ASN.1Cert certificate_list<0..2^24-1>` with
/// `opaque ASN.1Cert<1..2^24-1>`. `tls13 == true`: RFC 8446 §4.4.2,
/// `opaque certificate_request_context<0..2^8-1>` then `CertificateEntry
/// certificate_list<0..2^24-1>`, each `opaque cert_data<1..2^24-1>` and `Extension
/// extensions<0..2^16-1>`. Only X.509 entries are understood (not RFC 7250 raw public keys).
/// Every entry is counted for `chain_len`, but only the leaf is decoded.
pub fn parse_certificate(body: &[u8], tls13: bool) -> Result<Option<CertificateNames>, HelloError> {
    const M: MessageKind = MessageKind::Certificate;
    let mut r = Reader::new(body);
    if tls13 {
        r.sub_u8()
            .ok_or(truncated(M, "certificate_request_context"))?;
    }
    let mut list = r.sub_u24().ok_or(truncated(M, "certificate_list"))?;
    let mut leaf: Option<&[u8]> = None;
    let mut chain_len = 0usize;
    while !list.is_empty() {
        let cert = list.sub_u24().ok_or(truncated(M, "cert_data"))?;
        if tls13 {
            list.sub_u16()
                .ok_or(truncated(M, "certificate entry extensions"))?;
        }
        chain_len = chain_len.saturating_add(1);
        leaf.get_or_insert(cert.rest());
    }
    let Some(der) = leaf else {
        return Ok(None);
    };
    let mut names = leaf_names(der)?;
    names.chain_len = chain_len;
    names.trailing_data |= !r.is_empty();
    Ok(Some(names))
}

/// Subject CNs, SANs, issuer and validity of one DER certificate (RFC 5280 §4.1).
fn leaf_names(der: &[u8]) -> Result<CertificateNames, HelloError> {
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::{FromDer, X509Certificate};

    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| HelloError::BadCertificate(e.to_string()))?;
    let mut names = CertificateNames {
        trailing_data: !rest.is_empty(),
        ..CertificateNames::default()
    };
    let mut capped = false;
    for cn in cert.subject().iter_common_name() {
        let value = attribute_string(cn.attr_value()).unwrap_or_else(|| der_hex(cn.attr_value()));
        push_capped(&mut names.subject_cn, value, MAX_CERT_NAMES, &mut capped);
    }
    // A broken or repeated subjectAltName makes the name set unknowable: reject the leaf
    // rather than report it as having no SAN (RFC 5280 §4.2: an extension appears once).
    let san = cert
        .subject_alternative_name()
        .map_err(|e| HelloError::BadCertificate(format!("subjectAltName: {e}")))?;
    for name in san.iter().flat_map(|san| san.value.general_names.iter()) {
        match name {
            GeneralName::DNSName(dns) => push_capped(
                &mut names.san_dns,
                (*dns).to_owned(),
                MAX_CERT_NAMES,
                &mut capped,
            ),
            GeneralName::IPAddress(ip) => push_capped(
                &mut names.san_ip,
                ip_string(ip),
                MAX_CERT_NAMES,
                &mut capped,
            ),
            _ => {}
        }
    }
    names.subject = rfc4514(cert.subject());
    names.issuer = rfc4514(cert.issuer());
    names.not_before = rfc3339(cert.validity().not_before.timestamp());
    names.not_after = rfc3339(cert.validity().not_after.timestamp());
    names.lists_capped = capped;
    Ok(names)
}

/// RFC 5280 §4.2.1.6: an iPAddress is 4 or 16 octets; other lengths are printed as hex.
fn ip_string(bytes: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        std::net::Ipv4Addr::from(v4).to_string()
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        std::net::Ipv6Addr::from(v6).to_string()
    } else {
        hex(bytes)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A DirectoryString-like attribute value as text, for the string types RFC 5280 §4.1.2.4
/// allows (BMPString is UTF-16BE, UniversalString UTF-32BE, TeletexString read as Latin-1).
fn attribute_string(v: &x509_parser::asn1_rs::Any<'_>) -> Option<String> {
    use x509_parser::asn1_rs::Tag;
    let tag = v.tag();
    let data = v.data;
    if [
        Tag::Utf8String,
        Tag::PrintableString,
        Tag::Ia5String,
        Tag::NumericString,
        Tag::VisibleString,
    ]
    .contains(&tag)
    {
        Some(String::from_utf8_lossy(data).into_owned())
    } else if tag == Tag::BmpString {
        let units: Vec<u16> = data
            .chunks_exact(2)
            .filter_map(|c| <[u8; 2]>::try_from(c).ok().map(u16::from_be_bytes))
            .collect();
        Some(String::from_utf16_lossy(&units))
    } else if tag == Tag::UniversalString {
        Some(
            data.chunks_exact(4)
                .map(|c| {
                    <[u8; 4]>::try_from(c)
                        .ok()
                        .and_then(|b| char::from_u32(u32::from_be_bytes(b)))
                        .unwrap_or(char::REPLACEMENT_CHARACTER)
                })
                .collect(),
        )
    } else if tag == Tag::TeletexString {
        Some(data.iter().map(|&b| char::from(b)).collect())
    } else {
        None
    }
}

/// RFC 4514 §2.4: a value that is not a string is `#` and the hex of its BER encoding.
fn der_hex(v: &x509_parser::asn1_rs::Any<'_>) -> String {
    use x509_parser::asn1_rs::ToDer;
    format!("#{}", hex(&v.to_der_vec().unwrap_or_default()))
}

/// An X.509 Name as an RFC 4514 string: RDNs last-first joined by `,`, multi-valued RDNs by
/// `+`, short names from x509-parser's table (CN, O, OU, C, L, ST, DC, Email) or the OID's
/// short name/dotted form, values escaped per §2.4. Matches `openssl -nameopt RFC2253`.
fn rfc4514(name: &x509_parser::x509::X509Name<'_>) -> String {
    use x509_parser::objects::{oid2abbrev, oid_registry};
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let key = oid2abbrev(attr.attr_type(), oid_registry())
                        .map(str::to_owned)
                        .unwrap_or_else(|_| attr.attr_type().to_id_string());
                    let value = match attribute_string(attr.attr_value()) {
                        Some(s) => escape_rfc4514(&s),
                        None => der_hex(attr.attr_value()),
                    };
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn escape_rfc4514(s: &str) -> String {
    let n = s.chars().count();
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i + 1 == n => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
    out
}

/// Unix seconds as RFC 3339 UTC (`YYYY-MM-DDThh:mm:ssZ`).
fn rfc3339(secs: i64) -> String {
    format!("{}Z", crate::timestamp::utc_date_time(secs))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Decodes a fixture: hex digits, whitespace ignored.
    fn unhex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    macro_rules! fixtures {
        ($($name:literal),* $(,)?) => {
            &[$(($name, include_str!(concat!("../../../tests/data/tls-hello/", $name, ".hex")))),*]
        };
    }

    /// Every real handshake message in tests/data/tls-hello (see its README.md).
    const FIXTURES: &[(&str, &str)] = fixtures!(
        "chromium-client-hello",
        "curl-tls12-client-hello",
        "curl-tls13-client-hello",
        "apache-tls12-server-hello",
        "apache-tls12-certificate",
        "nginx-tls12-h2-server-hello",
        "nginx-tls13-server-hello",
        "apache-tls13-server-hello",
        "openssl-no-sni-client-hello",
        "openssl-ip-literal-client-hello",
        "openssl-mixed-case-client-hello",
        "openssl-trailing-dot-client-hello",
        "openssl-hrr-server-hello",
        "openssl-hrr-second-client-hello",
        "openssl-psk-client-hello",
        "openssl-psk-server-hello",
        "openssl-tls12-ticket-client-hello",
        "openssl-tls12-resumed-client-hello",
        "openssl-tls12-resumed-server-hello",
        "nginx-tls13-encrypted-extensions",
        "nginx-tls13-certificate",
        "apache-tls13-encrypted-extensions",
        "apache-tls13-certificate",
    );

    /// What tshark (and openssl, for certificates) says about each fixture.
    const EXPECTED: &str = include_str!("../../../tests/data/tls-hello/expected.json");

    /// A real handshake message body of `tests/data/tls-hello`, by name.
    pub(crate) fn fixture(name: &str) -> Vec<u8> {
        let (_, hex) = FIXTURES.iter().find(|(n, _)| *n == name).unwrap();
        unhex(hex)
    }

    fn expected() -> serde_json::Map<String, serde_json::Value> {
        match serde_json::from_str(EXPECTED).unwrap() {
            serde_json::Value::Object(map) => map,
            other => panic!("{other}"),
        }
    }

    fn u16s(v: &[u16]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    fn vec8(b: &[u8]) -> Vec<u8> {
        let mut v = vec![u8::try_from(b.len()).unwrap()];
        v.extend_from_slice(b);
        v
    }

    fn vec16(b: &[u8]) -> Vec<u8> {
        let mut v = u16::try_from(b.len()).unwrap().to_be_bytes().to_vec();
        v.extend_from_slice(b);
        v
    }

    fn vec24(b: &[u8]) -> Vec<u8> {
        let mut v = u32::try_from(b.len()).unwrap().to_be_bytes()[1..].to_vec();
        v.extend_from_slice(b);
        v
    }

    /// Extensions block of `(type, data)` pairs.
    fn ext_block(exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut block = Vec::new();
        for (t, d) in exts {
            block.extend_from_slice(&t.to_be_bytes());
            block.extend(vec16(d));
        }
        vec16(&block)
    }

    /// A ClientHello body with a 32-byte session id, two suites and the given extensions.
    fn client_hello(exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[7; 32]);
        b.extend(vec8(&[9; 32]));
        b.extend(vec16(&u16s(&[0x1301, 0xc02f])));
        b.extend(vec8(&[0]));
        b.extend(ext_block(exts));
        b
    }

    fn server_hello(random: [u8; 32], exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&random);
        b.extend(vec8(&[1; 32]));
        b.extend_from_slice(&[0x13, 0x01, 0]);
        b.extend(ext_block(exts));
        b
    }

    /// server_name extension data holding `(name_type, name)` entries.
    fn sni_data(names: &[(u8, &[u8])]) -> Vec<u8> {
        let mut list = Vec::new();
        for (t, n) in names {
            list.push(*t);
            list.extend(vec16(n));
        }
        vec16(&list)
    }

    fn sni_of(names: &[(u8, &[u8])]) -> ClientHello {
        parse_client_hello(&client_hello(&[(0, sni_data(names))])).unwrap()
    }

    // ---- real messages from samples/ (see tests/data/tls-hello/README.md) ----

    fn ints(v: &serde_json::Value) -> Vec<u64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect()
    }

    fn strings(v: &serde_json::Value) -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_owned())
            .collect()
    }

    /// tshark's u16 list, GREASE removed (RFC 8701 values listed independently of is_grease).
    fn no_grease(v: &serde_json::Value) -> Vec<u16> {
        const GREASE: [u16; 16] = [
            0x0a0a, 0x1a1a, 0x2a2a, 0x3a3a, 0x4a4a, 0x5a5a, 0x6a6a, 0x7a7a, 0x8a8a, 0x9a9a, 0xaaaa,
            0xbaba, 0xcaca, 0xdada, 0xeaea, 0xfafa,
        ];
        ints(v)
            .into_iter()
            .map(|x| u16::try_from(x).unwrap())
            .filter(|x| !GREASE.contains(x))
            .collect()
    }

    /// `[[type, len], ...]` as tshark listed the extensions.
    fn extension_list(e: &serde_json::Value) -> Vec<(u16, u64)> {
        e["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                let p = ints(pair);
                (u16::try_from(p[0]).unwrap(), p[1])
            })
            .collect()
    }

    fn unhex_str(v: &serde_json::Value) -> Vec<u8> {
        unhex(v.as_str().unwrap())
    }

    fn check_client_hello(name: &str, ch: &ClientHello, e: &serde_json::Value) {
        let exts = extension_list(e);
        let types = no_grease(&serde_json::json!(exts
            .iter()
            .map(|x| x.0)
            .collect::<Vec<_>>()));
        let has = |t: u16| types.contains(&t);
        assert_eq!(
            u64::from(ch.legacy_version),
            e["version"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(ch.random.to_vec(), unhex_str(&e["random"]), "{name}");
        assert_eq!(
            ch.session_id_len as u64,
            e["session_id_length"].as_u64().unwrap()
        );
        assert_eq!(ch.cipher_suites, no_grease(&e["cipher_suites"]), "{name}");
        assert_eq!(ch.extensions, types, "{name}");
        assert_eq!(ch.sni.present, has(0), "{name}");
        assert_eq!(ch.sni.names, strings(&e["server_name"]), "{name}");
        assert_eq!(ch.alpn, strings(&e["alpn"]), "{name}");
        assert_eq!(
            ch.supported_versions,
            no_grease(&e["supported_versions"]),
            "{name}"
        );
        assert_eq!(
            ch.key_share_groups,
            no_grease(&e["key_share_groups"]),
            "{name}"
        );
        assert_eq!(
            ch.supported_groups,
            no_grease(&e["supported_groups"]),
            "{name}"
        );
        let grease = [
            &e["cipher_suites"],
            &e["supported_versions"],
            &e["supported_groups"],
        ]
        .into_iter()
        .any(|v| no_grease(v).len() != ints(v).len())
            || types.len() != exts.len();
        assert_eq!(ch.grease, grease, "{name}");
        assert_eq!(ch.psk_offered, has(41), "{name}");
        assert_eq!(
            ch.session_ticket,
            exts.iter().any(|&(t, l)| t == 35 && l > 0)
        );
        assert_eq!(ch.encrypt_then_mac, has(22), "{name}");
        assert_eq!(ch.extended_master_secret, has(23), "{name}");
        let ech = serde_json::to_value(&ch.ech).unwrap();
        assert_eq!(ech, e["ech"], "{name}");
        assert!(ch.malformed_extensions.is_empty() && ch.duplicate_extensions.is_empty());
        assert!(!ch.trailing_data && !ch.lists_capped, "{name}");
    }

    fn check_server_hello(name: &str, sh: &ServerHello, e: &serde_json::Value) {
        let exts = extension_list(e);
        let types: Vec<u16> = exts.iter().map(|x| x.0).collect();
        let has = |t: u16| types.contains(&t);
        assert_eq!(
            u64::from(sh.legacy_version),
            e["version"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(sh.random.to_vec(), unhex_str(&e["random"]), "{name}");
        assert_eq!(sh.session_id, unhex_str(&e["session_id"]), "{name}");
        assert_eq!(vec![u64::from(sh.cipher_suite)], ints(&e["cipher_suites"]));
        assert_eq!(sh.extensions, types, "{name}");
        let versions = ints(&e["supported_versions"]);
        assert_eq!(
            sh.selected_version.map(u64::from),
            versions.first().copied()
        );
        assert_eq!(sh.hello_retry_request, e["hello_retry_request"] == true);
        assert_eq!(
            sh.hello_retry_request,
            e["tshark_label"] == "Handshake Protocol: Hello Retry Request"
        );
        let alpn = strings(&e["alpn"]);
        assert_eq!(
            sh.alpn.as_deref(),
            alpn.first().map(String::as_str),
            "{name}"
        );
        let group = ints(&e["key_share_groups"]);
        assert_eq!(sh.key_share_group.map(u64::from), group.first().copied());
        assert_eq!(sh.server_name_ack, has(0), "{name}");
        assert_eq!(sh.psk_accepted, has(41), "{name}");
        assert_eq!(sh.session_ticket, has(35), "{name}");
        assert_eq!(sh.encrypt_then_mac, has(22), "{name}");
        assert_eq!(sh.extended_master_secret, has(23), "{name}");
        assert!(sh.anomalies().is_empty(), "{name}");
    }

    fn check_certificate(name: &str, cert: &CertificateNames, e: &serde_json::Value) {
        assert_eq!(cert.subject_cn, strings(&e["subject_cn"]), "{name}");
        assert_eq!(cert.san_dns, strings(&e["san_dns"]), "{name}");
        assert_eq!(cert.san_dns, strings(&e["tshark_dns_names"]), "{name}");
        assert_eq!(cert.san_ip, strings(&e["san_ip"]), "{name}");
        assert_eq!(cert.subject, e["subject"].as_str().unwrap(), "{name}");
        assert_eq!(cert.issuer, e["issuer"].as_str().unwrap(), "{name}");
        assert_eq!(cert.not_before, e["not_before"].as_str().unwrap(), "{name}");
        assert_eq!(cert.not_after, e["not_after"].as_str().unwrap(), "{name}");
        assert_eq!(
            cert.chain_len as u64,
            e["chain_len"].as_u64().unwrap(),
            "{name}"
        );
        assert!(cert.anomalies().is_empty(), "{name}");
    }

    /// Every fixture, parsed, against tshark's dissection of the same message in its capture
    /// (and openssl's reading of the leaf certificate), as recorded by extract.py.
    #[test]
    fn every_fixture_matches_tshark() {
        let expected = expected();
        assert_eq!(expected.len(), FIXTURES.len());
        for (name, e) in &expected {
            let body = fixture(name);
            match e["type"].as_u64().unwrap() {
                1 => check_client_hello(name, &parse_client_hello(&body).unwrap(), e),
                2 => check_server_hello(name, &parse_server_hello(&body).unwrap(), e),
                8 => {
                    let ee = parse_encrypted_extensions(&body).unwrap();
                    let types: Vec<u16> = extension_list(e).iter().map(|x| x.0).collect();
                    assert_eq!(ee.extensions, types, "{name}");
                    assert_eq!(
                        ee.alpn.as_deref(),
                        strings(&e["alpn"]).first().map(String::as_str),
                        "{name}"
                    );
                    assert_eq!(ee.server_name_ack, types.contains(&0), "{name}");
                    assert!(ee.anomalies().is_empty(), "{name}");
                }
                11 => {
                    let cert = parse_certificate(&body, name.contains("tls13")).unwrap();
                    check_certificate(name, &cert.unwrap(), e);
                }
                t => panic!("{name}: type {t}"),
            }
        }
    }

    // The facts below do not change when samples/generate.sh is rerun (randoms, session ids,
    // ECH GREASE and certificate dates do; those are checked against expected.json above).

    #[test]
    fn chromium_client_hello() {
        let body = fixture("chromium-client-hello");
        assert!(body.len() > 1448, "spans two TCP segments in the capture");
        let ch = parse_client_hello(&body).unwrap();
        assert_eq!(ch.sni.names, ["a.example.test"]);
        assert!(!ch.sni.malformed && !ch.sni.ip_literal);
        assert_eq!(ch.alpn, ["h2", "http/1.1"]);
        assert_eq!(ch.supported_versions, [0x0304, 0x0303]);
        // X25519MLKEM768 (0x11ec) and X25519; the GREASE share is dropped.
        assert_eq!(ch.key_share_groups, [0x11ec, 0x001d]);
        assert_eq!(ch.cipher_suites[..3], [0x1301, 0x1302, 0x1303]);
        // ECH GREASE (RFC 9849 §6.2): HKDF-SHA256 / AES-128-GCM, 32-byte X25519 enc.
        let ech = ch.ech.clone().unwrap();
        assert!(ech.outer);
        assert_eq!(
            (ech.kdf_id, ech.aead_id, ech.enc_len),
            (Some(1), Some(1), 32)
        );
        assert!(ch.grease && ch.extended_master_secret && !ch.psk_offered);
        assert!(ch.anomalies().is_empty());
    }

    #[test]
    fn curl_client_hellos() {
        let ch = parse_client_hello(&fixture("curl-tls12-client-hello")).unwrap();
        assert_eq!(ch.cipher_suites, [0xc02f, 0x00ff]);
        assert_eq!(ch.session_id_len, 0);
        assert!(ch.supported_versions.is_empty() && ch.key_share_groups.is_empty());
        assert!(ch.encrypt_then_mac && ch.extended_master_secret && !ch.grease);
        let ch = parse_client_hello(&fixture("curl-tls13-client-hello")).unwrap();
        assert_eq!(ch.supported_versions, [0x0304]);
        assert_eq!(ch.key_share_groups, [0x001d]);
        assert_eq!(ch.sni.names, ["a.example.test"]);
    }

    #[test]
    fn real_sni_variants() {
        let ch = |n| parse_client_hello(&fixture(n)).unwrap();
        let none = ch("openssl-no-sni-client-hello");
        assert_eq!(none.sni, Sni::default());
        assert!(!none.extensions.contains(&0));
        let ip = ch("openssl-ip-literal-client-hello");
        assert_eq!(ip.sni.names, ["127.0.0.1"]);
        assert!(ip.sni.ip_literal && !ip.sni.malformed);
        assert_eq!(ip.anomalies(), [Anomaly::TlsSniIpLiteral]);
        let mixed = ch("openssl-mixed-case-client-hello");
        assert_eq!(
            mixed.sni.names,
            ["A.Example.TEST"],
            "as sent, not lowercased"
        );
        assert!(mixed.anomalies().is_empty());
        let dot = ch("openssl-trailing-dot-client-hello");
        assert_eq!(dot.sni.names, ["a.example.test."], "as sent, dot kept");
        assert!(!dot.sni.malformed);
    }

    #[test]
    fn real_hello_retry_request() {
        let hrr = parse_server_hello(&fixture("openssl-hrr-server-hello")).unwrap();
        assert!(hrr.hello_retry_request);
        assert_eq!(hrr.random, HELLO_RETRY_REQUEST_RANDOM);
        assert_eq!(hrr.version(), 0x0304);
        assert_eq!(hrr.key_share_group, Some(0x0017), "asks for secp256r1");
        let second = parse_client_hello(&fixture("openssl-hrr-second-client-hello")).unwrap();
        assert_eq!(second.key_share_groups, [0x0017]);
    }

    #[test]
    fn real_resumption() {
        let ch = parse_client_hello(&fixture("openssl-psk-client-hello")).unwrap();
        assert!(ch.psk_offered);
        assert_eq!(
            ch.extensions.last(),
            Some(&41),
            "RFC 8446 §4.2.11: PSK comes last"
        );
        let sh = parse_server_hello(&fixture("openssl-psk-server-hello")).unwrap();
        assert!(sh.psk_accepted && sh.version() == 0x0304);

        let ch = parse_client_hello(&fixture("openssl-tls12-ticket-client-hello")).unwrap();
        assert!(ch.session_ticket && !ch.psk_offered);

        // TLS 1.2 session-ID resumption: the server echoes the client's session id.
        let body = fixture("openssl-tls12-resumed-client-hello");
        let ch = parse_client_hello(&body).unwrap();
        assert_eq!(ch.session_id_len, 32);
        let sh = parse_server_hello(&fixture("openssl-tls12-resumed-server-hello")).unwrap();
        assert_eq!(sh.session_id, body[35..67]);
        assert_eq!(sh.version(), 0x0303);
    }

    #[test]
    fn real_server_hellos() {
        let sh = parse_server_hello(&fixture("apache-tls12-server-hello")).unwrap();
        assert_eq!((sh.version(), sh.cipher_suite), (0x0303, 0xc02f));
        assert_eq!(sh.alpn.as_deref(), Some("http/1.1"));
        assert!(sh.server_name_ack && sh.extended_master_secret && sh.session_id.len() == 32);
        let sh = parse_server_hello(&fixture("nginx-tls12-h2-server-hello")).unwrap();
        assert_eq!((sh.version(), sh.cipher_suite), (0x0303, 0xc030));
        assert_eq!(sh.alpn.as_deref(), Some("h2"));
        let sh = parse_server_hello(&fixture("nginx-tls13-server-hello")).unwrap();
        assert_eq!((sh.legacy_version, sh.version()), (0x0303, 0x0304));
        assert_eq!(
            (sh.cipher_suite, sh.key_share_group),
            (0x1302, Some(0x001d))
        );
        assert!(
            sh.alpn.is_none(),
            "TLS 1.3 puts ALPN in EncryptedExtensions"
        );
        // RFC 8446 §4.1.3: legacy_session_id_echo repeats the client's (middlebox compat).
        let apache = parse_server_hello(&fixture("apache-tls13-server-hello")).unwrap();
        assert_eq!(apache.cipher_suite, 0x1301);
        assert_eq!(apache.session_id, fixture("chromium-client-hello")[35..67]);
    }

    #[test]
    fn real_encrypted_extensions() {
        let nginx = parse_encrypted_extensions(&fixture("nginx-tls13-encrypted-extensions"));
        let nginx = nginx.unwrap();
        assert_eq!(nginx.alpn.as_deref(), Some("http/1.1"));
        assert!(nginx.server_name_ack);
        let apache = parse_encrypted_extensions(&fixture("apache-tls13-encrypted-extensions"));
        assert_eq!(apache.unwrap().alpn.as_deref(), Some("h2"));
    }

    #[test]
    fn real_certificates() {
        for (name, tls13) in [
            ("apache-tls12-certificate", false),
            ("nginx-tls13-certificate", true),
        ] {
            let c = parse_certificate(&fixture(name), tls13).unwrap().unwrap();
            assert_eq!(c.subject_cn, ["a.example.test"], "{name}");
            assert_eq!(c.san_dns, ["a.example.test"], "{name}");
            assert_eq!(c.subject, "CN=a.example.test,O=misdirect test");
            assert_eq!(c.issuer, "CN=misdirect test CA,O=misdirect test");
            assert_eq!(c.chain_len, 1);
        }
        let c = parse_certificate(&fixture("apache-tls13-certificate"), true);
        let c = c.unwrap().unwrap();
        assert_eq!(c.subject_cn, ["*.example.test"]);
        assert_eq!(c.san_dns, ["*.example.test", "example.test"]);
    }

    #[test]
    fn certificate_layout_must_match_the_version() {
        // The TLS 1.2 body read as TLS 1.3 takes its first byte as the context length.
        let body = fixture("apache-tls12-certificate");
        assert!(parse_certificate(&body, true).is_err());
        let body = fixture("nginx-tls13-certificate");
        assert!(parse_certificate(&body, false).is_err());
    }

    #[test]
    fn certificate_chain_context_and_empty_list() {
        let tls12 = fixture("apache-tls12-certificate");
        let der = tls12[6..].to_vec();
        let single = parse_certificate(&tls12, false).unwrap().unwrap();
        // TLS 1.3 with a request context, a two-entry chain (second entry junk, not decoded),
        // and extensions on the leaf entry.
        let mut list = vec24(&der);
        list.extend(vec16(&[0, 5, 0, 0]));
        list.extend(vec24(&[0x30, 0x00]));
        list.extend(vec16(&[]));
        let mut body = vec8(&[1, 2, 3]);
        body.extend(vec24(&list));
        let chain = CertificateNames {
            chain_len: 2,
            ..single
        };
        assert_eq!(parse_certificate(&body, true), Ok(Some(chain)));
        // Trailing bytes after the list, and after the DER inside cert_data, are tolerated.
        body.push(0);
        let names = parse_certificate(&body, true).unwrap().unwrap();
        assert!(names.trailing_data);
        let mut padded = der.clone();
        padded.extend_from_slice(&[0, 0]);
        let names = parse_certificate(&vec24(&vec24(&padded)), false)
            .unwrap()
            .unwrap();
        assert!(names.trailing_data);
        assert_eq!(names.anomalies(), [Anomaly::TlsHandshakeTrailingData]);
        // Empty lists: no certificate (a client answering CertificateRequest without one).
        assert_eq!(parse_certificate(&[0, 0, 0], false), Ok(None));
        assert_eq!(parse_certificate(&[0, 0, 0, 0], true), Ok(None));
        // Not X.509.
        let err = parse_certificate(&vec24(&vec24(b"not a certificate")), false).unwrap_err();
        assert!(matches!(err, HelloError::BadCertificate(_)));
        assert_eq!(err.anomaly(), Anomaly::TlsCertificateUnparseable);
        let err = parse_certificate(&vec24(&vec24(&[])), false).unwrap_err();
        assert!(matches!(err, HelloError::BadCertificate(_)));
    }

    // ---- synthetic ClientHellos ----

    #[test]
    fn no_sni() {
        let ch = parse_client_hello(&client_hello(&[(16, vec16(&vec8(b"h2")))])).unwrap();
        assert_eq!(ch.sni, Sni::default());
        assert_eq!(ch.alpn, ["h2"]);
        assert_eq!(ch.extensions, [16]);
    }

    #[test]
    fn empty_server_name_list_is_malformed() {
        let ch = parse_client_hello(&client_hello(&[(0, vec16(&[]))])).unwrap();
        assert!(ch.sni.present && ch.sni.malformed && ch.sni.names.is_empty());
        assert!(ch.malformed_extensions.is_empty(), "framing is fine");
        assert_eq!(ch.anomalies(), [Anomaly::TlsSniMalformed]);
        // An empty extension (what servers send) has no list at all.
        let ch = parse_client_hello(&client_hello(&[(0, vec![])])).unwrap();
        assert!(ch.sni.present && ch.sni.malformed);
        assert_eq!(ch.malformed_extensions, [0]);
    }

    #[test]
    fn ip_literal_sni() {
        let ch = sni_of(&[(0, b"127.0.0.1")]);
        assert_eq!(ch.sni.names, ["127.0.0.1"]);
        assert!(ch.sni.ip_literal && !ch.sni.malformed);
        assert_eq!(ch.anomalies(), [Anomaly::TlsSniIpLiteral]);
        for v6 in [&b"::1"[..], b"[2001:db8::1]", b"fe80::1"] {
            let ch = sni_of(&[(0, v6)]);
            assert!(ch.sni.ip_literal && ch.sni.malformed, "{v6:?}");
        }
        assert!(sni_of(&[(0, b"127.0.0.1.")]).sni.ip_literal);
        assert!(!sni_of(&[(0, b"1.2.3.4.example")]).sni.ip_literal);
    }

    #[test]
    fn two_host_names_are_kept_in_order() {
        let ch = sni_of(&[(0, b"a.example.test"), (0, b"B.Example.Test")]);
        assert_eq!(ch.sni.names, ["a.example.test", "B.Example.Test"]);
        assert!(!ch.sni.malformed);
        assert_eq!(ch.anomalies(), [Anomaly::TlsSniMultipleNames]);
    }

    #[test]
    fn sni_name_checks() {
        assert!(sni_of(&[(1, b"opaque")]).sni.malformed);
        let mixed = sni_of(&[(1, b"opaque"), (0, b"a.test")]);
        assert!(mixed.sni.malformed);
        assert_eq!(mixed.sni.names, ["a.test"]);
        for bad in [
            &b""[..],
            b"a..test",
            b".a.test",
            b"a test",
            b"a.test\0",
            b"*.a.test",
            b"\xff",
        ] {
            assert!(sni_of(&[(0, bad)]).sni.malformed, "{bad:?}");
        }
        for good in [&b"a.test."[..], b"_acme.a-b.test", b"localhost", b"A.TEST"] {
            assert!(!sni_of(&[(0, good)]).sni.malformed, "{good:?}");
        }
        // Lossy UTF-8, as sent.
        assert_eq!(sni_of(&[(0, b"caf\xc3\xa9.test")]).sni.names, ["café.test"]);
        assert_eq!(sni_of(&[(0, b"x\xff")]).sni.names, ["x\u{fffd}"]);
    }

    #[test]
    fn lying_sni_lengths_keep_what_parsed() {
        // List length claims more than the extension holds.
        let ch = parse_client_hello(&client_hello(&[(0, vec![0xff, 0xff, 0, 0, 1, b'a'])]));
        let ch = ch.unwrap();
        assert!(ch.sni.present && ch.sni.malformed && ch.sni.names.is_empty());
        assert_eq!(ch.malformed_extensions, [0]);
        // Second name's length lies: the first is kept.
        let mut list = vec![0];
        list.extend(vec16(b"a.test"));
        list.extend_from_slice(&[0, 0x10, 0, b'b']);
        let ch = parse_client_hello(&client_hello(&[(0, vec16(&list))])).unwrap();
        assert_eq!(ch.sni.names, ["a.test"]);
        assert!(ch.sni.malformed);
    }

    #[test]
    fn sni_name_count_is_capped() {
        let names: Vec<(u8, &[u8])> = (0..1000).map(|_| (0, &b"a.test"[..])).collect();
        let ch = sni_of(&names);
        assert_eq!(ch.sni.names.len(), MAX_SNI_NAMES);
        assert!(ch.lists_capped);
        assert!(ch.anomalies().contains(&Anomaly::TlsHandshakeListCapped));
    }

    #[test]
    fn ech_outer_and_inner() {
        let mut outer = vec![0, 0, 1, 0, 3, 0x42];
        outer.extend(vec16(&[5; 32]));
        outer.extend(vec16(&[6; 100]));
        let ch = parse_client_hello(&client_hello(&[(0xfe0d, outer)])).unwrap();
        let expected = EchOffer {
            outer: true,
            kdf_id: Some(1),
            aead_id: Some(3),
            config_id: Some(0x42),
            enc_len: 32,
            payload_len: 100,
        };
        assert_eq!(ch.ech, Some(expected));
        assert_eq!(ch.extensions, [0xfe0d]);

        let ch = parse_client_hello(&client_hello(&[(0xfe0d, vec![1])])).unwrap();
        let inner = ch.ech.unwrap();
        assert!(!inner.outer && inner.kdf_id.is_none() && inner.payload_len == 0);

        // Unknown type, trailing byte after inner, empty payload, truncated outer.
        let mut empty_payload = vec![0, 0, 1, 0, 1, 0];
        empty_payload.extend(vec16(&[]));
        empty_payload.extend(vec16(&[]));
        for bad in [vec![2], vec![1, 0], empty_payload, vec![0, 0, 1, 0]] {
            let ch = parse_client_hello(&client_hello(&[(0xfe0d, bad.clone())])).unwrap();
            assert_eq!(ch.ech, None, "{bad:?}");
            assert_eq!(ch.malformed_extensions, [0xfe0d]);
            assert_eq!(ch.anomalies(), [Anomaly::TlsExtensionMalformed]);
        }
    }

    #[test]
    fn hello_retry_request() {
        let body = server_hello(
            HELLO_RETRY_REQUEST_RANDOM,
            &[(43, vec![3, 4]), (51, vec![0x11, 0xec])],
        );
        let sh = parse_server_hello(&body).unwrap();
        assert!(sh.hello_retry_request);
        assert_eq!(sh.version(), 0x0304);
        assert_eq!(sh.key_share_group, Some(0x11ec));
        assert!(sh.malformed_extensions.is_empty());
        // The same key_share in a plain ServerHello lacks its key_exchange.
        let sh = parse_server_hello(&server_hello([0; 32], &[(51, vec![0x11, 0xec])])).unwrap();
        assert!(!sh.hello_retry_request);
        assert_eq!(sh.malformed_extensions, [51]);
        assert_eq!(sh.key_share_group, None);
    }

    #[test]
    fn server_hello_psk_ticket_and_bad_alpn() {
        let body = server_hello(
            [0; 32],
            &[
                (41, vec![0, 0]),
                (35, vec![]),
                (16, vec16(&[vec8(b"h2"), vec8(b"http/1.1")].concat())),
            ],
        );
        let sh = parse_server_hello(&body).unwrap();
        assert!(sh.psk_accepted && sh.session_ticket);
        assert_eq!(sh.alpn, None, "a server selects exactly one protocol");
        assert_eq!(sh.malformed_extensions, [16]);
    }

    #[test]
    fn resumption_and_flag_extensions() {
        let ch = parse_client_hello(&client_hello(&[
            (35, vec![1, 2, 3]),
            (41, vec![0; 10]),
            (22, vec![]),
            (23, vec![1]),
        ]))
        .unwrap();
        assert!(ch.session_ticket && ch.psk_offered && ch.encrypt_then_mac);
        assert!(ch.extended_master_secret);
        assert_eq!(
            ch.malformed_extensions,
            [23],
            "extended_master_secret must be empty"
        );
        let ch = parse_client_hello(&client_hello(&[(35, vec![])])).unwrap();
        assert!(!ch.session_ticket, "an empty ticket only asks for one");
    }

    #[test]
    fn grease_everywhere_is_dropped() {
        for hi in 0..16u16 {
            assert!(is_grease(hi << 12 | 0x0a00 | hi << 4 | 0x0a));
        }
        for v in [0x0a0b, 0x1a2a, 0x0000, 0x0303, 0xfe0d, 0xabab, 0x0a1a] {
            assert!(!is_grease(v), "{v:#x}");
        }
        let alpn = [vec8(&[0x2a, 0x2a]), vec8(b"h2")].concat();
        let ch = parse_client_hello(&client_hello(&[
            (0x0a0a, vec![]),
            (43, vec8(&u16s(&[0x7a7a, 0x0304]))),
            (10, vec16(&u16s(&[0x8a8a, 0x001d]))),
            (16, vec16(&alpn)),
        ]))
        .unwrap();
        assert!(ch.grease);
        assert_eq!(ch.extensions, [43, 10, 16]);
        assert_eq!(ch.supported_versions, [0x0304]);
        assert_eq!(ch.supported_groups, [0x001d]);
        assert_eq!(ch.alpn, ["h2"]);
    }

    #[test]
    fn duplicate_extensions_first_wins() {
        let ch = parse_client_hello(&client_hello(&[
            (0, sni_data(&[(0, b"a.test")])),
            (0, sni_data(&[(0, b"b.test")])),
            (0, sni_data(&[(0, b"c.test")])),
        ]))
        .unwrap();
        assert_eq!(ch.sni.names, ["a.test"]);
        assert_eq!(ch.extensions, [0, 0, 0]);
        assert_eq!(ch.duplicate_extensions, [0]);
        assert_eq!(ch.anomalies(), [Anomaly::TlsExtensionDuplicate]);
    }

    #[test]
    fn thousands_of_extensions_are_bounded() {
        // 16,382 distinct unknown extensions fill a 64 KiB block; the SNI comes last.
        let mut exts: Vec<(u16, Vec<u8>)> = (0x1000..0xf000u16)
            .filter(|&t| !is_grease(t))
            .take(16_300)
            .map(|t| (t, vec![]))
            .collect();
        exts.push((0, sni_data(&[(0, b"late.test")])));
        let body = client_hello(&exts);
        assert!(body.len() > 65_000);
        let ch = parse_client_hello(&body).unwrap();
        assert_eq!(ch.extensions.len(), MAX_EXTENSIONS);
        assert!(ch.lists_capped);
        assert_eq!(ch.sni.names, ["late.test"]);
        assert!(ch.duplicate_extensions.is_empty());
        // The same type 16,000 times: one duplicate entry.
        let exts: Vec<(u16, Vec<u8>)> = (0..16_000).map(|_| (0x1234, vec![])).collect();
        let ch = parse_client_hello(&client_hello(&exts)).unwrap();
        assert_eq!(ch.duplicate_extensions, [0x1234]);
        assert_eq!(ch.extensions.len(), MAX_EXTENSIONS);
        // 16,000 distinct types, each a duplicate: the duplicate list is capped too.
        let mut exts: Vec<(u16, Vec<u8>)> = Vec::new();
        for t in (0x1000..0x5000u16).filter(|&t| !is_grease(t)).take(8_000) {
            exts.push((t, vec![]));
            exts.push((t, vec![]));
        }
        let ch = parse_client_hello(&client_hello(&exts)).unwrap();
        assert_eq!(ch.duplicate_extensions.len(), MAX_EXTENSIONS);
    }

    #[test]
    fn long_lists_are_capped() {
        let suites: Vec<u16> = (1..=30_000).collect();
        let mut b = vec![3, 3];
        b.extend_from_slice(&[0; 32]);
        b.push(0);
        b.extend(vec16(&u16s(&suites)));
        b.extend(vec8(&[0]));
        let groups: Vec<u16> = (1..=1000).collect();
        let alpn: Vec<u8> = (0..1000).flat_map(|_| vec8(b"h2")).collect();
        b.extend(ext_block(&[
            (10, vec16(&u16s(&groups))),
            (16, vec16(&alpn)),
        ]));
        let ch = parse_client_hello(&b).unwrap();
        assert_eq!(ch.cipher_suites.len(), MAX_CODE_POINTS);
        assert_eq!(ch.supported_groups.len(), MAX_CODE_POINTS);
        assert_eq!(ch.alpn.len(), MAX_ALPN);
        assert!(ch.lists_capped);
    }

    #[test]
    fn lying_header_lengths_fail_hard() {
        let good = client_hello(&[(0, sni_data(&[(0, b"a.test")]))]);
        let field = |b: &[u8]| match parse_client_hello(b) {
            Err(HelloError::Truncated { field, message }) => {
                assert_eq!(message, MessageKind::ClientHello);
                field
            }
            other => panic!("{other:?}"),
        };
        let mut b = good.clone();
        b[34] = 255; // session id length
        assert_eq!(field(&b), "legacy_session_id");
        let mut b = good.clone();
        b[67] = 0xff; // cipher_suites length high byte
        assert_eq!(field(&b), "cipher_suites");
        let mut b = good.clone();
        let ext_len_at = 2 + 32 + 33 + 2 + 4 + 2;
        b[ext_len_at] = 0xff; // extensions block length
        assert_eq!(field(&b), "extensions");
        let mut b = good.clone();
        b[ext_len_at + 4] = 0xff; // the one extension's length
        assert_eq!(field(&b), "extension data");
        // A 1-byte stub after the last extension cannot be an extension header.
        let mut b = good[..ext_len_at].to_vec();
        let mut block = good[ext_len_at + 2..].to_vec();
        block.push(0);
        b.extend(vec16(&block));
        assert_eq!(field(&b), "extension type");
        // Odd cipher_suites length.
        let mut b = vec![3, 3];
        b.extend_from_slice(&[0; 32]);
        b.push(0);
        b.extend(vec16(&[0x13, 0x01, 0x00]));
        b.extend(vec8(&[0]));
        let err = parse_client_hello(&b).unwrap_err();
        assert!(matches!(
            err,
            HelloError::Invalid {
                field: "cipher_suites",
                ..
            }
        ));
        assert_eq!(err.anomaly(), Anomaly::TlsClientHelloMalformed);
        assert!(err.to_string().contains("cipher_suites"));
    }

    #[test]
    fn lying_lengths_inside_extensions_are_lenient() {
        let ch = parse_client_hello(&client_hello(&[
            (16, vec![0, 9, 2, b'h', b'2']),          // list longer than data
            (43, vec![9, 3, 4]),                      // versions list lies
            (10, vec![0, 3, 0, 0x1d, 0]),             // odd group list
            (51, vec![0, 6, 0, 0x1d, 0xff, 0xff, 0]), // key_exchange lies
            (0, sni_data(&[(0, b"ok.test")])),
        ]))
        .unwrap();
        assert_eq!(ch.malformed_extensions, [16, 43, 10, 51]);
        assert!(ch.alpn.is_empty() && ch.supported_versions.is_empty());
        assert!(ch.supported_groups.is_empty() && ch.key_share_groups.is_empty());
        assert_eq!(ch.sni.names, ["ok.test"]);
    }

    #[test]
    fn trailing_data_and_absent_extensions() {
        let mut b = client_hello(&[(0, sni_data(&[(0, b"a.test")]))]);
        b.extend_from_slice(&[1, 2, 3]);
        let ch = parse_client_hello(&b).unwrap();
        assert!(ch.trailing_data);
        assert_eq!(ch.sni.names, ["a.test"]);
        assert_eq!(ch.anomalies(), [Anomaly::TlsHandshakeTrailingData]);
        // RFC 5246 §7.4.1.2: a ClientHello may end after compression_methods.
        let mut b = vec![3, 1];
        b.extend_from_slice(&[0; 32]);
        b.push(0);
        b.extend(vec16(&u16s(&[0x002f])));
        b.extend(vec8(&[0]));
        let ch = parse_client_hello(&b).unwrap();
        assert_eq!(
            (ch.legacy_version, ch.cipher_suites.as_slice()),
            (0x0301, &[0x2f][..])
        );
        assert!(ch.extensions.is_empty() && !ch.sni.present && !ch.trailing_data);
        // ...and a ServerHello after compression_method.
        let sh = parse_server_hello(&server_hello([0; 32], &[])[..70]).unwrap();
        assert!(sh.extensions.is_empty() && !sh.trailing_data);
        // EncryptedExtensions has no optional block.
        let err = parse_encrypted_extensions(&[]).unwrap_err();
        assert_eq!(err.anomaly(), Anomaly::TlsEncryptedExtensionsMalformed);
        assert_eq!(
            parse_encrypted_extensions(&[0, 0]),
            Ok(EncryptedExtensions::default())
        );
        let ee = parse_encrypted_extensions(&[0, 0, 0]).unwrap();
        assert!(ee.trailing_data);
    }

    /// Every prefix of every real message either parses or fails: never a panic.
    #[test]
    fn truncation_at_every_offset() {
        let ch = fixture("chromium-client-hello");
        // Up to the end of compression_methods the fixed header is cut: always an error.
        let suites_at = 35 + usize::from(ch[34]);
        let suites_len = usize::from(u16::from_be_bytes([ch[suites_at], ch[suites_at + 1]]));
        let methods_at = suites_at + 2 + suites_len;
        let header_end = methods_at + 1 + usize::from(ch[methods_at]);
        for n in 0..ch.len() {
            let r = parse_client_hello(&ch[..n]);
            if n < header_end {
                assert!(r.is_err(), "{n}");
            }
            if n > header_end {
                // Inside the extensions block, whose length no longer fits.
                assert!(
                    matches!(
                        r,
                        Err(HelloError::Truncated {
                            field: "extensions",
                            ..
                        })
                    ),
                    "{n}"
                );
            }
        }
        for (name, body) in [
            ("curl12", fixture("curl-tls12-client-hello")),
            ("curl13", fixture("curl-tls13-client-hello")),
        ] {
            for n in 0..body.len() {
                let _ = parse_client_hello(&body[..n]);
            }
            assert!(parse_client_hello(&body).is_ok(), "{name}");
        }
        for body in [
            fixture("apache-tls12-server-hello"),
            fixture("nginx-tls12-h2-server-hello"),
            fixture("nginx-tls13-server-hello"),
            fixture("apache-tls13-server-hello"),
        ] {
            for n in 0..body.len() {
                let _ = parse_server_hello(&body[..n]);
            }
        }
        for body in [
            fixture("nginx-tls13-encrypted-extensions"),
            fixture("apache-tls13-encrypted-extensions"),
        ] {
            for n in 0..body.len() {
                assert!(parse_encrypted_extensions(&body[..n]).is_err(), "{n}");
            }
        }
        for (body, tls13) in [
            (fixture("apache-tls12-certificate"), false),
            (fixture("nginx-tls13-certificate"), true),
        ] {
            for n in 0..body.len() {
                assert!(parse_certificate(&body[..n], tls13).is_err(), "{n}");
            }
            // The certificate itself cut short inside a well-framed message.
            let at = if tls13 { 4 } else { 3 };
            let len = u32::from_be_bytes([0, body[at], body[at + 1], body[at + 2]]) as usize;
            let der = &body[at + 3..][..len];
            for n in 0..der.len() {
                let r = parse_certificate(&vec24(&vec24(&der[..n])), false);
                assert!(matches!(r, Err(HelloError::BadCertificate(_))), "{n}");
            }
        }
    }

    /// Single-byte corruptions of real messages: any result but a panic.
    #[test]
    fn byte_flips_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let bodies = [
            fixture("chromium-client-hello"),
            fixture("curl-tls13-client-hello"),
            fixture("apache-tls12-server-hello"),
            fixture("nginx-tls13-encrypted-extensions"),
            fixture("apache-tls12-certificate"),
            fixture("apache-tls13-certificate"),
        ];
        for body in &bodies {
            for _ in 0..400 {
                let mut b = body.clone();
                for _ in 0..1 + next() % 3 {
                    let i = (next() % b.len() as u64) as usize;
                    b[i] = next() as u8;
                }
                let _ = parse_client_hello(&b);
                let _ = parse_server_hello(&b);
                let _ = parse_encrypted_extensions(&b);
                let _ = parse_certificate(&b, false);
                let _ = parse_certificate(&b, true);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse_client_hello(&b);
            let _ = parse_server_hello(&b);
            let _ = parse_encrypted_extensions(&b);
            let _ = parse_certificate(&b, false);
            let _ = parse_certificate(&b, true);
        }
    }

    #[test]
    fn each_error_is_its_own_anomaly() {
        let errors = [
            truncated(MessageKind::ClientHello, "x"),
            truncated(MessageKind::ServerHello, "x"),
            truncated(MessageKind::EncryptedExtensions, "x"),
            HelloError::Invalid {
                message: MessageKind::Certificate,
                field: "x",
                reason: "y",
            },
            HelloError::BadCertificate("x".into()),
        ];
        let kinds: std::collections::HashSet<Anomaly> =
            errors.iter().map(HelloError::anomaly).collect();
        assert_eq!(kinds.len(), errors.len());
        assert_eq!(errors[4].message(), MessageKind::Certificate);
    }

    #[test]
    fn handshake_type_names() {
        assert_eq!(
            handshake_type::name(handshake_type::CLIENT_HELLO),
            Some("client_hello")
        );
        assert_eq!(handshake_type::name(254), Some("message_hash"));
        assert_eq!(handshake_type::name(99), None);
    }

    #[test]
    fn serializes_without_random() {
        let ch = parse_client_hello(&fixture("curl-tls12-client-hello")).unwrap();
        let json = serde_json::to_value(&ch).unwrap();
        assert!(json.get("random").is_none());
        assert_eq!(json["sni"]["names"][0], "a.example.test");
        let sh = parse_server_hello(&fixture("apache-tls12-server-hello")).unwrap();
        assert!(serde_json::to_value(&sh).unwrap().get("random").is_none());
    }

    #[test]
    fn date_and_name_formatting() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_465_762), "2026-11-23T20:29:22Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(-62_135_596_800), "0001-01-01T00:00:00Z");
        assert_eq!(escape_rfc4514("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rfc4514(" #x "), "\\ #x\\ ");
        assert_eq!(escape_rfc4514("#x"), "\\#x");
        assert_eq!(escape_rfc4514("\"<>;\\\0"), "\\\"\\<\\>\\;\\\\\\00");
        assert_eq!(ip_string(&[127, 0, 0, 1]), "127.0.0.1");
        assert_eq!(ip_string(&[0; 16]), "::");
        assert_eq!(ip_string(&[10, 0, 0, 0, 255, 0, 0, 0]), "0a000000ff000000");
    }
}
