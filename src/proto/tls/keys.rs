//! Cipher suites and record-key derivation: the TLS 1.3 key schedule's last step (RFC 8446
//! §7.1 `HKDF-Expand-Label`, §7.3 traffic keys, §7.2 KeyUpdate) and the TLS 1.2 PRF and key
//! block (RFC 5246 §5, §6.3), written as the RFCs name them, as thin wrappers over ring's
//! HKDF and HMAC.
//!
//! We are a passive observer holding secrets from a key log, so only the steps from a
//! logged secret to record keys are here: TLS 1.3 logs traffic secrets, TLS 1.2 logs the
//! master secret. [`suite`] knows the suites we can decrypt; [`suite_name`] also names
//! well-known ones we cannot. Nothing here parses traffic, so nothing here can fail on it;
//! results holding key material are [`Secret`]s, which zero themselves and never print.

use super::keylog::Secret;
use ring::{hkdf, hmac};
use zeroize::Zeroizing;

/// The hash of a TLS 1.3 suite's HKDF or a TLS 1.2 suite's PRF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    Sha256,
    Sha384,
}

impl HashAlg {
    /// Output length in bytes (`Hash.length` in RFC 8446).
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            HashAlg::Sha256 => hmac::HMAC_SHA256,
            HashAlg::Sha384 => hmac::HMAC_SHA384,
        }
    }

    fn hkdf(self) -> hkdf::Algorithm {
        match self {
            HashAlg::Sha256 => hkdf::HKDF_SHA256,
            HashAlg::Sha384 => hkdf::HKDF_SHA384,
        }
    }
}

/// The record cipher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkCipher {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
    /// AES-128-CCM with a 16-byte tag (RFC 8446 §B.4, TLS 1.3 only here).
    Aes128Ccm,
    /// AES-128-CCM with an 8-byte tag.
    Aes128Ccm8,
    Aes128Cbc,
    Aes256Cbc,
}

impl BulkCipher {
    pub fn key_len(self) -> usize {
        match self {
            BulkCipher::Aes128Gcm
            | BulkCipher::Aes128Cbc
            | BulkCipher::Aes128Ccm
            | BulkCipher::Aes128Ccm8 => 16,
            BulkCipher::Aes256Gcm | BulkCipher::ChaCha20Poly1305 | BulkCipher::Aes256Cbc => 32,
        }
    }

    pub fn is_aead(self) -> bool {
        !matches!(self, BulkCipher::Aes128Cbc | BulkCipher::Aes256Cbc)
    }

    /// TLS 1.2 `fixed_iv_length`: the implicit part of the nonce taken from the key block.
    /// GCM uses a 4-byte salt (RFC 5288 §3), ChaCha20-Poly1305 a 12-byte IV (RFC 7905 §2);
    /// CBC in TLS 1.2 sends an explicit IV with every record, so none is derived
    /// (RFC 5246 §6.3: IVs "are only generated for implicit nonce techniques").
    fn tls12_fixed_iv_len(self) -> usize {
        match self {
            // RFC 6655 §3 (CCM) uses GCM's layout; no TLS 1.2 CCM suite is enabled here.
            BulkCipher::Aes128Gcm
            | BulkCipher::Aes256Gcm
            | BulkCipher::Aes128Ccm
            | BulkCipher::Aes128Ccm8 => 4,
            BulkCipher::ChaCha20Poly1305 => 12,
            BulkCipher::Aes128Cbc | BulkCipher::Aes256Cbc => 0,
        }
    }
}

/// The HMAC of a TLS 1.2 CBC suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacAlg {
    Sha1,
    Sha256,
    Sha384,
}

impl MacAlg {
    /// Tag and key length in bytes (RFC 5246 §6.2.3.1: `mac_length` = `mac_key_length`).
    pub fn output_len(self) -> usize {
        match self {
            MacAlg::Sha1 => 20,
            MacAlg::Sha256 => 32,
            MacAlg::Sha384 => 48,
        }
    }

    pub(crate) fn hmac(self) -> hmac::Algorithm {
        match self {
            MacAlg::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            MacAlg::Sha256 => hmac::HMAC_SHA256,
            MacAlg::Sha384 => hmac::HMAC_SHA384,
        }
    }
}

/// A cipher suite we can decrypt. Its name is in the table ([`Suite::name`]), not in each
/// copy: two decrypters and the key state of every decrypted connection hold one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suite {
    pub id: u16,
    pub tls13: bool,
    pub cipher: BulkCipher,
    /// The HKDF hash (TLS 1.3) or PRF hash (TLS 1.2).
    pub hash: HashAlg,
    /// The record MAC, for CBC suites only.
    pub mac: Option<MacAlg>,
}

const fn tls13(id: u16, name: &'static str, cipher: BulkCipher, hash: HashAlg) -> Named {
    Named {
        name,
        suite: Suite {
            id,
            tls13: true,
            cipher,
            hash,
            mac: None,
        },
    }
}

const fn aead12(id: u16, name: &'static str, cipher: BulkCipher, hash: HashAlg) -> Named {
    Named {
        name,
        suite: Suite {
            id,
            tls13: false,
            cipher,
            hash,
            mac: None,
        },
    }
}

/// TLS 1.2 suites use the SHA-256 PRF unless the suite names SHA-384 (RFC 5246 §5,
/// RFC 5289 §3.2), so the CBC-with-SHA-1 suites run their PRF on SHA-256 too.
const fn cbc12(id: u16, name: &'static str, cipher: BulkCipher, mac: MacAlg) -> Named {
    Named {
        name,
        suite: Suite {
            id,
            tls13: false,
            cipher,
            hash: match mac {
                MacAlg::Sha384 => HashAlg::Sha384,
                MacAlg::Sha1 | MacAlg::Sha256 => HashAlg::Sha256,
            },
            mac: Some(mac),
        },
    }
}

use BulkCipher::{
    Aes128Cbc, Aes128Ccm, Aes128Ccm8, Aes128Gcm, Aes256Cbc, Aes256Gcm, ChaCha20Poly1305,
};
use HashAlg::{Sha256, Sha384};

/// A suite of the table, with its IANA name (e.g. `TLS_AES_128_GCM_SHA256`).
struct Named {
    suite: Suite,
    name: &'static str,
}

static SUITES: &[Named] = &[
    // TLS 1.3, RFC 8446 §B.4.
    tls13(0x1301, "TLS_AES_128_GCM_SHA256", Aes128Gcm, Sha256),
    tls13(0x1302, "TLS_AES_256_GCM_SHA384", Aes256Gcm, Sha384),
    tls13(
        0x1303,
        "TLS_CHACHA20_POLY1305_SHA256",
        ChaCha20Poly1305,
        Sha256,
    ),
    tls13(0x1304, "TLS_AES_128_CCM_SHA256", Aes128Ccm, Sha256),
    tls13(0x1305, "TLS_AES_128_CCM_8_SHA256", Aes128Ccm8, Sha256),
    // TLS 1.2 AES-GCM, RFC 5288 and RFC 5289.
    aead12(
        0xc02b,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        Aes128Gcm,
        Sha256,
    ),
    aead12(
        0xc02c,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        Aes256Gcm,
        Sha384,
    ),
    aead12(
        0xc02f,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        Aes128Gcm,
        Sha256,
    ),
    aead12(
        0xc030,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        Aes256Gcm,
        Sha384,
    ),
    aead12(0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256", Aes128Gcm, Sha256),
    aead12(0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384", Aes256Gcm, Sha384),
    aead12(
        0x009e,
        "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        Aes128Gcm,
        Sha256,
    ),
    aead12(
        0x009f,
        "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        Aes256Gcm,
        Sha384,
    ),
    // TLS 1.2 ChaCha20-Poly1305, RFC 7905.
    aead12(
        0xcca8,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ChaCha20Poly1305,
        Sha256,
    ),
    aead12(
        0xcca9,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ChaCha20Poly1305,
        Sha256,
    ),
    aead12(
        0xccaa,
        "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ChaCha20Poly1305,
        Sha256,
    ),
    // TLS 1.2 AES-CBC, RFC 5246 §A.5, RFC 4492/8422, RFC 5289.
    cbc12(
        0x002f,
        "TLS_RSA_WITH_AES_128_CBC_SHA",
        Aes128Cbc,
        MacAlg::Sha1,
    ),
    cbc12(
        0x0035,
        "TLS_RSA_WITH_AES_256_CBC_SHA",
        Aes256Cbc,
        MacAlg::Sha1,
    ),
    cbc12(
        0x003c,
        "TLS_RSA_WITH_AES_128_CBC_SHA256",
        Aes128Cbc,
        MacAlg::Sha256,
    ),
    cbc12(
        0x003d,
        "TLS_RSA_WITH_AES_256_CBC_SHA256",
        Aes256Cbc,
        MacAlg::Sha256,
    ),
    cbc12(
        0xc009,
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        Aes128Cbc,
        MacAlg::Sha1,
    ),
    cbc12(
        0xc00a,
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        Aes256Cbc,
        MacAlg::Sha1,
    ),
    cbc12(
        0xc013,
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        Aes128Cbc,
        MacAlg::Sha1,
    ),
    cbc12(
        0xc014,
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        Aes256Cbc,
        MacAlg::Sha1,
    ),
    cbc12(
        0xc023,
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        Aes128Cbc,
        MacAlg::Sha256,
    ),
    cbc12(
        0xc024,
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        Aes256Cbc,
        MacAlg::Sha384,
    ),
    cbc12(
        0xc027,
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        Aes128Cbc,
        MacAlg::Sha256,
    ),
    cbc12(
        0xc028,
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        Aes256Cbc,
        MacAlg::Sha384,
    ),
    cbc12(
        0x0033,
        "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
        Aes128Cbc,
        MacAlg::Sha1,
    ),
    cbc12(
        0x0039,
        "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
        Aes256Cbc,
        MacAlg::Sha1,
    ),
    cbc12(
        0x0067,
        "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
        Aes128Cbc,
        MacAlg::Sha256,
    ),
    cbc12(
        0x006b,
        "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
        Aes256Cbc,
        MacAlg::Sha256,
    ),
];

/// Names of suites seen in the wild that we do not decrypt (so reports can name them).
static OTHER_NAMES: &[(u16, &str)] = &[
    (0x0000, "TLS_NULL_WITH_NULL_NULL"),
    (0x0001, "TLS_RSA_WITH_NULL_MD5"),
    (0x0002, "TLS_RSA_WITH_NULL_SHA"),
    (0x0004, "TLS_RSA_WITH_RC4_128_MD5"),
    (0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
    (0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0032, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA"),
    (0x0038, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA"),
    (0x003b, "TLS_RSA_WITH_NULL_SHA256"),
    (0x0041, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA"),
    (0x0084, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA"),
    (0x00a2, "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256"),
    (0x00a3, "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384"),
    (0x00a8, "TLS_PSK_WITH_AES_128_GCM_SHA256"),
    (0x00a9, "TLS_PSK_WITH_AES_256_GCM_SHA384"),
    (0x00ff, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"),
    (0x5600, "TLS_FALLBACK_SCSV"),
    (0xc007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA"),
    (0xc008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA"),
    (0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"),
    (0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0xc09c, "TLS_RSA_WITH_AES_128_CCM"),
    (0xc09d, "TLS_RSA_WITH_AES_256_CCM"),
    (0xc09e, "TLS_DHE_RSA_WITH_AES_128_CCM"),
    (0xc09f, "TLS_DHE_RSA_WITH_AES_256_CCM"),
    (0xc0a0, "TLS_RSA_WITH_AES_128_CCM_8"),
    (0xc0a1, "TLS_RSA_WITH_AES_256_CCM_8"),
    (0xc0ac, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM"),
    (0xc0ad, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM"),
    (0xc0ae, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8"),
    (0xc0af, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8"),
    (0xccab, "TLS_PSK_WITH_CHACHA20_POLY1305_SHA256"),
    (0xccac, "TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256"),
    (0xccad, "TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256"),
];

/// The suite with this id, if we can decrypt it.
pub fn suite(id: u16) -> Option<Suite> {
    named(id).map(|n| n.suite)
}

impl Suite {
    /// The IANA name. Suites come from [`suite`], so every one has its row in the table
    /// (one built by hand with another id has no name: "").
    pub fn name(&self) -> &'static str {
        named(self.id).map_or("", |n| n.name)
    }
}

fn named(id: u16) -> Option<&'static Named> {
    SUITES.iter().find(|n| n.suite.id == id)
}

/// The IANA name of a suite we decrypt or of a well-known one we do not.
pub fn suite_name(id: u16) -> Option<&'static str> {
    named(id).map(|n| n.name).or_else(|| {
        OTHER_NAMES
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, name)| *name)
    })
}

/// The keys protecting one direction of a connection.
#[derive(Clone, Debug)]
pub struct TrafficKeys {
    /// The cipher key.
    pub key: Secret,
    /// The 12-byte AEAD IV (TLS 1.3, and TLS 1.2 ChaCha20-Poly1305), the 4-byte implicit
    /// salt of TLS 1.2 GCM, or empty for CBC (whose IV travels in each record).
    pub iv: Secret,
    /// The HMAC key, for CBC suites only.
    pub mac_key: Option<Secret>,
}

/// An HKDF output length for ring's `expand`.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// `HKDF-Expand-Label(Secret, Label, Context, Length)` (RFC 8446 §7.1): HKDF-Expand with
/// `HkdfLabel { uint16 length; opaque label<7..255> = "tls13 " + Label; opaque context<0..255> }`
/// as info.
///
/// Returns an empty vector when the request cannot be encoded or expanded: `len` above
/// 255 × the hash length (RFC 5869 §2.3), a label longer than 249 bytes or a context longer
/// than 255. Every call in the TLS 1.3 key schedule is far inside those bounds.
pub fn hkdf_expand_label(
    hash: HashAlg,
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    len: usize,
) -> Vec<u8> {
    const PREFIX: &[u8] = b"tls13 ";
    let (Ok(out_len), Ok(label_len), Ok(context_len)) = (
        u16::try_from(len),
        u8::try_from(PREFIX.len() + label.len()),
        u8::try_from(context.len()),
    ) else {
        return Vec::new();
    };
    let out_len = out_len.to_be_bytes();
    let info: [&[u8]; 6] = [
        &out_len,
        &[label_len],
        PREFIX,
        label,
        &[context_len],
        context,
    ];
    // The traffic secret is already a pseudorandom key: HKDF-Expand only, no Extract.
    let prk = hkdf::Prk::new_less_safe(hash.hkdf(), secret);
    let mut out = vec![0u8; len];
    match prk
        .expand(&info, Len(len))
        .and_then(|okm| okm.fill(&mut out))
    {
        Ok(()) => out,
        Err(_) => Vec::new(),
    }
}

/// The record key and IV of a TLS 1.3 traffic secret (RFC 8446 §7.3):
/// `key = HKDF-Expand-Label(secret, "key", "", key_length)`,
/// `iv = HKDF-Expand-Label(secret, "iv", "", 12)` (the AEAD nonce length, RFC 8446 §5.3).
pub fn derive_traffic_keys(suite: &Suite, traffic_secret: &[u8]) -> TrafficKeys {
    TrafficKeys {
        key: Secret::new(hkdf_expand_label(
            suite.hash,
            traffic_secret,
            b"key",
            b"",
            suite.cipher.key_len(),
        )),
        iv: Secret::new(hkdf_expand_label(
            suite.hash,
            traffic_secret,
            b"iv",
            b"",
            ring::aead::NONCE_LEN,
        )),
        mac_key: None,
    }
}

/// The next application traffic secret after a KeyUpdate (RFC 8446 §7.2):
/// `application_traffic_secret_N+1 = HKDF-Expand-Label(application_traffic_secret_N,
/// "traffic upd", "", Hash.length)`.
pub fn next_traffic_secret(hash: HashAlg, secret: &[u8]) -> Secret {
    Secret::new(hkdf_expand_label(
        hash,
        secret,
        b"traffic upd",
        b"",
        hash.output_len(),
    ))
}

/// The TLS 1.2 PRF (RFC 5246 §5): `PRF(secret, label, seed) = P_hash(secret, label + seed)`
/// where `P_hash` chains `A(i) = HMAC(secret, A(i-1))` with `A(0)` = label + seed and emits
/// `HMAC(secret, A(i) + label + seed)` until `len` bytes are out.
pub fn prf(hash: HashAlg, secret: &[u8], label: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let key = hmac::Key::new(hash.hmac(), secret);
    let mut out = Vec::with_capacity(len);
    // A(1) = HMAC(secret, label + seed); fed to HMAC in parts so nothing is concatenated.
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(label);
    ctx.update(seed);
    let mut a = ctx.sign();
    while out.len() < len {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(label);
        ctx.update(seed);
        let block = ctx.sign();
        let want = (len - out.len()).min(block.as_ref().len());
        out.extend(block.as_ref().iter().take(want));
        a = hmac::sign(&key, a.as_ref());
    }
    out
}

/// The TLS 1.2 key block (RFC 5246 §6.3): `PRF(master_secret, "key expansion",
/// server_random + client_random)`, cut into client MAC key, server MAC key, client key,
/// server key, client IV, server IV. Returns the (client write, server write) keys.
pub fn tls12_key_block(
    suite: &Suite,
    master_secret: &[u8],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
) -> (TrafficKeys, TrafficKeys) {
    let mac_len = suite.mac.map_or(0, MacAlg::output_len);
    let key_len = suite.cipher.key_len();
    let iv_len = suite.cipher.tls12_fixed_iv_len();
    let mut seed = [0u8; 64];
    let (s, c) = seed.split_at_mut(32);
    s.copy_from_slice(server_random);
    c.copy_from_slice(client_random);
    let block = Zeroizing::new(prf(
        suite.hash,
        master_secret,
        b"key expansion",
        &seed,
        2 * (mac_len + key_len + iv_len),
    ));
    let mut rest: &[u8] = &block;
    let mut take = |n: usize| {
        let (head, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        Secret::new(head.to_vec())
    };
    let client_mac = take(mac_len);
    let server_mac = take(mac_len);
    let client_key = take(key_len);
    let server_key = take(key_len);
    let client_iv = take(iv_len);
    let server_iv = take(iv_len);
    let mac = |m: Secret| suite.mac.map(|_| m);
    (
        TrafficKeys {
            key: client_key,
            iv: client_iv,
            mac_key: mac(client_mac),
        },
        TrafficKeys {
            key: server_key,
            iv: server_iv,
            mac_key: mac(server_mac),
        },
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::proto::tls::keylog::KeyLog;
    use crate::proto::tls::keylog::Label;

    pub(crate) fn unhex(s: &str) -> Vec<u8> {
        if s == "-" {
            return Vec::new();
        }
        assert!(s.len() % 2 == 0, "odd hex {s}");
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn hash_named(s: &str) -> HashAlg {
        match s {
            "sha256" => HashAlg::Sha256,
            "sha384" => HashAlg::Sha384,
            _ => panic!("hash {s}"),
        }
    }

    const PRF_VECTORS: &str = include_str!("../../../tests/data/tls/prf-vectors.txt");

    #[test]
    fn prf_and_expand_label_match_python() {
        let mut n = (0, 0);
        for line in PRF_VECTORS.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = line.split(' ').collect();
            let (h, secret, label, input, want) = (
                hash_named(f[1]),
                unhex(f[2]),
                unhex(f[3]),
                unhex(f[4]),
                unhex(f[5]),
            );
            match f[0] {
                "prf" => {
                    assert_eq!(prf(h, &secret, &label, &input, want.len()), want, "{line}");
                    n.0 += 1;
                }
                "hkdf_expand_label" => {
                    let got = hkdf_expand_label(h, &secret, &label, &input, want.len());
                    assert_eq!(got, want, "{line}");
                    n.1 += 1;
                }
                other => panic!("unknown vector kind {other}"),
            }
        }
        assert_eq!(n, (8, 6));
    }

    #[test]
    fn expand_label_refuses_what_it_cannot_encode() {
        let s = [7u8; 32];
        assert!(hkdf_expand_label(HashAlg::Sha256, &s, &[b'x'; 250], b"", 16).is_empty());
        assert_eq!(
            hkdf_expand_label(HashAlg::Sha256, &s, &[b'x'; 249], b"", 16).len(),
            16
        );
        assert!(hkdf_expand_label(HashAlg::Sha256, &s, b"k", &[0; 256], 16).is_empty());
        assert!(hkdf_expand_label(HashAlg::Sha256, &s, b"k", b"", 255 * 32 + 1).is_empty());
        assert_eq!(
            hkdf_expand_label(HashAlg::Sha256, &s, b"k", b"", 255 * 32).len(),
            255 * 32
        );
    }

    #[test]
    fn suite_table() {
        let ids = [
            0x1301, 0x1302, 0x1303, 0x1304, 0x1305, 0xc02b, 0xc02c, 0xc02f, 0xc030, 0x009c, 0x009d,
            0x009e, 0x009f, 0xcca8, 0xcca9, 0xccaa, 0x002f, 0x0035, 0x003c, 0x003d, 0xc009, 0xc00a,
            0xc013, 0xc014, 0xc023, 0xc024, 0xc027, 0xc028, 0x0033, 0x0039, 0x0067, 0x006b,
        ];
        assert_eq!(SUITES.len(), ids.len());
        for id in ids {
            let s = suite(id).unwrap();
            assert_eq!(suite_name(id), Some(s.name()));
            assert_eq!(s.tls13, (0x1301..=0x1305).contains(&id));
            assert_eq!(s.mac.is_some(), !s.cipher.is_aead(), "{}", s.name());
            // The name states the hash, the cipher and (for TLS 1.2) the key exchange.
            let hash = if s.name().ends_with("SHA384") {
                Sha384
            } else {
                Sha256
            };
            assert_eq!(s.hash, hash, "{}", s.name());
            let cipher = match (s.name().contains("AES_128"), s.name().contains("AES_256")) {
                (true, _) if s.name().contains("CCM_8") => Aes128Ccm8,
                (true, _) if s.name().contains("CCM") => Aes128Ccm,
                (true, _) if s.name().contains("GCM") => Aes128Gcm,
                (_, true) if s.name().contains("GCM") => Aes256Gcm,
                (true, _) => Aes128Cbc,
                (_, true) => Aes256Cbc,
                _ => ChaCha20Poly1305,
            };
            assert_eq!(s.cipher, cipher, "{}", s.name());
            let mac = match s.name().rsplit('_').next() {
                Some("SHA") => Some(MacAlg::Sha1),
                Some("SHA256") => Some(MacAlg::Sha256),
                Some("SHA384") => Some(MacAlg::Sha384),
                _ => None,
            };
            assert_eq!(s.mac, mac.filter(|_| !s.cipher.is_aead()), "{}", s.name());
        }
        assert_eq!(suite(0xc0ac), None); // TLS 1.2 CCM: named, not decrypted
        assert_eq!(suite_name(0x1304), Some("TLS_AES_128_CCM_SHA256"));
        assert_eq!(suite_name(0x0a0a), None);
        for (id, _) in OTHER_NAMES {
            assert!(suite(*id).is_none());
        }
    }

    #[test]
    fn traffic_keys_debug_shows_lengths_only() {
        let s = suite(0x1301).unwrap();
        let k = derive_traffic_keys(&s, &[0x42; 32]);
        let d = format!("{k:?}");
        assert_eq!(
            d,
            "TrafficKeys { key: Secret(16 bytes), iv: Secret(12 bytes), mac_key: None }"
        );
    }

    /// One fixture file from `tests/data/tls/` (see its README): what the tests here and in
    /// `decrypt.rs` read.
    pub(crate) struct Fixture {
        pub name: &'static str,
        pub suite: Suite,
        pub tls13: bool,
        pub etm: bool,
        pub client_random: [u8; 32],
        pub server_random: [u8; 32],
        pub keylog: KeyLog,
        /// Key log lines this crate does not store (OpenSSL's `*_TRAFFIC_SECRET_N`).
        pub extra_secrets: Vec<(String, Vec<u8>)>,
        pub key_block: Option<Vec<u8>>,
        /// The keys tshark derived, per direction and epoch.
        pub keys: Vec<ExpectedKeys>,
        pub records: Vec<Record>,
    }

    /// (direction 'c'/'s', epoch, key, iv, mac key).
    pub(crate) type ExpectedKeys = (char, String, Vec<u8>, Vec<u8>, Option<Vec<u8>>);

    pub(crate) struct Record {
        pub dir: char,
        pub epoch: String,
        pub content_type: u8,
        pub version: u16,
        pub inner_type: u8,
        pub fragment: Vec<u8>,
        pub plaintext: Vec<u8>,
    }

    macro_rules! fixtures {
        ($($f:literal),* $(,)?) => {
            &[$(($f, include_str!(concat!("../../../tests/data/tls/", $f, ".txt")))),*]
        };
    }

    pub(crate) const FIXTURES: &[(&str, &str)] = fixtures!(
        "rfc8448-simple-1rtt",
        "sample-http1-tls13-aes256gcm",
        "sample-http1-tls12-ecdhe-aes128gcm",
        "sample-h2-tls12-ecdhe-aes256gcm",
        "tls13-aes128gcm-keyupdate",
        "tls13-chacha20-keyupdate",
        "tls12-ecdhe-chacha20",
        "tls12-rsa-aes128-sha-etm",
        "tls12-rsa-aes128-sha-noetm",
        "tls12-rsa-aes128-sha256-etm",
        "tls12-ecdhe-aes256-sha384-noetm",
        "tls12-ecdhe-aes256-sha384-etm",
    );

    pub(crate) fn fixture(name: &'static str, text: &str) -> Fixture {
        let mut f = Fixture {
            name,
            suite: suite(0x1301).unwrap(),
            tls13: false,
            etm: false,
            client_random: [0; 32],
            server_random: [0; 32],
            keylog: KeyLog::new(),
            extra_secrets: Vec::new(),
            key_block: None,
            keys: Vec::new(),
            records: Vec::new(),
        };
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let w: Vec<&str> = line.split(' ').collect();
            match w[0] {
                "suite" => f.suite = suite(u16::from_str_radix(w[1], 16).unwrap()).unwrap(),
                "protocol" => f.tls13 = w[1] == "tls13",
                "etm" => f.etm = w[1] == "1",
                "client_random" => f.client_random = unhex(w[1]).try_into().unwrap(),
                "server_random" => f.server_random = unhex(w[1]).try_into().unwrap(),
                "keylog" => {
                    f.keylog.add(&line.as_bytes()["keylog ".len()..]);
                    if w[1].ends_with("_N") {
                        f.extra_secrets.push((w[1].to_string(), unhex(w[3])));
                    }
                }
                "key_block" => f.key_block = Some(unhex(w[1])),
                "keys" => {
                    let mut k = (
                        w[1].chars().next().unwrap(),
                        w[2].to_string(),
                        vec![],
                        vec![],
                        None,
                    );
                    for kv in w[3..].chunks(2) {
                        match kv[0] {
                            "key" => k.2 = unhex(kv[1]),
                            "iv" => k.3 = unhex(kv[1]),
                            "mac" => k.4 = Some(unhex(kv[1])),
                            other => panic!("{other}"),
                        }
                    }
                    f.keys.push(k);
                }
                "rec" => f.records.push(Record {
                    dir: w[1].chars().next().unwrap(),
                    epoch: w[2].to_string(),
                    content_type: w[3].parse().unwrap(),
                    version: u16::from_str_radix(w[4], 16).unwrap(),
                    inner_type: w[5].parse().unwrap(),
                    fragment: unhex(w[6]),
                    plaintext: unhex(w.get(7).copied().unwrap_or("-")),
                }),
                other => panic!("{name}: unknown fixture line {other}"),
            }
        }
        assert_eq!(f.tls13, f.suite.tls13, "{name}");
        f
    }

    pub(crate) fn all_fixtures() -> Vec<Fixture> {
        FIXTURES.iter().map(|(n, t)| fixture(n, t)).collect()
    }

    /// The traffic keys of `epoch` in direction `dir`, derived by this module from the key
    /// log alone: what the decryption tests use.
    pub(crate) fn derive(f: &Fixture, dir: char, epoch: &str) -> TrafficKeys {
        let s = f.keylog.get(&f.client_random).unwrap();
        if !f.tls13 {
            let ms = s.get(Label::ClientRandom).unwrap();
            let (c, sv) = tls12_key_block(&f.suite, ms, &f.client_random, &f.server_random);
            return if dir == 'c' { c } else { sv };
        }
        let secret = match (dir, epoch) {
            ('c', "hs") => Secret::from(s.get(Label::ClientHandshake).unwrap()),
            ('s', "hs") => Secret::from(s.get(Label::ServerHandshake).unwrap()),
            (_, app) => {
                let mut secret = Secret::from(if dir == 'c' {
                    s.get(Label::ClientTraffic0).unwrap()
                } else {
                    s.get(Label::ServerTraffic0).unwrap()
                });
                let n: usize = app.strip_prefix("app").unwrap().parse().unwrap();
                for _ in 0..n {
                    secret = next_traffic_secret(f.suite.hash, secret.bytes());
                }
                secret
            }
        };
        derive_traffic_keys(&f.suite, secret.bytes())
    }

    /// Keys from the key log match what tshark derived for every real capture, and what
    /// RFC 8448 §3 prints for its trace.
    #[test]
    fn derived_keys_match_tshark_and_rfc8448() {
        let mut checked = 0;
        for f in all_fixtures() {
            assert!(!f.keys.is_empty(), "{}", f.name);
            for (dir, epoch, key, iv, mac) in &f.keys {
                let k = derive(&f, *dir, epoch);
                let what = format!("{} {dir} {epoch}", f.name);
                assert_eq!(k.key.bytes(), &key[..], "key {what}");
                // tshark also derives a (TLS 1.0 style) CBC IV; TLS 1.2 does not use it.
                if f.suite.cipher.is_aead() {
                    assert_eq!(k.iv.bytes(), &iv[..], "iv {what}");
                } else {
                    assert!(k.iv.is_empty());
                }
                assert_eq!(
                    k.mac_key.as_ref().map(|m| m.bytes().to_vec()),
                    *mac,
                    "mac {what}"
                );
                checked += 1;
            }
            if let Some(block) = &f.key_block {
                let s = f.keylog.get(&f.client_random).unwrap();
                let mut seed = f.server_random.to_vec();
                seed.extend_from_slice(&f.client_random);
                let ms = s.get(Label::ClientRandom).unwrap();
                let got = prf(f.suite.hash, ms, b"key expansion", &seed, block.len());
                assert_eq!(&got, block, "key block {}", f.name);
            }
        }
        assert!(checked >= 34, "{checked}");
    }

    #[test]
    fn key_update_matches_openssl_logged_secrets() {
        // OpenSSL 3 logs the updated secrets as CLIENT/SERVER_TRAFFIC_SECRET_N.
        let mut checked = 0;
        for f in all_fixtures() {
            let s = f.keylog.get(&f.client_random).unwrap();
            for (label, want) in &f.extra_secrets {
                let base = if label.starts_with("CLIENT") {
                    s.get(Label::ClientTraffic0)
                } else {
                    s.get(Label::ServerTraffic0)
                };
                let next = next_traffic_secret(f.suite.hash, base.unwrap());
                assert_eq!(next.bytes(), &want[..], "{} {label}", f.name);
                checked += 1;
            }
        }
        assert_eq!(checked, 4);
    }
}
