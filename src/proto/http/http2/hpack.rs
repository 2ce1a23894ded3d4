//! HPACK (RFC 7541) header-block decoding for a passive observer.
//!
//! Contract: one [`Decoder`] per direction of a connection, fed each complete header block
//! (HEADERS or PUSH_PROMISE plus its CONTINUATIONs) in order. Each field comes out as
//! [`Field::Known`] or, when it references a dynamic-table entry this observer never saw,
//! [`Field::Unknown`]: never a guess.
//!
//! Why not a decoder crate: an endpoint's decoder fails a whole block at the first reference
//! it cannot resolve, and must, since the connection is dead after that. A passive observer
//! must go on: a capture that starts mid-connection has a dynamic table whose older entries
//! were never seen, and a lost segment may have held insertions. Both are modelled the same
//! way: the table holds the entries seen since the last point of uncertainty, and an
//! `unknown_beyond` flag says older ones may exist. Entries are inserted at the front, so the
//! ones seen keep their indices whatever the unseen ones were; a reference past them is
//! unknown. Eviction is only ever of the oldest entries, so keeping too many (when the real
//! table is smaller) cannot change what a valid reference resolves to, and keeping too few
//! (capped by the table-size limit) turns references into unknowns, not errors.
//!
//! After a malformed block the table is desynchronised (the rest of the block may have
//! inserted entries): it is emptied and marked `unknown_beyond`, and decoding goes on.
//! Huffman strings are decoded with loona-hpack's decoder, which rejects bad padding and EOS.

use loona_hpack::huffman::HuffmanDecoder;
use std::collections::VecDeque;

/// RFC 7541 §4.1: an entry's size is its name and value lengths plus 32.
const ENTRY_OVERHEAD: usize = 32;
/// The table size both sides start with (RFC 9113 §6.5.2 SETTINGS_HEADER_TABLE_SIZE).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// One header field of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field<'a> {
    Known {
        name: &'a [u8],
        value: &'a [u8],
    },
    /// The field's name (and so its meaning) is not known: it references a dynamic-table
    /// entry this observer never saw.
    Unknown,
}

/// Why a block could not be decoded to its end; fields before the error were delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    #[error("header block ends inside a field")]
    Truncated,
    #[error("integer too large")]
    IntegerOverflow,
    #[error("index 0 or beyond the static and dynamic tables")]
    BadIndex,
    #[error("invalid Huffman string")]
    Huffman,
    #[error("dynamic table size update above the allowed maximum")]
    TableSizeTooLarge,
    #[error("dynamic table size update after the first field")]
    LateSizeUpdate,
}

/// A dynamic table entry: name and value in one allocation, shared with the thread's other
/// tables that hold the same (an open HTTP/2 connection keeps a few dozen entries per
/// direction, and a client's connections insert the same user-agent, accept and cookie
/// fields).
struct Entry {
    bytes: std::sync::Arc<[u8]>,
    name_len: usize,
}

crate::intern::thread_interner!(fn shared_entry([u8]));

thread_local! {
    /// Name and value joined, to look the entry up among the shared ones.
    static JOINED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Entry {
    fn new(name: &[u8], value: &[u8]) -> Self {
        let bytes = if name.len() + value.len() > crate::intern::MAX_VALUE {
            // Never shared: made in one allocation, without joining first.
            name.iter().chain(value).copied().collect()
        } else {
            JOINED.with(|j| {
                let mut j = j.borrow_mut();
                j.clear();
                j.extend_from_slice(name);
                j.extend_from_slice(value);
                shared_entry(&j)
            })
        };
        Entry {
            bytes,
            name_len: name.len(),
        }
    }

    fn name(&self) -> &[u8] {
        self.bytes.get(..self.name_len).unwrap_or_default()
    }

    fn value(&self) -> &[u8] {
        self.bytes.get(self.name_len..).unwrap_or_default()
    }

    fn size(&self) -> usize {
        self.bytes.len() + ENTRY_OVERHEAD
    }
}

/// The decoding state of one direction.
pub struct Decoder {
    /// Newest first: index 62 is `table[0]`.
    table: VecDeque<Entry>,
    /// Sizes as 32-bit numbers: SETTINGS_HEADER_TABLE_SIZE is one, the table never holds
    /// more than `cap`, and every HTTP/2 connection keeps two decoders (16 bytes each).
    size: u32,
    /// The table's maximum size as last set by a size update (or the default).
    max_size: u32,
    /// The most a size update may set: the decoding endpoint's SETTINGS_HEADER_TABLE_SIZE.
    allowed: u32,
    /// Memory cap of this observer: entries beyond it are dropped (and become unknown).
    cap: u32,
    /// Older entries than those in `table` may exist, unseen.
    unknown_beyond: bool,
    /// References that could not be resolved, over the decoder's life (saturating; 32 bits
    /// keep a decoder, two per HTTP/2 connection, at 56 bytes).
    pub unknown_fields: u32,
}

thread_local! {
    /// One Huffman decoder per thread, shared by every connection: loona-hpack's builds its
    /// code table as nested hash maps, about 25 kB and 13 µs each, which a decoder per
    /// connection direction paid for (5 GB for 100k browser connections).
    static HUFFMAN: std::cell::RefCell<HuffmanDecoder> = std::cell::RefCell::new(HuffmanDecoder::new());

    /// The field being decoded, one per thread: each decoder kept its own pair, with the
    /// capacity of its longest field, for its connection's lifetime. A Huffman-coded string
    /// still arrives in a new `Vec` (loona-hpack's decoder makes one), which replaces the
    /// scratch space it goes to.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::default();
}

/// The name and value of the field being decoded.
#[derive(Default)]
struct Scratch {
    name: Vec<u8>,
    value: Vec<u8>,
}

impl Decoder {
    /// A decoder for a direction whose first header block is seen (`mid_stream` false) or
    /// not; `cap` bounds the bytes kept in the dynamic table.
    pub fn new(mid_stream: bool, cap: usize) -> Self {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE as u32,
            // Mid-stream, the SETTINGS that bound size updates were not seen.
            allowed: if mid_stream {
                u32::MAX
            } else {
                DEFAULT_TABLE_SIZE as u32
            },
            cap: u32::try_from(cap).unwrap_or(u32::MAX),
            unknown_beyond: mid_stream,
            unknown_fields: 0,
        }
    }

    /// The decoding endpoint announced SETTINGS_HEADER_TABLE_SIZE: the encoder may now use
    /// up to `n` (RFC 7541 §4.2).
    pub fn set_allowed_size(&mut self, n: u32) {
        self.allowed = n;
    }

    /// Forget everything: bytes of this direction were lost or a block was malformed.
    pub fn desynchronise(&mut self) {
        self.table.clear();
        self.size = 0;
        self.unknown_beyond = true;
    }

    /// Whether the table may hold entries this observer never saw.
    pub fn is_uncertain(&self) -> bool {
        self.unknown_beyond
    }

    /// Decodes one complete header block, calling `field` for each field in order. On error
    /// the table is desynchronised and the error returned; fields before it were delivered.
    pub fn decode(
        &mut self,
        block: &[u8],
        field: &mut dyn FnMut(Field<'_>),
    ) -> Result<(), HpackError> {
        let r = SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => self.decode_inner(block, &mut scratch, field),
            // Only a field handler that decoded another block comes here: it gets its own.
            Err(_) => self.decode_inner(block, &mut Scratch::default(), field),
        });
        if r.is_err() {
            self.desynchronise();
        }
        r
    }

    fn decode_inner(
        &mut self,
        mut block: &[u8],
        scratch: &mut Scratch,
        field: &mut dyn FnMut(Field<'_>),
    ) -> Result<(), HpackError> {
        let mut first = true;
        while let Some(&b) = block.first() {
            if b & 0x80 != 0 {
                // §6.1 indexed field.
                let (index, rest) = integer(block, 7)?;
                block = rest;
                match self.lookup(index)? {
                    Some(e) => field(Field::Known {
                        name: e.name,
                        value: e.value,
                    }),
                    None => self.unknown(field),
                }
            } else if b & 0xe0 == 0x20 {
                // §6.3 dynamic table size update: only at the start of a block.
                let (n, rest) = integer(block, 5)?;
                block = rest;
                if !first {
                    return Err(HpackError::LateSizeUpdate);
                }
                let Some(n) = u32::try_from(n).ok().filter(|&n| n <= self.allowed) else {
                    return Err(HpackError::TableSizeTooLarge);
                };
                self.max_size = n;
                self.evict(0);
                continue;
            } else {
                // §6.2 literals: with incremental indexing (01), without (0000), never (0001).
                let (prefix, index_it) = if b & 0xc0 == 0x40 {
                    (6, true)
                } else {
                    (4, false)
                };
                let (name_index, rest) = integer(block, prefix)?;
                block = rest;
                let name_known = if name_index == 0 {
                    block = string(block, &mut scratch.name)?;
                    true
                } else {
                    match self.lookup(name_index)? {
                        Some(e) => {
                            scratch.name.clear();
                            scratch.name.extend_from_slice(e.name);
                            true
                        }
                        None => false,
                    }
                };
                block = string(block, &mut scratch.value)?;
                if name_known {
                    field(Field::Known {
                        name: &scratch.name,
                        value: &scratch.value,
                    });
                } else {
                    self.unknown(field);
                }
                if index_it {
                    if name_known {
                        self.insert(Entry::new(&scratch.name, &scratch.value));
                    } else {
                        // An entry we cannot name shifts every index: what it would have
                        // pushed out of view is now beyond the known entries.
                        self.desynchronise();
                    }
                }
            }
            first = false;
        }
        Ok(())
    }

    fn unknown(&mut self, field: &mut dyn FnMut(Field<'_>)) {
        self.unknown_fields = self.unknown_fields.saturating_add(1);
        field(Field::Unknown);
    }

    /// The entry at `index` (1-based over static then dynamic), `None` when it lies beyond
    /// the entries seen and unseen ones may exist.
    fn lookup(&self, index: usize) -> Result<Option<StaticOrDynamic<'_>>, HpackError> {
        let Some(i) = index.checked_sub(1) else {
            return Err(HpackError::BadIndex);
        };
        if let Some(&(name, value)) = STATIC_TABLE.get(i) {
            return Ok(Some(StaticOrDynamic {
                name: name.as_bytes(),
                value: value.as_bytes(),
            }));
        }
        match self.table.get(i - STATIC_TABLE.len()) {
            Some(e) => Ok(Some(StaticOrDynamic {
                name: e.name(),
                value: e.value(),
            })),
            None if self.unknown_beyond => Ok(None),
            None => Err(HpackError::BadIndex),
        }
    }

    fn insert(&mut self, e: Entry) {
        let size = e.size();
        self.evict(size);
        // §4.4: an entry larger than the table empties it and is not added. Past this
        // observer's cap it is not kept either, and references to it become unknown.
        if size <= self.max_size.min(self.cap) as usize {
            // Fits in the limit, a `u32`, with what the table holds (`evict`).
            self.size = u32::try_from(self.size as usize + size).unwrap_or(u32::MAX);
            // Grown one by one while short: a table's first growths would make room for
            // 4, 8, 16 entries, and most connections insert a handful.
            if self.table.len() == self.table.capacity() && self.table.len() < 16 {
                self.table.reserve_exact(1);
            }
            self.table.push_front(e);
        } else if size <= self.max_size as usize {
            self.desynchronise();
        }
    }

    /// Evicts until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        let limit = self.max_size.min(self.cap) as usize;
        while self.size as usize + room > limit {
            let Some(e) = self.table.pop_back() else {
                break;
            };
            self.size = u32::try_from((self.size as usize).saturating_sub(e.size())).unwrap_or(0);
            if self.max_size > self.cap {
                // Dropped for this observer's cap, not by the protocol: it still exists.
                self.unknown_beyond = true;
            }
        }
    }
}

/// Reads a string literal into `out`; returns what follows it.
fn string<'b>(block: &'b [u8], out: &mut Vec<u8>) -> Result<&'b [u8], HpackError> {
    let huffman = block.first().is_some_and(|b| b & 0x80 != 0);
    let (len, rest) = integer(block, 7)?;
    let raw = rest.get(..len).ok_or(HpackError::Truncated)?;
    out.clear();
    if huffman {
        *out = HUFFMAN
            .with(|h| h.borrow_mut().decode(raw))
            .map_err(|_| HpackError::Huffman)?;
    } else {
        out.extend_from_slice(raw);
    }
    Ok(rest.get(len..).unwrap_or(&[]))
}

struct StaticOrDynamic<'a> {
    name: &'a [u8],
    value: &'a [u8],
}

/// Decodes an integer with an `n`-bit prefix (RFC 7541 §5.1); values above 2^28 are refused
/// (no table size, string or index is that large in practice, and it bounds the loop).
fn integer(block: &[u8], n: u8) -> Result<(usize, &[u8]), HpackError> {
    let (&first, mut rest) = block.split_first().ok_or(HpackError::Truncated)?;
    let max_prefix = (1usize << n) - 1;
    let mut value = usize::from(first) & max_prefix;
    if value < max_prefix {
        return Ok((value, rest));
    }
    let mut shift = 0u32;
    loop {
        let (&b, r) = rest.split_first().ok_or(HpackError::Truncated)?;
        rest = r;
        value += usize::from(b & 0x7f) << shift;
        shift += 7;
        if value > 1 << 28 {
            return Err(HpackError::IntegerOverflow);
        }
        if b & 0x80 == 0 {
            return Ok((value, rest));
        }
        if shift > 28 {
            return Err(HpackError::IntegerOverflow);
        }
    }
}

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn decode(d: &mut Decoder, block: &[u8]) -> Result<Vec<Option<(String, String)>>, HpackError> {
        let mut out = Vec::new();
        d.decode(block, &mut |f| {
            out.push(match f {
                Field::Known { name, value } => Some((
                    String::from_utf8_lossy(name).into_owned(),
                    String::from_utf8_lossy(value).into_owned(),
                )),
                Field::Unknown => None,
            })
        })?;
        Ok(out)
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<Option<(String, String)>> {
        v.iter()
            .map(|(n, v)| Some((n.to_string(), v.to_string())))
            .collect()
    }

    #[test]
    fn integers_per_rfc_c1() {
        assert_eq!(integer(&[0x0a], 5), Ok((10, &[][..])));
        assert_eq!(integer(&[0x1f, 0x9a, 0x0a], 5), Ok((1337, &[][..])));
        assert_eq!(integer(&[0x2a], 8), Ok((42, &[][..])));
        assert_eq!(integer(&[0x1f, 0x80], 5), Err(HpackError::Truncated));
        assert_eq!(
            integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 5),
            Err(HpackError::IntegerOverflow)
        );
    }

    /// RFC 7541 C.4: requests with Huffman coding, three blocks sharing the table.
    #[test]
    fn rfc_c4_requests_with_huffman() {
        let mut d = Decoder::new(false, 1 << 16);
        let first = pairs(&[
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ]);
        assert_eq!(
            decode(&mut d, &hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")).unwrap(),
            first
        );
        assert_eq!(d.size, 57);
        let mut second = first.clone();
        second.push(Some(("cache-control".into(), "no-cache".into())));
        assert_eq!(
            decode(&mut d, &hex("8286 84be 5886 a8eb 1064 9cbf")).unwrap(),
            second
        );
        assert_eq!(
            decode(
                &mut d,
                &hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")
            )
            .unwrap(),
            pairs(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ])
        );
        assert_eq!(d.size, 164);
    }

    /// RFC 7541 C.5: responses with a 256-byte table, with evictions.
    #[test]
    fn rfc_c5_responses_with_eviction() {
        let mut d = Decoder::new(false, 1 << 16);
        d.max_size = 256;
        let first = decode(
            &mut d,
            &hex(
                "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420
                 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77
                 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            ),
        )
        .unwrap();
        assert_eq!(first[0], Some((":status".into(), "302".into())));
        assert_eq!(d.size, 222);
        let second = decode(&mut d, &hex("4803 3330 37c1 c0bf")).unwrap();
        assert_eq!(second[0], Some((":status".into(), "307".into())));
        assert_eq!(
            second[3],
            Some(("location".into(), "https://www.example.com".into()))
        );
        assert_eq!(d.size, 222);
        assert_eq!(d.table.len(), 4);
    }

    /// A capture that starts mid-connection: unseen entries are unknown, seen ones resolve,
    /// static ones always do.
    #[test]
    fn mid_stream_references_are_unknown_not_errors() {
        let mut d = Decoder::new(true, 1 << 16);
        // Indexed 62 (never seen), then :method GET (static), then a literal indexed.
        let out = decode(&mut d, &hex("be 82 40 0161 0162")).unwrap();
        assert_eq!(
            out,
            vec![
                None,
                Some((":method".into(), "GET".into())),
                Some(("a".into(), "b".into()))
            ]
        );
        // The new entry is 62; 63 still unknown.
        let out = decode(&mut d, &hex("be bf")).unwrap();
        assert_eq!(out, vec![Some(("a".into(), "b".into())), None]);
        assert_eq!(d.unknown_fields, 2);
        // A synchronised decoder refuses the same reference.
        let mut d = Decoder::new(false, 1 << 16);
        assert_eq!(decode(&mut d, &hex("be")), Err(HpackError::BadIndex));
        assert!(d.is_uncertain(), "an error desynchronises");
    }

    #[test]
    fn size_updates_are_checked() {
        let mut d = Decoder::new(false, 1 << 16);
        assert_eq!(
            decode(&mut d, &hex("3fe1 1f 82")),
            Ok(pairs(&[(":method", "GET")]))
        );
        assert_eq!(d.max_size, 4096);
        assert_eq!(
            decode(&mut d, &hex("3fe2 1f")),
            Err(HpackError::TableSizeTooLarge)
        );
        let mut d = Decoder::new(false, 1 << 16);
        assert_eq!(
            decode(&mut d, &hex("82 20")),
            Err(HpackError::LateSizeUpdate)
        );
        d.set_allowed_size(8192);
        assert!(decode(&mut d, &hex("3fe1 3f 82")).is_ok());
        assert_eq!(d.max_size, 8192);
    }

    #[test]
    fn observer_cap_turns_references_unknown() {
        let mut d = Decoder::new(false, 40);
        decode(&mut d, &hex("40 0161 0162 40 0163 0164")).unwrap();
        // Only "c: d" (34 bytes) fits the 40-byte cap; "a: b" was dropped but exists.
        assert_eq!(
            decode(&mut d, &hex("be bf")).unwrap(),
            vec![Some(("c".into(), "d".into())), None]
        );
    }

    #[test]
    fn hostile_blocks_never_panic() {
        let mut d = Decoder::new(true, 4096);
        for block in [
            &[0xff][..],
            &[0x00, 0xff, 0xff, 0xff, 0xff, 0x0f],
            &[0x40, 0x85, 0xff, 0xff],
            &[0x80],
            &[0x3f, 0xff, 0xff, 0xff, 0xff, 0xff],
        ] {
            let _ = decode(&mut d, block);
        }
    }
}
