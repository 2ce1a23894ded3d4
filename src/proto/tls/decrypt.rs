//! Record protection, receive side only: one [`RecordDecrypter`] per direction and key epoch
//! turns protected record fragments into plaintext.
//!
//! TLS 1.3 (RFC 8446 §5.2-5.4): AEAD with `nonce = iv XOR seq`, the record header as
//! additional data, and the real content type at the end of the inner plaintext behind
//! optional zero padding. TLS 1.2: AES-GCM with a 4-byte implicit salt and an 8-byte
//! explicit nonce (RFC 5288), ChaCha20-Poly1305 with the TLS 1.3-style nonce (RFC 7905), and
//! AES-CBC with an explicit IV and HMAC, MAC-then-encrypt (RFC 5246 §6.2.3.2) or
//! encrypt-then-MAC (RFC 7366).
//!
//! The caller hands in the header fields and the fragment of one complete record; the
//! plaintext is appended to its buffer (one copy, then decrypted in place), and the
//! sequence number advances only when a record authenticates, so a failed record can be
//! reported and the stream abandoned without corrupting state. Nothing here panics on input;
//! every failure is a [`DecryptError`] with a stable [`reason`](DecryptError::reason). Key
//! material is never printed.

use super::keylog::Secret;
use super::keys::{BulkCipher, MacAlg, Suite, TrafficKeys};
use super::opening::{self, Opening};
use aes::cipher::{BlockModeDecrypt, InnerIvInit, KeyInit};
use ccm::aead::AeadInOut;
use ccm::consts::{U12, U16, U8};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};
use ring::hmac;
use std::fmt;
use zeroize::Zeroizing;

/// AEAD tag length of AES-GCM, ChaCha20-Poly1305 and AES-CCM (AES-CCM-8 has 8).
const TAG_LEN: usize = 16;
/// TLS 1.2 GCM explicit nonce (RFC 5288 §3).
const GCM_EXPLICIT_NONCE_LEN: usize = 8;
/// TLS 1.2 GCM implicit salt from the key block (RFC 5288 §3).
const GCM_SALT_LEN: usize = 4;
/// AES block, also the explicit CBC IV length (RFC 5246 §6.2.3.2).
const AES_BLOCK: usize = 16;
/// TLSCiphertext.length limit in TLS 1.2 (RFC 5246 §6.2.3).
const TLS12_MAX_CIPHERTEXT: usize = (1 << 14) + 2048;
/// TLSCiphertext.length limit in TLS 1.3 (RFC 8446 §5.2).
const TLS13_MAX_CIPHERTEXT: usize = (1 << 14) + 256;

/// Which record layer protects the records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordProtocol {
    /// TLS 1.2; `encrypt_then_mac` when both hellos carried the RFC 7366 extension (it only
    /// changes CBC suites).
    Tls12 {
        encrypt_then_mac: bool,
    },
    Tls13,
}

/// Why a record did not decrypt.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DecryptError {
    #[error("record too short for its protection")]
    TooShort,
    #[error("record longer than the protocol allows")]
    RecordOverflow,
    #[error("AEAD authentication failed")]
    AuthenticationFailed,
    #[error("CBC ciphertext is not a whole number of blocks")]
    NotBlockAligned,
    #[error("bad CBC padding")]
    BadPadding,
    #[error("bad record MAC")]
    BadMac,
    #[error("TLS 1.3 inner plaintext is all zeros: no content type")]
    NoContentType,
    #[error("key material does not fit the cipher suite")]
    BadKeyMaterial,
    #[error("cipher suite cannot be used with this record protocol")]
    Unsupported,
}

impl DecryptError {
    /// A stable snake_case name for reports.
    pub fn reason(&self) -> &'static str {
        match self {
            DecryptError::TooShort => "too_short",
            DecryptError::RecordOverflow => "record_overflow",
            DecryptError::AuthenticationFailed => "authentication_failed",
            DecryptError::NotBlockAligned => "not_block_aligned",
            DecryptError::BadPadding => "bad_padding",
            DecryptError::BadMac => "bad_mac",
            DecryptError::NoContentType => "no_content_type",
            DecryptError::BadKeyMaterial => "bad_key_material",
            DecryptError::Unsupported => "unsupported",
        }
    }
}

/// The AES key schedule of a CBC suite.
#[derive(Clone)]
enum Aes {
    Aes128(aes::Aes128),
    Aes256(aes::Aes256),
}

/// Keys in the form each construction consumes, built once per key epoch. AEAD keys are
/// kept as bytes and keyed for each record: `ring`'s keyed AES-GCM is 544 bytes (its round
/// keys and GHASH table), two per decrypted connection, while keying it takes a fraction of
/// a 16 KiB record's decryption.
enum State {
    /// TLS 1.3, and TLS 1.2 ChaCha20-Poly1305: the full 12-byte IV is XORed with the
    /// sequence number (RFC 8446 §5.3, RFC 7905 §2).
    AeadXorIv {
        raw: RawKey,
        iv: Zeroizing<[u8; NONCE_LEN]>,
    },
    /// TLS 1.2 AES-GCM: salt from the key block, explicit nonce from the record.
    Gcm12 {
        raw: RawKey,
        salt: Zeroizing<[u8; GCM_SALT_LEN]>,
    },
    /// Boxed: its AES key schedule and HMAC key are several hundred bytes, and CBC suites
    /// are rare.
    Cbc(Box<CbcKeys>),
    /// TLS 1.3 AES-CCM (`ring` has no CCM; RustCrypto's `ccm` over `aes`).
    Ccm13 {
        ccm: Ccm,
        iv: Zeroizing<[u8; NONCE_LEN]>,
    },
    /// The keys could not be used; every record fails with this error.
    Invalid(DecryptError),
}

struct CbcKeys {
    aes: Aes,
    mac: hmac::Key,
    mac_len: usize,
}

/// An AEAD key as bytes. Only the first `key_len` bytes of the suite are used.
type RawKey = Zeroizing<[u8; 32]>;

/// Decrypts the records of one direction of one connection.
pub struct RecordDecrypter {
    suite: Suite,
    protocol: RecordProtocol,
    state: State,
    seq: u64,
}

impl fmt::Debug for RecordDecrypter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::AeadXorIv { .. } | State::Gcm12 { .. } | State::Cbc(_) | State::Ccm13 { .. } => {
                "keyed"
            }
            State::Invalid(e) => e.reason(),
        };
        f.debug_struct("RecordDecrypter")
            .field("suite", &self.suite.name())
            .field("protocol", &self.protocol)
            .field("state", &state)
            .field("seq", &self.seq)
            .finish()
    }
}

impl RecordDecrypter {
    /// A decrypter at sequence number 0. Keys that do not fit the suite, or a suite that
    /// does not belong to `protocol`, give a decrypter whose every record fails with
    /// [`DecryptError::BadKeyMaterial`] or [`DecryptError::Unsupported`].
    pub fn new(suite: Suite, keys: TrafficKeys, protocol: RecordProtocol) -> Self {
        RecordDecrypter {
            state: build_state(&suite, &keys, protocol),
            suite,
            protocol,
            seq: 0,
        }
    }

    /// New keys for the same suite and protocol (TLS 1.3: handshake to application keys,
    /// KeyUpdate), and the sequence number back to 0: RFC 8446 §5.3 resets it whenever the
    /// key changes (§4.6.3 for KeyUpdate).
    pub fn rekey(&mut self, keys: TrafficKeys) {
        self.state = build_state(&self.suite, &keys, self.protocol);
        self.seq = 0;
    }

    /// The sequence number of the next record.
    pub fn sequence(&self) -> u64 {
        self.seq
    }

    pub fn suite(&self) -> &Suite {
        &self.suite
    }

    pub fn protocol(&self) -> RecordProtocol {
        self.protocol
    }

    /// Decrypts one record given its header fields and its fragment (the ciphertext).
    /// Appends the plaintext to `out` and returns the real content type: for TLS 1.3 the
    /// inner type found behind the zero padding (RFC 8446 §5.2, §5.4), for TLS 1.2
    /// `content_type`. On error `out` is left as it was and the sequence number does not
    /// move; on success it advances by one.
    pub fn decrypt(
        &mut self,
        content_type: u8,
        version: u16,
        fragment: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<u8, DecryptError> {
        let start = out.len();
        let result = match &self.state {
            State::Invalid(e) => Err(e.clone()),
            State::AeadXorIv { raw, iv } => {
                ring_key(&self.suite, raw).and_then(|key| match self.protocol {
                    RecordProtocol::Tls13 => {
                        open_tls13(&key, iv, self.seq, content_type, version, fragment, out)
                    }
                    RecordProtocol::Tls12 { .. } => {
                        let nonce = xor_nonce(iv, self.seq);
                        open_tls12_aead(&key, nonce, self.seq, content_type, version, fragment, out)
                            .map(|()| content_type)
                    }
                })
            }
            State::Ccm13 { ccm, iv } => {
                open_tls13_ccm(ccm, iv, self.seq, content_type, version, fragment, out)
            }
            State::Gcm12 { raw, salt } => ring_key(&self.suite, raw).and_then(|key| {
                open_tls12_gcm(&key, salt, self.seq, content_type, version, fragment, out)
                    .map(|()| content_type)
            }),
            State::Cbc(keys) => {
                let CbcKeys { aes, mac, mac_len } = &**keys;
                let etm = matches!(
                    self.protocol,
                    RecordProtocol::Tls12 {
                        encrypt_then_mac: true
                    }
                );
                let cbc = Cbc {
                    aes,
                    mac,
                    mac_len: *mac_len,
                    seq: self.seq,
                    content_type,
                    version,
                };
                if etm {
                    cbc.open_etm(fragment, out)
                } else {
                    cbc.open_mte(fragment, out)
                }
                .map(|()| content_type)
            }
        };
        match result {
            Ok(t) => {
                // 2^64 records cannot happen before the heat death of the capture.
                self.seq = self.seq.wrapping_add(1);
                Ok(t)
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }
}

impl RecordDecrypter {
    /// Whether records of this suite can be opened piece by piece ([`Opening`]): AES-GCM
    /// and ChaCha20-Poly1305.
    pub fn can_stream(&self) -> bool {
        matches!(self.state, State::AeadXorIv { .. } | State::Gcm12 { .. })
    }

    /// Begins opening the next record, of `length` fragment bytes, piece by piece. The
    /// sequence number moves only when [`RecordDecrypter::finish_stream`] authenticates it.
    pub fn open_stream(
        &self,
        content_type: u8,
        version: u16,
        length: usize,
    ) -> Result<Opening, DecryptError> {
        let cipher = self.suite.cipher;
        let key_len = cipher.key_len();
        match (&self.state, self.protocol) {
            (State::AeadXorIv { raw, iv, .. }, RecordProtocol::Tls13) => {
                if length > TLS13_MAX_CIPHERTEXT {
                    return Err(DecryptError::RecordOverflow);
                }
                let aad = tls13_aad(content_type, version, length)?;
                let nonce = opening::Nonce::Full(xor_iv(iv, self.seq));
                let key = raw.get(..key_len).unwrap_or_default();
                Opening::new(cipher, key, nonce, &aad, content_type, length, true)
            }
            (State::AeadXorIv { raw, iv, .. }, RecordProtocol::Tls12 { .. }) => {
                let plain = length.checked_sub(TAG_LEN).ok_or(DecryptError::TooShort)?;
                self.open_stream12(
                    raw,
                    opening::Nonce::Full(xor_iv(iv, self.seq)),
                    content_type,
                    version,
                    length,
                    plain,
                )
            }
            (State::Gcm12 { raw, salt, .. }, _) => {
                let plain = length
                    .checked_sub(GCM_EXPLICIT_NONCE_LEN + TAG_LEN)
                    .ok_or(DecryptError::TooShort)?;
                self.open_stream12(
                    raw,
                    opening::Nonce::Salt(**salt),
                    content_type,
                    version,
                    length,
                    plain,
                )
            }
            (State::Invalid(e), _) => Err(e.clone()),
            _ => Err(DecryptError::Unsupported),
        }
    }

    fn open_stream12(
        &self,
        raw: &RawKey,
        nonce: opening::Nonce,
        content_type: u8,
        version: u16,
        length: usize,
        plain_len: usize,
    ) -> Result<Opening, DecryptError> {
        if length > TLS12_MAX_CIPHERTEXT {
            return Err(DecryptError::RecordOverflow);
        }
        let aad = tls12_aad(self.seq, content_type, version, plain_len);
        let key = raw.get(..self.suite.cipher.key_len()).unwrap_or_default();
        Opening::new(
            self.suite.cipher,
            key,
            nonce,
            &aad,
            content_type,
            length,
            false,
        )
    }

    /// Ends a record begun with [`RecordDecrypter::open_stream`] once all of it has come:
    /// its content type if it authenticates (and the sequence number moves on), the error
    /// otherwise.
    pub fn finish_stream(&mut self, opening: Opening) -> Result<u8, DecryptError> {
        let t = opening.finish()?;
        self.seq = self.seq.wrapping_add(1);
        Ok(t)
    }
}

fn build_state(suite: &Suite, keys: &TrafficKeys, protocol: RecordProtocol) -> State {
    let tls13 = matches!(protocol, RecordProtocol::Tls13);
    if suite.tls13 != tls13 {
        return State::Invalid(DecryptError::Unsupported);
    }
    build_keyed(suite, keys, tls13).unwrap_or_else(State::Invalid)
}

fn build_keyed(suite: &Suite, keys: &TrafficKeys, tls13: bool) -> Result<State, DecryptError> {
    let key = keys.key.bytes();
    if key.len() != suite.cipher.key_len() {
        return Err(DecryptError::BadKeyMaterial);
    }
    let raw = || {
        let mut raw = RawKey::default();
        raw.get_mut(..key.len())
            .ok_or(DecryptError::BadKeyMaterial)?
            .copy_from_slice(key);
        Ok::<_, DecryptError>(raw)
    };
    let full_iv = |iv: &Secret| {
        <[u8; NONCE_LEN]>::try_from(iv.bytes())
            .map(Zeroizing::new)
            .map_err(|_| DecryptError::BadKeyMaterial)
    };
    Ok(match suite.cipher {
        BulkCipher::ChaCha20Poly1305 => State::AeadXorIv {
            raw: raw()?,
            iv: full_iv(&keys.iv)?,
        },
        BulkCipher::Aes128Gcm | BulkCipher::Aes256Gcm => {
            if tls13 {
                State::AeadXorIv {
                    raw: raw()?,
                    iv: full_iv(&keys.iv)?,
                }
            } else {
                State::Gcm12 {
                    raw: raw()?,
                    salt: <[u8; GCM_SALT_LEN]>::try_from(keys.iv.bytes())
                        .map(Zeroizing::new)
                        .map_err(|_| DecryptError::BadKeyMaterial)?,
                }
            }
        }
        BulkCipher::Aes128Ccm | BulkCipher::Aes128Ccm8 => {
            if !tls13 {
                return Err(DecryptError::Unsupported);
            }
            let aes = aes::Aes128::new_from_slice(key).map_err(|_| DecryptError::BadKeyMaterial)?;
            State::Ccm13 {
                ccm: if suite.cipher == BulkCipher::Aes128Ccm {
                    Ccm::Tag16(Box::new(aes.into()))
                } else {
                    Ccm::Tag8(Box::new(aes.into()))
                },
                iv: full_iv(&keys.iv)?,
            }
        }
        BulkCipher::Aes128Cbc | BulkCipher::Aes256Cbc => {
            let (Some(mac_alg), Some(mac_key)) = (suite.mac, keys.mac_key.as_ref()) else {
                return Err(DecryptError::BadKeyMaterial);
            };
            if mac_key.len() != mac_alg.output_len() {
                return Err(DecryptError::BadKeyMaterial);
            }
            let aes = if suite.cipher == BulkCipher::Aes128Cbc {
                aes::Aes128::new_from_slice(key).map(Aes::Aes128)
            } else {
                aes::Aes256::new_from_slice(key).map(Aes::Aes256)
            }
            .map_err(|_| DecryptError::BadKeyMaterial)?;
            State::Cbc(Box::new(CbcKeys {
                aes,
                mac: hmac::Key::new(MacAlg::hmac(mac_alg), mac_key.bytes()),
                mac_len: mac_alg.output_len(),
            }))
        }
    })
}

/// `ring`'s key for an AEAD suite, from its bytes.
fn ring_key(suite: &Suite, raw: &RawKey) -> Result<LessSafeKey, DecryptError> {
    let alg = match suite.cipher {
        BulkCipher::Aes128Gcm => &aead::AES_128_GCM,
        BulkCipher::Aes256Gcm => &aead::AES_256_GCM,
        BulkCipher::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        _ => return Err(DecryptError::Unsupported),
    };
    let key = raw.get(..suite.cipher.key_len()).unwrap_or_default();
    UnboundKey::new(alg, key)
        .map(LessSafeKey::new)
        .map_err(|_| DecryptError::BadKeyMaterial)
}

/// `iv XOR seq`, the sequence number as a 64-bit big-endian integer left-padded with zeros
/// to the IV length (RFC 8446 §5.3, RFC 7905 §2).
fn xor_nonce(iv: &[u8; NONCE_LEN], seq: u64) -> Nonce {
    Nonce::assume_unique_for_key(xor_iv(iv, seq))
}

fn xor_iv(iv: &[u8; NONCE_LEN], seq: u64) -> [u8; NONCE_LEN] {
    let mut nonce = *iv;
    for (n, s) in nonce.iter_mut().rev().zip(seq.to_le_bytes()) {
        *n ^= s;
    }
    nonce
}

/// AES-128-CCM keyed for TLS 1.3's 12-byte nonce, with its tag length.
enum Ccm {
    Tag16(Box<ccm::Ccm<aes::Aes128, U16, U12>>),
    Tag8(Box<ccm::Ccm<aes::Aes128, U8, U12>>),
}

/// TLS 1.3 with AES-CCM: the same nonce, additional data and inner plaintext as
/// [`open_tls13`] (RFC 8446 §5.2), with CCM's tag (16 bytes, or 8 for CCM_8).
fn open_tls13_ccm(
    ccm: &Ccm,
    iv: &[u8; NONCE_LEN],
    seq: u64,
    content_type: u8,
    version: u16,
    fragment: &[u8],
    out: &mut Vec<u8>,
) -> Result<u8, DecryptError> {
    if fragment.len() > TLS13_MAX_CIPHERTEXT {
        return Err(DecryptError::RecordOverflow);
    }
    let tag_len = match ccm {
        Ccm::Tag16(_) => 16,
        Ccm::Tag8(_) => 8,
    };
    let body_len = fragment
        .len()
        .checked_sub(tag_len)
        .ok_or(DecryptError::TooShort)?;
    let (body, tag) = fragment.split_at(body_len);
    let aad = tls13_aad(content_type, version, fragment.len())?;
    let nonce = xor_iv(iv, seq);
    let start = out.len();
    out.extend_from_slice(body);
    let buf = out.get_mut(start..).unwrap_or_default();
    let opened = match ccm {
        Ccm::Tag16(c) => match <&ccm::aead::Tag<ccm::Ccm<aes::Aes128, U16, U12>>>::try_from(tag) {
            Ok(t) => c.decrypt_inout_detached(&nonce.into(), &aad, buf.into(), t),
            Err(_) => Err(ccm::aead::Error),
        },
        Ccm::Tag8(c) => match <&ccm::aead::Tag<ccm::Ccm<aes::Aes128, U8, U12>>>::try_from(tag) {
            Ok(t) => c.decrypt_inout_detached(&nonce.into(), &aad, buf.into(), t),
            Err(_) => Err(ccm::aead::Error),
        },
    };
    if opened.is_err() {
        out.truncate(start);
        return Err(DecryptError::AuthenticationFailed);
    }
    inner_content_type(out, start)
}

/// TLS 1.3 additional data: the record header as it was on the wire (RFC 8446 §5.2).
fn tls13_aad(content_type: u8, version: u16, len: usize) -> Result<[u8; 5], DecryptError> {
    let len = u16::try_from(len).map_err(|_| DecryptError::RecordOverflow)?;
    let [v0, v1] = version.to_be_bytes();
    let [l0, l1] = len.to_be_bytes();
    Ok([content_type, v0, v1, l0, l1])
}

/// RFC 8446 §5.4: scan back over the zero padding of the plaintext at `out[start..]`; the
/// first non-zero byte is the content type, and is cut off with the padding.
fn inner_content_type(out: &mut Vec<u8>, start: usize) -> Result<u8, DecryptError> {
    let inner = out.get(start..).unwrap_or_default();
    let Some(pos) = inner.iter().rposition(|&b| b != 0) else {
        out.truncate(start);
        return Err(DecryptError::NoContentType);
    };
    let content_type = inner.get(pos).copied().unwrap_or_default();
    out.truncate(start + pos);
    Ok(content_type)
}

/// Appends `ciphertext_and_tag` to `out`, opens it in place and truncates `out` to the
/// plaintext. Returns the plaintext's start in `out`.
fn open_appended(
    key: &LessSafeKey,
    nonce: Nonce,
    aad: &[u8],
    ciphertext_and_tag: &[u8],
    out: &mut Vec<u8>,
) -> Result<usize, DecryptError> {
    let start = out.len();
    out.extend_from_slice(ciphertext_and_tag);
    let buf = out.get_mut(start..).unwrap_or_default();
    let plain_len = key
        .open_in_place(nonce, Aad::from(aad), buf)
        .map_err(|_| DecryptError::AuthenticationFailed)?
        .len();
    out.truncate(start + plain_len);
    Ok(start)
}

/// TLS 1.3 (RFC 8446 §5.2): the additional data is the record header as sent,
/// `opaque_type || legacy_record_version || length`; the inner plaintext is
/// `content || ContentType type || zeros`.
fn open_tls13(
    key: &LessSafeKey,
    iv: &[u8; NONCE_LEN],
    seq: u64,
    content_type: u8,
    version: u16,
    fragment: &[u8],
    out: &mut Vec<u8>,
) -> Result<u8, DecryptError> {
    if fragment.len() > TLS13_MAX_CIPHERTEXT {
        return Err(DecryptError::RecordOverflow);
    }
    if fragment.len() < TAG_LEN {
        return Err(DecryptError::TooShort);
    }
    // The outer type is application_data on every protected record (§5.2); the additional
    // data is the header as it was on the wire, so the caller's values are used as given.
    let aad = tls13_aad(content_type, version, fragment.len())?;
    let start = open_appended(key, xor_nonce(iv, seq), &aad, fragment, out)?;
    inner_content_type(out, start)
}

/// TLS 1.2 AEAD additional data (RFC 5246 §6.2.3.3):
/// `seq_num || type || version || length`, the length being that of the plaintext.
fn tls12_aad(seq: u64, content_type: u8, version: u16, plain_len: usize) -> [u8; 13] {
    mac_header(seq, content_type, version, plain_len)
}

/// RFC 7905: ChaCha20-Poly1305 in TLS 1.2 has no explicit nonce.
fn open_tls12_aead(
    key: &LessSafeKey,
    nonce: Nonce,
    seq: u64,
    content_type: u8,
    version: u16,
    fragment: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), DecryptError> {
    if fragment.len() > TLS12_MAX_CIPHERTEXT {
        return Err(DecryptError::RecordOverflow);
    }
    let plain_len = fragment
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(DecryptError::TooShort)?;
    let aad = tls12_aad(seq, content_type, version, plain_len);
    open_appended(key, nonce, &aad, fragment, out).map(|_| ())
}

/// RFC 5288 §3: `GCMNonce = salt[4] || nonce_explicit[8]`, the explicit part leading the
/// fragment.
fn open_tls12_gcm(
    key: &LessSafeKey,
    salt: &[u8; GCM_SALT_LEN],
    seq: u64,
    content_type: u8,
    version: u16,
    fragment: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), DecryptError> {
    if fragment.len() > TLS12_MAX_CIPHERTEXT {
        return Err(DecryptError::RecordOverflow);
    }
    let (Some(explicit), Some(sealed)) = (
        fragment.get(..GCM_EXPLICIT_NONCE_LEN),
        fragment.get(GCM_EXPLICIT_NONCE_LEN..),
    ) else {
        return Err(DecryptError::TooShort);
    };
    let plain_len = sealed
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(DecryptError::TooShort)?;
    let mut nonce = [0u8; NONCE_LEN];
    let (s, e) = nonce.split_at_mut(GCM_SALT_LEN);
    s.copy_from_slice(salt);
    e.copy_from_slice(explicit);
    let aad = tls12_aad(seq, content_type, version, plain_len);
    open_appended(key, Nonce::assume_unique_for_key(nonce), &aad, sealed, out).map(|_| ())
}

/// The 13-byte MAC (and AEAD) header of RFC 5246 §6.2.3.1:
/// `seq_num || type || version || length`.
fn mac_header(seq: u64, content_type: u8, version: u16, len: usize) -> [u8; 13] {
    let mut h = [0u8; 13];
    let (s, rest) = h.split_at_mut(8);
    s.copy_from_slice(&seq.to_be_bytes());
    let (t, rest) = rest.split_at_mut(1);
    t.copy_from_slice(&[content_type]);
    let (v, l) = rest.split_at_mut(2);
    v.copy_from_slice(&version.to_be_bytes());
    // Callers bound `len` by the record limits, far below 2^16.
    l.copy_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    h
}

/// One CBC record's context: the keys and the header fields that go into the MAC.
struct Cbc<'a> {
    aes: &'a Aes,
    mac: &'a hmac::Key,
    mac_len: usize,
    seq: u64,
    content_type: u8,
    version: u16,
}

impl Cbc<'_> {
    /// MAC-then-encrypt (RFC 5246 §6.2.3.2): `IV || E(content || MAC || padding ||
    /// padding_length)`, the MAC over `seq || type || version || content length || content`.
    fn open_mte(&self, fragment: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
        if fragment.len() > TLS12_MAX_CIPHERTEXT {
            return Err(DecryptError::RecordOverflow);
        }
        let (iv, ciphertext) = split_iv(fragment)?;
        if ciphertext.len() % AES_BLOCK != 0 {
            return Err(DecryptError::NotBlockAligned);
        }
        // At least the MAC and the padding_length byte, in at least one block.
        if ciphertext.is_empty() || ciphertext.len() < self.mac_len + 1 {
            return Err(DecryptError::TooShort);
        }
        let start = out.len();
        out.extend_from_slice(ciphertext);
        let buf = out.get_mut(start..).unwrap_or_default();
        self.aes.decrypt_cbc(iv, buf)?;
        let content_len = unpadded_len(buf)?
            .checked_sub(self.mac_len)
            .ok_or(DecryptError::BadPadding)?;
        let (content, rest) = buf.split_at(content_len);
        let tag = rest.get(..self.mac_len).unwrap_or_default();
        self.verify(content.len(), &[content], tag)?;
        out.truncate(start + content_len);
        Ok(())
    }

    /// Encrypt-then-MAC (RFC 7366 §3): `IV || E(content || padding || padding_length) ||
    /// MAC`, the MAC over `seq || type || version || length || IV || ciphertext` with the
    /// length of IV and ciphertext; it is checked before anything is decrypted.
    fn open_etm(&self, fragment: &[u8], out: &mut Vec<u8>) -> Result<(), DecryptError> {
        if fragment.len() > TLS12_MAX_CIPHERTEXT {
            return Err(DecryptError::RecordOverflow);
        }
        let body_len = fragment
            .len()
            .checked_sub(self.mac_len)
            .ok_or(DecryptError::TooShort)?;
        let (body, tag) = fragment.split_at(body_len);
        let (iv, ciphertext) = split_iv(body)?;
        if ciphertext.is_empty() {
            return Err(DecryptError::TooShort);
        }
        if ciphertext.len() % AES_BLOCK != 0 {
            return Err(DecryptError::NotBlockAligned);
        }
        self.verify(body_len, &[body], tag)?;
        let start = out.len();
        out.extend_from_slice(ciphertext);
        let buf = out.get_mut(start..).unwrap_or_default();
        self.aes.decrypt_cbc(iv, buf)?;
        let len = unpadded_len(buf)?;
        out.truncate(start + len);
        Ok(())
    }

    fn verify(&self, len: usize, data: &[&[u8]], tag: &[u8]) -> Result<(), DecryptError> {
        let mut ctx = hmac::Context::with_key(self.mac);
        ctx.update(&mac_header(self.seq, self.content_type, self.version, len));
        for d in data {
            ctx.update(d);
        }
        if constant_time_eq(ctx.sign().as_ref(), tag) {
            Ok(())
        } else {
            Err(DecryptError::BadMac)
        }
    }
}

/// The explicit per-record IV of TLS 1.1+ CBC (RFC 5246 §6.2.3.2) and what follows it.
fn split_iv(fragment: &[u8]) -> Result<(&[u8], &[u8]), DecryptError> {
    match (fragment.get(..AES_BLOCK), fragment.get(AES_BLOCK..)) {
        (Some(iv), Some(rest)) => Ok((iv, rest)),
        _ => Err(DecryptError::TooShort),
    }
}

/// The length of `buf` without its CBC padding: the last byte is `padding_length` and the
/// `padding_length` bytes before it must all equal it (RFC 5246 §6.2.3.2).
fn unpadded_len(buf: &[u8]) -> Result<usize, DecryptError> {
    let pad = usize::from(buf.last().copied().ok_or(DecryptError::BadPadding)?);
    let keep = buf
        .len()
        .checked_sub(pad + 1)
        .ok_or(DecryptError::BadPadding)?;
    let padding = buf.get(keep..).unwrap_or_default();
    // Every byte is looked at whatever the outcome (there is no oracle to protect here, but
    // nothing is lost by being careful).
    let bad = padding.iter().fold(0u8, |acc, &b| acc | (b ^ pad as u8));
    if bad == 0 {
        Ok(keep)
    } else {
        Err(DecryptError::BadPadding)
    }
}

/// Compares MACs without an early exit. Timing is not a threat to a passive observer, but
/// the comparison costs the same either way.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Aes {
    /// CBC-decrypts whole blocks of `buf` in place.
    fn decrypt_cbc(&self, iv: &[u8], buf: &mut [u8]) -> Result<(), DecryptError> {
        let (blocks, _) = aes::Block::slice_as_chunks_mut(buf);
        match self {
            Aes::Aes128(c) => cbc::Decryptor::<aes::Aes128>::inner_iv_slice_init(c.clone(), iv)
                .map_err(|_| DecryptError::TooShort)?
                .decrypt_blocks(blocks),
            Aes::Aes256(c) => cbc::Decryptor::<aes::Aes256>::inner_iv_slice_init(c.clone(), iv)
                .map_err(|_| DecryptError::TooShort)?
                .decrypt_blocks(blocks),
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::tls::keys::tests::{all_fixtures, derive, Fixture};
    use crate::proto::tls::keys::{derive_traffic_keys, suite, tls12_key_block};
    use aes::cipher::{BlockModeEncrypt, KeyIvInit};

    fn protocol(f: &Fixture) -> RecordProtocol {
        if f.tls13 {
            RecordProtocol::Tls13
        } else {
            RecordProtocol::Tls12 {
                encrypt_then_mac: f.etm,
            }
        }
    }

    #[test]
    fn real_traffic_decrypts_like_tshark() {
        let mut records = 0;
        let mut key_updates = 0;
        let mut ciphers = std::collections::BTreeSet::new();
        let mut etm = std::collections::BTreeSet::new();
        for f in all_fixtures() {
            ciphers.insert(format!("{:?}/{}", f.suite.cipher, f.tls13));
            if !f.suite.cipher.is_aead() {
                etm.insert(f.etm);
            }
            for dir in ['c', 's'] {
                let recs: Vec<_> = f.records.iter().filter(|r| r.dir == dir).collect();
                assert!(!recs.is_empty(), "{} {dir}", f.name);
                let mut epoch = recs[0].epoch.clone();
                let mut d = RecordDecrypter::new(f.suite, derive(&f, dir, &epoch), protocol(&f));
                for (i, r) in recs.iter().enumerate() {
                    if r.epoch != epoch {
                        let keys = derive(&f, dir, &r.epoch);
                        if epoch == "hs" {
                            d = RecordDecrypter::new(f.suite, keys, protocol(&f));
                        } else {
                            d.rekey(keys);
                            key_updates += 1;
                        }
                        assert_eq!(d.sequence(), 0);
                        epoch = r.epoch.clone();
                    }
                    let seq = d.sequence();
                    let mut out = b"kept".to_vec();
                    let what = format!("{} {dir} record {i} ({epoch}, seq {seq})", f.name);
                    let t = d
                        .decrypt(r.content_type, r.version, &r.fragment, &mut out)
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(t, r.inner_type, "{what}");
                    assert_eq!(&out[..4], b"kept", "{what}");
                    assert_eq!(out[4..], r.plaintext[..], "{what}");
                    assert_eq!(d.sequence(), seq + 1);
                    records += 1;
                }
            }
        }
        assert_eq!(
            key_updates, 4,
            "both directions of two TLS 1.3 sessions update keys"
        );
        assert_eq!(etm.len(), 2, "CBC with and without encrypt-then-MAC");
        assert_eq!(
            ciphers.into_iter().collect::<Vec<_>>(),
            [
                "Aes128Cbc/false",
                "Aes128Gcm/false",
                "Aes128Gcm/true",
                "Aes256Cbc/false",
                "Aes256Gcm/false",
                "Aes256Gcm/true",
                "ChaCha20Poly1305/false",
                "ChaCha20Poly1305/true",
            ]
        );
        assert!(records >= 90, "{records}");
    }

    #[test]
    fn rfc8448_simple_1rtt_trace() {
        let f = all_fixtures()
            .into_iter()
            .find(|f| f.name == "rfc8448-simple-1rtt")
            .unwrap();
        // The server's first protected record carries EncryptedExtensions, Certificate,
        // CertificateVerify and Finished (RFC 8448 §3, "complete record (679 octets)").
        let flight = &f.records.iter().find(|r| r.dir == 's').unwrap();
        assert_eq!(flight.fragment.len() + 5, 679);
        let mut d = RecordDecrypter::new(f.suite, derive(&f, 's', "hs"), RecordProtocol::Tls13);
        let mut out = Vec::new();
        assert_eq!(d.decrypt(23, 0x0303, &flight.fragment, &mut out), Ok(22));
        let mut types = Vec::new();
        let mut rest = &out[..];
        while rest.len() >= 4 {
            let len = u32::from_be_bytes([0, rest[1], rest[2], rest[3]]) as usize;
            types.push(rest[0]);
            rest = &rest[4 + len..];
        }
        assert!(rest.is_empty());
        assert_eq!(types, [8, 11, 15, 20]);
        // Application data: 50 bytes 00 01 .. 31 each way, after the NewSessionTicket.
        for dir in ['c', 's'] {
            let app: Vec<_> = f
                .records
                .iter()
                .filter(|r| r.dir == dir && r.epoch == "app0")
                .collect();
            let mut d =
                RecordDecrypter::new(f.suite, derive(&f, dir, "app0"), RecordProtocol::Tls13);
            let mut out = Vec::new();
            for r in &app {
                let t = d.decrypt(23, 0x0303, &r.fragment, &mut out).unwrap();
                if t == 23 {
                    assert_eq!(out, (0u8..50).collect::<Vec<_>>());
                }
                out.clear();
            }
        }
    }

    /// A fixture's first record in direction `dir`, its decrypter, and the record.
    fn first_record(f: &Fixture, dir: char) -> (RecordDecrypter, u8, u16, Vec<u8>) {
        let r = f.records.iter().find(|r| r.dir == dir).unwrap();
        let d = RecordDecrypter::new(f.suite, derive(f, dir, &r.epoch), protocol(f));
        (d, r.content_type, r.version, r.fragment.clone())
    }

    #[test]
    fn any_tampered_byte_fails_and_keeps_state() {
        for f in all_fixtures() {
            let (mut d, t, v, frag) = first_record(&f, 's');
            let aead = f.suite.cipher.is_aead();
            // Every byte position for AEAD; for CBC the IV (content flips, MAC-then-encrypt)
            // or the tag and ciphertext (encrypt-then-MAC) are covered by these positions too.
            for pos in [0, frag.len() / 2, frag.len() - 1] {
                let mut bad = frag.clone();
                bad[pos] ^= 0x01;
                let mut out = vec![9, 9];
                let err = d.decrypt(t, v, &bad, &mut out).unwrap_err();
                if aead {
                    assert_eq!(err, DecryptError::AuthenticationFailed, "{} {pos}", f.name);
                } else {
                    assert!(
                        matches!(err, DecryptError::BadMac | DecryptError::BadPadding),
                        "{} {pos}: {err:?}",
                        f.name
                    );
                }
                assert_eq!(out, [9, 9]);
                assert_eq!(d.sequence(), 0);
            }
            // The header is authenticated too: a different type or version fails.
            let mut out = Vec::new();
            assert!(d.decrypt(t ^ 1, v, &frag, &mut out).is_err(), "{}", f.name);
            assert!(d.decrypt(t, v ^ 1, &frag, &mut out).is_err(), "{}", f.name);
            assert!(out.is_empty());
            // And the genuine record still decrypts at sequence number 0.
            assert!(d.decrypt(t, v, &frag, &mut out).is_ok(), "{}", f.name);
            assert_eq!(d.sequence(), 1);
            // Replaying it at sequence number 1 does not authenticate.
            assert!(d.decrypt(t, v, &frag, &mut out).is_err(), "{}", f.name);
        }
    }

    #[test]
    fn cbc_mac_then_encrypt_tampered_iv_is_a_bad_mac() {
        // Flipping an IV bit flips the same bit of the first plaintext byte: content changes,
        // padding does not, so the MAC must catch it.
        for f in all_fixtures()
            .into_iter()
            .filter(|f| !f.suite.cipher.is_aead() && !f.etm)
        {
            let (mut d, t, v, mut frag) = first_record(&f, 'c');
            frag[0] ^= 0x80;
            let e = d.decrypt(t, v, &frag, &mut Vec::new()).unwrap_err();
            assert_eq!(e, DecryptError::BadMac, "{}", f.name);
            assert_eq!(e.reason(), "bad_mac");
        }
    }

    #[test]
    fn truncated_fragments_are_too_short() {
        for f in all_fixtures() {
            let (mut d, t, v, frag) = first_record(&f, 's');
            let min_ok = match (f.tls13, f.suite.cipher) {
                (true, _) | (false, BulkCipher::ChaCha20Poly1305) => TAG_LEN,
                (false, BulkCipher::Aes128Gcm | BulkCipher::Aes256Gcm) => 8 + TAG_LEN,
                (false, _) if f.etm => 2 * AES_BLOCK + f.suite.mac.unwrap().output_len(),
                (false, _) => {
                    AES_BLOCK + (f.suite.mac.unwrap().output_len() + 1).next_multiple_of(16)
                }
            };
            for len in 0..min_ok {
                let mut out = Vec::new();
                let e = d.decrypt(t, v, &frag[..len], &mut out).unwrap_err();
                let ok = match e {
                    DecryptError::TooShort => true,
                    // A CBC body that is not whole blocks may be reported as such first.
                    DecryptError::NotBlockAligned => !f.suite.cipher.is_aead(),
                    // Lengths that are whole blocks but cut: the MAC or tag is wrong.
                    DecryptError::BadMac => !f.suite.cipher.is_aead(),
                    _ => false,
                };
                assert!(ok, "{} len {len}: {e:?}", f.name);
                assert_eq!(d.sequence(), 0);
                assert!(out.is_empty());
            }
            // Cut at the far end instead: authentication fails, never a panic.
            assert!(d
                .decrypt(t, v, &frag[..frag.len() - 1], &mut Vec::new())
                .is_err());
        }
    }

    fn tls13_keys(id: u16) -> (Suite, TrafficKeys) {
        let s = suite(id).unwrap();
        (
            s,
            derive_traffic_keys(&s, &[0x5c; 48][..s.hash.output_len()]),
        )
    }

    /// Seals a TLS 1.3 inner plaintext the way a sender would (RFC 8446 §5.2).
    pub(crate) fn seal13(keys: &TrafficKeys, s: &Suite, seq: u64, inner: &[u8]) -> Vec<u8> {
        let alg = match s.cipher {
            BulkCipher::Aes128Gcm => &aead::AES_128_GCM,
            BulkCipher::Aes256Gcm => &aead::AES_256_GCM,
            _ => &aead::CHACHA20_POLY1305,
        };
        let key = LessSafeKey::new(UnboundKey::new(alg, keys.key.bytes()).unwrap());
        let iv: [u8; 12] = keys.iv.bytes().try_into().unwrap();
        let len = (inner.len() + TAG_LEN) as u16;
        let aad = [23, 3, 3, (len >> 8) as u8, len as u8];
        let mut buf = inner.to_vec();
        key.seal_in_place_append_tag(xor_nonce(&iv, seq), Aad::from(aad), &mut buf)
            .unwrap();
        buf
    }

    #[test]
    fn tls13_padding_and_missing_content_type() {
        for id in [0x1301, 0x1302, 0x1303] {
            let (s, keys) = tls13_keys(id);
            let mut d = RecordDecrypter::new(s, keys.clone(), RecordProtocol::Tls13);
            let mut out = Vec::new();
            // Content, type, then padding zeros: the zeros go, the type comes back.
            let rec = seal13(&keys, &s, 0, b"hi\0\x17\0\0\0\0");
            assert_eq!(d.decrypt(23, 0x0303, &rec, &mut out), Ok(23));
            assert_eq!(out, b"hi\0");
            // Only a type: empty content is legal (e.g. application data, §5.4).
            let rec = seal13(&keys, &s, 1, &[22]);
            assert_eq!(d.decrypt(23, 0x0303, &rec, &mut out), Ok(22));
            assert_eq!(out, b"hi\0");
            // All zeros, or nothing at all: no content type.
            for (seq, inner) in [(2, &[0u8; 5][..]), (2, &[][..])] {
                let rec = seal13(&keys, &s, seq, inner);
                let e = d.decrypt(23, 0x0303, &rec, &mut out).unwrap_err();
                assert_eq!(e, DecryptError::NoContentType);
                assert_eq!(e.reason(), "no_content_type");
                assert_eq!(out, b"hi\0");
                assert_eq!(d.sequence(), 2);
            }
            // Record size limit of §5.2.
            let big = vec![0u8; TLS13_MAX_CIPHERTEXT + 1];
            assert_eq!(
                d.decrypt(23, 0x0303, &big, &mut out),
                Err(DecryptError::RecordOverflow)
            );
            let max = seal13(&keys, &s, 2, &[0x41; (1 << 14) + 1]);
            assert_eq!(d.decrypt(23, 0x0303, &max, &mut out), Ok(0x41));
            assert_eq!(out.len(), 3 + (1 << 14));
        }
    }

    #[test]
    fn unusable_keys_and_suites_are_errors_not_panics() {
        let (s13, k13) = tls13_keys(0x1301);
        let s12 = suite(0xc02f).unwrap();
        let cbc = suite(0xc013).unwrap();
        let (ck, _) = tls12_key_block(&cbc, &[1; 48], &[2; 32], &[3; 32]);
        let (gk, _) = tls12_key_block(&s12, &[1; 48], &[2; 32], &[3; 32]);
        let tls12 = RecordProtocol::Tls12 {
            encrypt_then_mac: false,
        };
        let cases = [
            (s13, k13.clone(), tls12, DecryptError::Unsupported),
            (
                cbc,
                ck.clone(),
                RecordProtocol::Tls13,
                DecryptError::Unsupported,
            ),
            (
                s12,
                gk.clone(),
                RecordProtocol::Tls13,
                DecryptError::Unsupported,
            ),
            (
                s12,
                TrafficKeys {
                    iv: k13.iv.clone(),
                    ..gk.clone()
                },
                tls12,
                DecryptError::BadKeyMaterial,
            ),
            (
                s13,
                TrafficKeys {
                    key: Secret::new(vec![0; 32]),
                    ..k13.clone()
                },
                RecordProtocol::Tls13,
                DecryptError::BadKeyMaterial,
            ),
            (
                cbc,
                TrafficKeys {
                    mac_key: None,
                    ..ck.clone()
                },
                tls12,
                DecryptError::BadKeyMaterial,
            ),
            (
                cbc,
                TrafficKeys {
                    mac_key: Some(Secret::new(vec![0; 32])),
                    ..ck.clone()
                },
                tls12,
                DecryptError::BadKeyMaterial,
            ),
        ];
        for (i, (s, k, p, want)) in cases.into_iter().enumerate() {
            let mut d = RecordDecrypter::new(s, k, p);
            let mut out = Vec::new();
            assert_eq!(
                d.decrypt(23, 0x0303, &[0; 64], &mut out),
                Err(want.clone()),
                "{i}"
            );
            assert_eq!(d.sequence(), 0);
            assert!(format!("{d:?}").contains(want.reason()));
        }
    }

    #[test]
    fn debug_never_shows_keys() {
        let (s, k) = tls13_keys(0x1301);
        let key_hex: String = k.key.bytes().iter().map(|b| format!("{b:02x}")).collect();
        let d = RecordDecrypter::new(s, k.clone(), RecordProtocol::Tls13);
        let text = format!("{d:?} {k:?}");
        assert!(text.contains("TLS_AES_128_GCM_SHA256") && text.contains("Secret(16 bytes)"));
        assert!(!text.contains(&key_hex[..8]), "{text}");
        assert!(
            !text.contains(&format!("{:?}", &k.key.bytes()[..4])),
            "{text}"
        );
    }

    /// Builds a TLS 1.2 CBC record with full control over padding and MAC.
    struct CbcSender {
        suite: Suite,
        keys: TrafficKeys,
        etm: bool,
    }

    impl CbcSender {
        fn new(id: u16, etm: bool) -> Self {
            let suite = suite(id).unwrap();
            let (keys, _) = tls12_key_block(&suite, &[7; 48], &[8; 32], &[9; 32]);
            CbcSender { suite, keys, etm }
        }

        fn decrypter(&self) -> RecordDecrypter {
            RecordDecrypter::new(
                self.suite,
                self.keys.clone(),
                RecordProtocol::Tls12 {
                    encrypt_then_mac: self.etm,
                },
            )
        }

        fn mac(&self, seq: u64, len: usize, data: &[u8]) -> Vec<u8> {
            let key = hmac::Key::new(
                self.suite.mac.unwrap().hmac(),
                self.keys.mac_key.as_ref().unwrap().bytes(),
            );
            let mut m = mac_header(seq, 23, 0x0303, len).to_vec();
            m.extend_from_slice(data);
            hmac::sign(&key, &m).as_ref().to_vec()
        }

        fn encrypt(&self, iv: &[u8; 16], buf: &mut [u8]) {
            let (blocks, tail) = aes::Block::slice_as_chunks_mut(buf);
            assert!(tail.is_empty());
            match self.suite.cipher {
                BulkCipher::Aes128Cbc => {
                    cbc::Encryptor::<aes::Aes128>::new_from_slices(self.keys.key.bytes(), iv)
                        .unwrap()
                        .encrypt_blocks(blocks)
                }
                _ => cbc::Encryptor::<aes::Aes256>::new_from_slices(self.keys.key.bytes(), iv)
                    .unwrap()
                    .encrypt_blocks(blocks),
            }
        }

        /// `padding` is the full padding including the length byte.
        fn record(&self, seq: u64, content: &[u8], padding: &[u8], bad_mac: bool) -> Vec<u8> {
            let iv = [0x33u8; 16];
            let mut out = iv.to_vec();
            if self.etm {
                let mut body = content.to_vec();
                body.extend_from_slice(padding);
                self.encrypt(&iv, &mut body);
                out.extend_from_slice(&body);
                let mut tag = self.mac(seq, out.len(), &out);
                tag[0] ^= u8::from(bad_mac);
                out.extend_from_slice(&tag);
            } else {
                let mut body = content.to_vec();
                let mut tag = self.mac(seq, content.len(), content);
                tag[0] ^= u8::from(bad_mac);
                body.extend_from_slice(&tag);
                body.extend_from_slice(padding);
                self.encrypt(&iv, &mut body);
                out.extend_from_slice(&body);
            }
            out
        }
    }

    #[test]
    fn cbc_padding_and_mac_checks() {
        for (id, etm) in [
            (0x002f, false),
            (0x002f, true),
            (0xc028, false),
            (0x003d, true),
        ] {
            let s = CbcSender::new(id, etm);
            let mac_len = s.suite.mac.unwrap().output_len();
            let what = format!("{id:04x} etm={etm}");
            // Pad `content` to whole blocks; `extra` more blocks of padding if wanted.
            let pad = |content_len: usize, extra: usize| {
                let used = content_len + if etm { 0 } else { mac_len } + 1;
                let n = (16 - used % 16) % 16 + 16 * extra;
                vec![n as u8; n + 1]
            };
            let mut d = s.decrypter();
            let mut out = Vec::new();
            for (seq, content, extra) in [
                (0, &b"hello"[..], 0),
                (1, &b""[..], 0),
                (2, &[0xab; 40][..], 3),
            ] {
                let rec = s.record(seq, content, &pad(content.len(), extra), false);
                out.clear();
                assert_eq!(
                    d.decrypt(23, 0x0303, &rec, &mut out),
                    Ok(23),
                    "{what} {seq}"
                );
                assert_eq!(out, content, "{what}");
            }
            // Padding bytes that disagree with padding_length.
            let mut p = pad(5, 1);
            p[0] ^= 1;
            let rec = s.record(3, b"hello", &p, false);
            assert_eq!(
                d.decrypt(23, 0x0303, &rec, &mut out),
                Err(DecryptError::BadPadding),
                "{what}"
            );
            // padding_length pointing before the start of the record.
            let mut p = pad(5, 0);
            *p.last_mut().unwrap() = 255;
            let rec = s.record(3, b"hello", &p, false);
            let e = d.decrypt(23, 0x0303, &rec, &mut out).unwrap_err();
            assert!(matches!(e, DecryptError::BadPadding), "{what}: {e:?}");
            // A wrong MAC with good padding.
            let rec = s.record(3, b"hello", &pad(5, 0), true);
            assert_eq!(
                d.decrypt(23, 0x0303, &rec, &mut out),
                Err(DecryptError::BadMac),
                "{what}"
            );
            // Not whole blocks.
            let mut rec = s.record(3, b"hello", &pad(5, 0), false);
            rec.insert(20, 0);
            let e = d.decrypt(23, 0x0303, &rec, &mut out).unwrap_err();
            let want = if etm {
                DecryptError::BadMac
            } else {
                DecryptError::NotBlockAligned
            };
            assert!(
                e == want || e == DecryptError::NotBlockAligned,
                "{what}: {e:?}"
            );
            assert_eq!(d.sequence(), 3);
            let big = vec![0u8; TLS12_MAX_CIPHERTEXT + 1];
            assert_eq!(
                d.decrypt(23, 0x0303, &big, &mut out),
                Err(DecryptError::RecordOverflow)
            );
            let good = s.record(3, b"ok", &pad(2, 0), false);
            assert_eq!(d.decrypt(23, 0x0303, &good, &mut out), Ok(23));
        }
    }

    #[test]
    fn reasons_are_stable_and_distinct() {
        let all = [
            DecryptError::TooShort,
            DecryptError::RecordOverflow,
            DecryptError::AuthenticationFailed,
            DecryptError::NotBlockAligned,
            DecryptError::BadPadding,
            DecryptError::BadMac,
            DecryptError::NoContentType,
            DecryptError::BadKeyMaterial,
            DecryptError::Unsupported,
        ];
        let reasons: std::collections::BTreeSet<_> = all.iter().map(|e| e.reason()).collect();
        assert_eq!(reasons.len(), all.len());
        assert!(reasons
            .iter()
            .all(|r| r.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }

    /// Throughput on 16 KiB records. Run with
    /// `cargo test --release --lib throughput -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing; run in release mode by hand"]
    fn throughput() {
        const RECORD: usize = 16 * 1024;
        const N: usize = 2048;
        let report = |name: &str, f: &mut dyn FnMut(&mut Vec<u8>)| {
            let mut out = Vec::with_capacity(RECORD + 64);
            f(&mut out); // warm up
            let t = std::time::Instant::now();
            let rounds = 5;
            for _ in 0..rounds {
                f(&mut out);
            }
            let secs = t.elapsed().as_secs_f64();
            let gbs = (rounds * N * RECORD) as f64 / secs / 1e9;
            eprintln!("{name}: {gbs:.2} GB/s");
        };
        for id in [0x1301u16, 0x1303] {
            let (s, keys) = tls13_keys(id);
            let mut inner = vec![0x61u8; RECORD];
            inner.push(23);
            let recs: Vec<Vec<u8>> = (0..N as u64)
                .map(|i| seal13(&keys, &s, i, &inner))
                .collect();
            report(&format!("TLS 1.3 {}", s.name()), &mut |out| {
                let mut d = RecordDecrypter::new(s, keys.clone(), RecordProtocol::Tls13);
                for r in &recs {
                    out.clear();
                    assert_eq!(d.decrypt(23, 0x0303, r, out), Ok(23));
                }
            });
        }
        // TLS 1.2 AES-128-GCM: seal with the same salt || explicit nonce layout.
        let s = suite(0xc02f).unwrap();
        let (keys, _) = tls12_key_block(&s, &[1; 48], &[2; 32], &[3; 32]);
        let key = LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, keys.key.bytes()).unwrap());
        let recs: Vec<Vec<u8>> = (0..N as u64)
            .map(|seq| {
                let mut nonce = [0u8; 12];
                nonce[..4].copy_from_slice(keys.iv.bytes());
                nonce[4..].copy_from_slice(&seq.to_be_bytes());
                let mut buf = vec![0x62u8; RECORD];
                let aad = tls12_aad(seq, 23, 0x0303, RECORD);
                key.seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    &mut buf,
                )
                .unwrap();
                let mut rec = seq.to_be_bytes().to_vec();
                rec.extend_from_slice(&buf);
                rec
            })
            .collect();
        report(
            "TLS 1.2 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            &mut |out| {
                let tls12 = RecordProtocol::Tls12 {
                    encrypt_then_mac: false,
                };
                let mut d = RecordDecrypter::new(s, keys.clone(), tls12);
                for r in &recs {
                    out.clear();
                    assert_eq!(d.decrypt(23, 0x0303, r, out), Ok(23));
                }
            },
        );
        for (id, etm) in [(0xc027u16, true), (0x002f, false)] {
            let sender = CbcSender::new(id, etm);
            let mac_len = sender.suite.mac.unwrap().output_len();
            let content = vec![0x63u8; RECORD];
            let used = RECORD + if etm { 0 } else { mac_len } + 1;
            let n = (16 - used % 16) % 16;
            let recs: Vec<Vec<u8>> = (0..N as u64)
                .map(|seq| sender.record(seq, &content, &vec![n as u8; n + 1], false))
                .collect();
            report(
                &format!("TLS 1.2 {} etm={etm}", sender.suite.name()),
                &mut |out| {
                    let mut d = sender.decrypter();
                    for r in &recs {
                        out.clear();
                        assert_eq!(d.decrypt(23, 0x0303, r, out), Ok(23));
                    }
                },
            );
        }
    }
}
