//! One AEAD-protected record opened piece by piece, as its bytes arrive: AES-GCM as CTR
//! keystream plus GHASH (NIST SP 800-38D §7.2), ChaCha20-Poly1305 as its keystream plus
//! Poly1305 (RFC 8439 §2.8), for TLS 1.3 and TLS 1.2 (RFC 8446 §5.2, RFC 5288, RFC 7905).
//!
//! Contract: [`Opening::new`] is given the record's additional data and nonce (for TLS 1.2
//! GCM, its implicit salt: the explicit nonce leads the fragment); [`Opening::update`] takes
//! the fragment in pieces of any size, in order, and appends the plaintext they carry to
//! `out`; [`Opening::finish`], once the whole fragment has come, checks the tag and gives the
//! content type. The plaintext is therefore handed out *before* it is authenticated: the
//! caller uses an opening only for records it would otherwise have to hold whole, and treats
//! a failed [`finish`](Opening::finish) as the end of what it can trust. TLS 1.3's inner
//! content type and padding end the plaintext, so the last non-zero byte and the zeros after
//! it are kept back until more plaintext shows they were content; nothing else is held, so
//! an opening costs a few hundred bytes whatever the record's length. Nothing here panics
//! on input.

use super::decrypt::DecryptError;
use super::keys::BulkCipher;
use aes::cipher::{BlockCipherEncrypt, KeyInit, KeyIvInit, StreamCipher, StreamCipherSeek};
use ctr::Ctr32BE;
use universal_hash::UniversalHash;
use zeroize::Zeroizing;

/// AEAD tag length of AES-GCM and ChaCha20-Poly1305.
const TAG_LEN: usize = 16;
/// TLS 1.2 GCM explicit nonce (RFC 5288 §3).
const EXPLICIT_LEN: usize = 8;

/// Where the record's 12-byte nonce comes from.
#[derive(Clone, Copy)]
pub enum Nonce {
    /// TLS 1.3, and TLS 1.2 ChaCha20-Poly1305: `iv XOR seq`, known before the fragment.
    Full([u8; 12]),
    /// TLS 1.2 AES-GCM: the implicit salt; the explicit 8 bytes lead the fragment.
    Salt([u8; 4]),
}

/// The keystream: its key and nonce (how far it has been used is what the body has used).
/// The cipher is keyed afresh for each piece (an AES key schedule takes tens of
/// nanoseconds) rather than kept: keyed ciphers were 128-288 bytes more per record open, and
/// a capture can have one open on every connection.
struct Keystream {
    cipher: BulkCipher,
    key: Zeroizing<[u8; 32]>,
    /// Known from the start, except TLS 1.2 GCM's: its implicit salt, then the explicit
    /// part as it comes.
    nonce: [u8; 12],
}

/// A record being opened; see the module's contract.
///
/// Its lengths are 32-bit or narrower (a record's length is 16 bits on the wire) and the MAC
/// is two fields rather than an enum, whose tag beside GHASH's 16-byte alignment took 16
/// bytes: an opening is 272 bytes, not 336, and a capture can have one on every connection
/// (32k of them at once at 100k connections).
pub struct Opening {
    keystream: Keystream,
    /// GHASH (AES-GCM), and `E_K(J0)`, which masks it into the tag (SP 800-38D §7.2 step 6),
    /// known once the nonce is. Unused (keyed with zeros) when `poly` is there.
    ghash: ghash::GHash,
    mask: [u8; 16],
    /// ChaCha20-Poly1305's MAC. Boxed: with its precomputed powers it is 576 bytes, and
    /// ChaCha20 suites are rare.
    poly: Option<Box<poly1305::Poly1305>>,
    /// MAC input short of a whole block.
    block: [u8; 16],
    block_len: u8,
    aad_len: u8,
    /// Fragment parts still to come: explicit nonce (TLS 1.2 GCM), ciphertext, tag.
    explicit_left: u8,
    body_len: u32,
    body_left: u32,
    tag: [u8; TAG_LEN],
    tag_left: u8,
    /// The record header's content type (TLS 1.2 keeps it outside).
    outer_type: u8,
    tls13: bool,
    /// TLS 1.3: plaintext kept back, `[last non-zero byte] ++ zeros`.
    tail_type: Option<u8>,
    tail_zeros: u32,
}

impl Opening {
    /// Begins a record of `length` fragment bytes. `aad` is the record's additional data
    /// (the header in TLS 1.3, `seq || type || version || plaintext length` in TLS 1.2).
    /// Only AES-GCM and ChaCha20-Poly1305 can be opened this way.
    pub fn new(
        cipher: BulkCipher,
        key: &[u8],
        nonce: Nonce,
        aad: &[u8],
        outer_type: u8,
        length: usize,
        tls13: bool,
    ) -> Result<Self, DecryptError> {
        let explicit_left = match nonce {
            Nonce::Full(_) => 0,
            Nonce::Salt(_) => EXPLICIT_LEN,
        };
        let body_len = length
            .checked_sub(explicit_left + TAG_LEN)
            .ok_or(DecryptError::TooShort)?;
        let body_len = u32::try_from(body_len).map_err(|_| DecryptError::RecordOverflow)?;
        // 5 bytes in TLS 1.3, 13 in TLS 1.2.
        let aad_len = u8::try_from(aad.len()).map_err(|_| DecryptError::RecordOverflow)?;
        if key.len() != cipher.key_len() {
            return Err(DecryptError::BadKeyMaterial);
        }
        let mut keystream = Keystream {
            cipher,
            key: Zeroizing::new([0; 32]),
            nonce: [0; 12],
        };
        keystream
            .key
            .get_mut(..key.len())
            .ok_or(DecryptError::BadKeyMaterial)?
            .copy_from_slice(key);
        let (ghash, poly) = match (cipher, nonce) {
            (BulkCipher::Aes128Gcm | BulkCipher::Aes256Gcm, _) => {
                // The hash key H = E_K(0^128) does not depend on the nonce.
                let h = keystream.block([0; 16]);
                (ghash::GHash::new(&h.into()), None)
            }
            (BulkCipher::ChaCha20Poly1305, Nonce::Full(n)) => {
                // The one-time Poly1305 key is block 0's first 32 bytes; the ciphertext is
                // encrypted from block 1 on (RFC 8439 §2.6, §2.8).
                let mut block0 = [0u8; 64];
                chacha20::ChaCha20::new(&(*keystream.key).into(), &n.into())
                    .apply_keystream(&mut block0);
                let mut otk = [0u8; 32];
                otk.iter_mut().zip(block0).for_each(|(k, b)| *k = b);
                let poly = poly1305::Poly1305::new(&otk.into());
                (ghash::GHash::new(&[0; 16].into()), Some(Box::new(poly)))
            }
            _ => return Err(DecryptError::Unsupported),
        };
        let mut opening = Opening {
            keystream,
            ghash,
            mask: [0; 16],
            poly,
            block: [0; 16],
            block_len: 0,
            aad_len,
            explicit_left: explicit_left as u8, // 0 or 8
            body_len,
            body_left: body_len,
            tag: [0; TAG_LEN],
            tag_left: TAG_LEN as u8,
            outer_type,
            tls13,
            tail_type: None,
            tail_zeros: 0,
        };
        match nonce {
            Nonce::Full(n) if opening.poly.is_some() => opening.keystream.nonce = n,
            Nonce::Full(n) => opening.start_gcm(n),
            Nonce::Salt(salt) => {
                if let Some(dst) = opening.keystream.nonce.get_mut(..4) {
                    dst.copy_from_slice(&salt);
                }
            }
        }
        opening.absorb(aad);
        opening.pad();
        Ok(opening)
    }

    /// Fragment bytes still to come.
    pub fn remaining(&self) -> usize {
        usize::from(self.explicit_left) + self.body_left as usize + usize::from(self.tag_left)
    }

    /// Takes the next bytes of the fragment and appends the plaintext they carry to `out`
    /// (unauthenticated until [`finish`](Opening::finish)). Bytes past the fragment's end
    /// are ignored.
    pub fn update(&mut self, mut piece: &[u8], out: &mut Vec<u8>) {
        if self.explicit_left > 0 {
            let left = usize::from(self.explicit_left);
            let n = left.min(piece.len());
            // The explicit part is the nonce's last eight bytes, after the salt.
            let at = 12 - left;
            let (head, rest) = piece.split_at(n);
            if let Some(dst) = self.keystream.nonce.get_mut(at..at + n) {
                dst.copy_from_slice(head);
            }
            self.explicit_left -= n as u8;
            piece = rest;
            if self.explicit_left == 0 {
                self.start_gcm(self.keystream.nonce);
            }
        }
        let n = (self.body_left as usize).min(piece.len());
        let (body, rest) = piece.split_at(n);
        if !body.is_empty() {
            let used = self.body_len - self.body_left;
            self.body_left -= n as u32;
            self.absorb(body);
            self.decrypt(body, used, out);
        }
        let left = usize::from(self.tag_left);
        let n = left.min(rest.len());
        let at = TAG_LEN - left;
        if let (Some(dst), Some(src)) = (self.tag.get_mut(at..at + n), rest.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.tag_left -= n as u8;
    }

    /// Checks the tag once the whole fragment has come, and gives the content type: TLS
    /// 1.3's inner type (its padding dropped), or the header's in TLS 1.2.
    pub fn finish(mut self) -> Result<u8, DecryptError> {
        if self.remaining() > 0 {
            return Err(DecryptError::TooShort);
        }
        self.pad();
        let (aad_len, body_len) = (u64::from(self.aad_len), u64::from(self.body_len));
        let mut lengths = [0u8; 16];
        if self.poly.is_some() {
            lengths[..8].copy_from_slice(&aad_len.to_le_bytes());
            lengths[8..].copy_from_slice(&body_len.to_le_bytes());
        } else {
            lengths[..8].copy_from_slice(&(aad_len * 8).to_be_bytes());
            lengths[8..].copy_from_slice(&(body_len * 8).to_be_bytes());
        }
        self.absorb(&lengths);
        let tag: [u8; 16] = match self.poly {
            Some(mac) => (*mac).finalize().into(),
            None => {
                let mut t: [u8; 16] = self.ghash.finalize().into();
                t.iter_mut().zip(self.mask).for_each(|(t, m)| *t ^= m);
                t
            }
        };
        if tag != self.tag {
            return Err(DecryptError::AuthenticationFailed);
        }
        if !self.tls13 {
            return Ok(self.outer_type);
        }
        self.tail_type.ok_or(DecryptError::NoContentType)
    }

    /// GCM with a 96-bit nonce (for TLS 1.2, once its explicit part has come): `J0 = nonce ||
    /// 1` masks the tag, and the keystream counts from `nonce || 2` (SP 800-38D §7.2 steps
    /// 2-3).
    fn start_gcm(&mut self, nonce: [u8; 12]) {
        self.keystream.nonce = nonce;
        let mut j0 = [0u8; 16];
        j0[..12].copy_from_slice(&nonce);
        j0[15] = 1;
        self.mask = self.keystream.block(j0);
    }

    /// `used`: body bytes decrypted before these.
    fn decrypt(&mut self, body: &[u8], used: u32, out: &mut Vec<u8>) {
        let base = out.len();
        if self.tls13 {
            // What was kept back is content after all if non-zero plaintext follows.
            out.extend(self.tail_type.take());
            out.resize(out.len() + std::mem::take(&mut self.tail_zeros) as usize, 0);
        }
        let start = out.len();
        out.extend_from_slice(body);
        let plain = out.get_mut(start..).unwrap_or_default();
        self.keystream.apply(plain, used);
        if !self.tls13 {
            return;
        }
        let keep = match plain.iter().rposition(|&b| b != 0) {
            Some(last) => start + last,
            None => base,
        };
        let kept = out.get(keep..).unwrap_or_default();
        match kept.split_first() {
            Some((&first, zeros)) if first != 0 => {
                self.tail_type = Some(first);
                self.tail_zeros = u32::try_from(zeros.len()).unwrap_or(u32::MAX);
            }
            _ => self.tail_zeros = u32::try_from(kept.len()).unwrap_or(u32::MAX),
        }
        out.truncate(keep);
    }

    /// Feeds the MAC, a whole block at a time.
    fn absorb(&mut self, mut data: &[u8]) {
        if self.block_len > 0 {
            let at = usize::from(self.block_len);
            let n = (16 - at).min(data.len());
            let (head, rest) = data.split_at(n);
            if let Some(dst) = self.block.get_mut(at..at + n) {
                dst.copy_from_slice(head);
            }
            self.block_len += n as u8;
            data = rest;
            if self.block_len < 16 {
                return;
            }
            let block = self.block;
            self.mac_blocks(&block);
            self.block_len = 0;
        }
        let whole = data.len() / 16 * 16;
        let (blocks, rest) = data.split_at(whole);
        self.mac_blocks(blocks);
        if let Some(dst) = self.block.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        self.block_len = rest.len() as u8;
    }

    /// Ends a MAC input with zeros to a block's end (both constructions pad the additional
    /// data and the ciphertext separately).
    fn pad(&mut self) {
        if self.block_len > 0 {
            let mut block = self.block;
            if let Some(rest) = block.get_mut(usize::from(self.block_len)..) {
                rest.fill(0);
            }
            self.mac_blocks(&block);
            self.block_len = 0;
        }
    }

    fn mac_blocks(&mut self, bytes: &[u8]) {
        let (blocks, _) = universal_hash::array::Array::slice_as_chunks(bytes);
        match &mut self.poly {
            Some(p) => p.update(blocks),
            None => self.ghash.update(blocks),
        }
    }
}

impl Keystream {
    fn key(&self) -> &[u8] {
        self.key.get(..self.cipher.key_len()).unwrap_or_default()
    }

    /// `E_K(block)`, for GCM.
    fn block(&self, block: [u8; 16]) -> [u8; 16] {
        let mut b = block.into();
        if let Ok(aes) = aes::Aes128Enc::new_from_slice(self.key()) {
            aes.encrypt_block(&mut b);
        } else if let Ok(aes) = aes::Aes256Enc::new_from_slice(self.key()) {
            aes.encrypt_block(&mut b);
        }
        b.into()
    }

    /// Applies the keystream from byte `pos` on to `buf`.
    fn apply(&self, buf: &mut [u8], pos: u32) {
        let key = self.key();
        match self.cipher {
            BulkCipher::ChaCha20Poly1305 => {
                if let Ok(mut c) = chacha20::ChaCha20::new_from_slices(key, &self.nonce) {
                    c.seek(64 + u64::from(pos));
                    c.apply_keystream(buf);
                }
            }
            _ => {
                let mut iv = [0u8; 16];
                iv[..12].copy_from_slice(&self.nonce);
                iv[15] = 2;
                if let Ok(mut c) = Ctr32BE::<aes::Aes128Enc>::new_from_slices(key, &iv) {
                    c.seek(u64::from(pos));
                    c.apply_keystream(buf);
                } else if let Ok(mut c) = Ctr32BE::<aes::Aes256Enc>::new_from_slices(key, &iv) {
                    c.seek(u64::from(pos));
                    c.apply_keystream(buf);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::aead::{self, Aad, LessSafeKey, UnboundKey};

    const CIPHERS: [(BulkCipher, usize); 3] = [
        (BulkCipher::Aes128Gcm, 16),
        (BulkCipher::Aes256Gcm, 32),
        (BulkCipher::ChaCha20Poly1305, 32),
    ];

    /// Seals the way a sender would, with ring (which opens whole records elsewhere).
    fn seal(cipher: BulkCipher, key: &[u8], nonce: [u8; 12], aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let alg = match cipher {
            BulkCipher::Aes128Gcm => &aead::AES_128_GCM,
            BulkCipher::Aes256Gcm => &aead::AES_256_GCM,
            _ => &aead::CHACHA20_POLY1305,
        };
        let key = LessSafeKey::new(UnboundKey::new(alg, key).unwrap());
        let mut buf = plain.to_vec();
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .unwrap();
        buf
    }

    /// Opens `fragment` cut at `cuts` (positions, ascending).
    fn open(
        cipher: BulkCipher,
        key: &[u8],
        nonce: Nonce,
        aad: &[u8],
        fragment: &[u8],
        cuts: &[usize],
        tls13: bool,
    ) -> (Vec<u8>, Result<u8, DecryptError>) {
        let mut o = Opening::new(cipher, key, nonce, aad, 23, fragment.len(), tls13).unwrap();
        let mut out = Vec::new();
        let mut at = 0;
        for &c in cuts.iter().chain([&fragment.len()]) {
            o.update(&fragment[at..c], &mut out);
            at = c;
        }
        assert_eq!(o.remaining(), 0);
        (out, o.finish())
    }

    /// Cut positions from a small deterministic generator.
    fn cuts(len: usize, seed: u64, n: usize) -> Vec<usize> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut v: Vec<usize> = (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) as usize % (len + 1)
            })
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn tls13_records_cut_anywhere_open_as_whole_ones_do() {
        let nonce = [7u8; 12];
        let contents: [&[u8]; 6] = [
            b"",
            b"x",
            b"ends in zeros\0\0",
            &[0; 3],
            &[0x41; 1000],
            &[0x5a; 1 << 14],
        ];
        for (cipher, klen) in CIPHERS {
            let key = vec![0x33; klen];
            for content in contents {
                for padding in [0, 3, 40] {
                    let mut inner = content.to_vec();
                    inner.push(22);
                    inner.resize(inner.len() + padding, 0);
                    let len = (inner.len() + TAG_LEN) as u16;
                    let aad = [23, 3, 3, (len >> 8) as u8, len as u8];
                    let rec = seal(cipher, &key, nonce, &aad, &inner);
                    let every: Vec<Vec<usize>> = if rec.len() < 80 {
                        (0..=rec.len()).map(|c| vec![c]).collect()
                    } else {
                        (0..20).map(|s| cuts(rec.len(), s, 12)).collect()
                    };
                    for c in every {
                        let (out, r) = open(cipher, &key, Nonce::Full(nonce), &aad, &rec, &c, true);
                        assert_eq!(r, Ok(22), "{cipher:?} cuts {c:?}");
                        assert_eq!(out, content, "{cipher:?} cuts {c:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn tls12_records_cut_anywhere_open_as_whole_ones_do() {
        let plain: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let seq = 5u64;
        let mut aad = seq.to_be_bytes().to_vec();
        aad.extend([23, 3, 3, (plain.len() >> 8) as u8, plain.len() as u8]);
        for (cipher, klen) in CIPHERS {
            let key = vec![0x44; klen];
            let (rec, nonce) = if cipher == BulkCipher::ChaCha20Poly1305 {
                let n = [9u8; 12];
                (seal(cipher, &key, n, &aad, &plain), Nonce::Full(n))
            } else {
                // RFC 5288: salt || explicit, the explicit part sent ahead of the ciphertext.
                let mut n = [1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0];
                n[4..].copy_from_slice(&seq.to_be_bytes());
                let mut rec = seq.to_be_bytes().to_vec();
                rec.extend(seal(cipher, &key, n, &aad, &plain));
                (rec, Nonce::Salt([1, 2, 3, 4]))
            };
            for s in 0..30 {
                let mut c = cuts(rec.len(), s, 6);
                if s < 10 {
                    c.push(s as usize); // inside the explicit nonce
                    c.sort_unstable();
                }
                let (out, r) = open(cipher, &key, nonce, &aad, &rec, &c, false);
                assert_eq!(r, Ok(23), "{cipher:?} cuts {c:?}");
                assert_eq!(out, plain, "{cipher:?}");
            }
        }
    }

    #[test]
    fn tampering_and_missing_content_types_are_errors() {
        let nonce = [3u8; 12];
        for (cipher, klen) in CIPHERS {
            let key = vec![0x55; klen];
            let aad = [23, 3, 3, 0, 33];
            let rec = seal(cipher, &key, nonce, &aad, &[0x61; 17]);
            for flip in [0, 16, 17, 32] {
                let mut bad = rec.clone();
                bad[flip] ^= 1;
                let (_, r) = open(cipher, &key, Nonce::Full(nonce), &aad, &bad, &[10], true);
                assert_eq!(
                    r,
                    Err(DecryptError::AuthenticationFailed),
                    "{cipher:?} {flip}"
                );
            }
            // All zeros: authentic, but no content type (RFC 8446 §5.4).
            let zeros = seal(cipher, &key, nonce, &aad, &[0; 17]);
            let (out, r) = open(cipher, &key, Nonce::Full(nonce), &aad, &zeros, &[5], true);
            assert_eq!(r, Err(DecryptError::NoContentType));
            assert!(out.is_empty());
            // Unfinished, or too short to hold a tag.
            let mut o = Opening::new(cipher, &key, Nonce::Full(nonce), &aad, 23, 33, true).unwrap();
            o.update(&rec[..20], &mut Vec::new());
            assert_eq!(o.finish(), Err(DecryptError::TooShort));
            assert!(Opening::new(cipher, &key, Nonce::Full(nonce), &aad, 23, 15, true).is_err());
            assert!(
                Opening::new(cipher, &key[1..], Nonce::Full(nonce), &aad, 23, 33, true).is_err()
            );
        }
        assert!(Opening::new(
            BulkCipher::Aes128Cbc,
            &[0; 16],
            Nonce::Full(nonce),
            &[],
            23,
            64,
            false
        )
        .is_err());
        assert!(Opening::new(
            BulkCipher::ChaCha20Poly1305,
            &[0; 32],
            Nonce::Salt([0; 4]),
            &[],
            23,
            64,
            false
        )
        .is_err());
    }
}
