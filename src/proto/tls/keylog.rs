//! The NSS key log format: `LABEL <client_random> <secret>` lines, both values in hex, as
//! written by NSS, OpenSSL, BoringSSL, curl and browsers via `SSLKEYLOGFILE`
//! (<https://udn.realityripple.com/docs/Mozilla/Projects/NSS/Key_Log_Format>).
//!
//! [`KeyLog::add`] never fails: the key log is the user's own input, but one bad line must not
//! cost the secrets on every other line, so each line is classified (entry, comment, blank,
//! malformed, unknown label) and counted in [`KeyLogStats`]. Secrets are held in [`Secret`],
//! which zeroes its memory on drop and whose `Debug` prints only its length. A later line for
//! the same label and client random replaces an earlier one (and is counted as a duplicate).

use hashbrown::HashTable;
use std::fmt;
use std::hash::BuildHasher;
use zeroize::Zeroizing;

/// A key log line longer than this is malformed. The longest legal line is
/// `CLIENT_HANDSHAKE_TRAFFIC_SECRET` + 64 + 96 hex digits + 2 separators, about 195 bytes;
/// anything far beyond that is not a key log line, and is skipped without being copied.
pub const MAX_LINE_LEN: usize = 1024;

/// Secret bytes: zeroed on drop; `Debug` shows only the length. An exact-sized box, not
/// a `Vec`: a key log of 100k sessions keeps four or five per session.
#[derive(Clone)]
pub struct Secret(Zeroizing<Box<[u8]>>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        // `into_boxed_slice` may reallocate; zero what it leaves behind.
        let bytes = Zeroizing::new(bytes);
        Secret(Zeroizing::new(bytes.as_slice().into()))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for Secret {
    fn from(bytes: Vec<u8>) -> Self {
        Secret::new(bytes)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

impl From<&[u8]> for Secret {
    fn from(bytes: &[u8]) -> Self {
        Secret(Zeroizing::new(bytes.into()))
    }
}

/// Everything a key log holds for one client random: the secrets decryption uses, one
/// after the other in [`Label`] order in one exact-sized allocation. A key log of 100k
/// sessions kept a box of eight optional secrets and a box for each secret per session
/// (about 450 bytes with the allocator's headers; now about 250).
#[derive(Default, Clone)]
pub struct SessionSecrets {
    /// Length of each label's secret in `bytes`; 0 when not logged.
    lens: [u8; LABELS],
    /// Labels logged, including those whose secret is not kept (the exporter secrets).
    seen: u8,
    bytes: Zeroizing<Box<[u8]>>,
}

impl SessionSecrets {
    /// The secret logged under `label`, when it was logged and is kept.
    pub fn get(&self, label: Label) -> Option<&[u8]> {
        let i = label as usize;
        let len = usize::from(*self.lens.get(i)?);
        let at: usize = self.lens.iter().take(i).map(|&l| usize::from(l)).sum();
        (len > 0).then(|| self.bytes.get(at..at + len)).flatten()
    }

    /// Whether a line with `label` was logged, kept or not.
    pub fn has(&self, label: Label) -> bool {
        self.seen & (1 << label as u8) != 0
    }

    /// Sets `label`'s secret; true when it replaced one.
    fn set(&mut self, label: Label, secret: &[u8]) -> bool {
        let was = self.has(label);
        self.seen |= 1 << label as u8;
        let i = label as usize;
        let at: usize = self.lens.iter().take(i).map(|&l| usize::from(l)).sum();
        // A secret is at most 48 bytes (`Label::length_ok`); the length is kept in a byte.
        let (Some(len), true, Ok(new_len)) = (
            self.lens.get_mut(i),
            label.kept(),
            u8::try_from(secret.len()),
        ) else {
            return was;
        };
        let (before, rest) = self.bytes.split_at(at.min(self.bytes.len()));
        let after = rest.get(usize::from(*len)..).unwrap_or_default();
        let mut bytes = Zeroizing::new(Vec::with_capacity(
            before.len() + secret.len() + after.len(),
        ));
        bytes.extend_from_slice(before);
        bytes.extend_from_slice(secret);
        bytes.extend_from_slice(after);
        self.bytes = Zeroizing::new(bytes.as_slice().into());
        *len = new_len;
        was
    }
}

impl fmt::Debug for SessionSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SessionSecrets");
        for label in Label::ALL {
            if let Some(s) = self.get(label) {
                d.field(label.name(), &format_args!("Secret({} bytes)", s.len()));
            }
        }
        d.finish()
    }
}

/// How the lines of a key log were classified. Every line counts in `lines` and in exactly
/// one of `entries`, `comments`, `blank`, `malformed`, `unknown_labels`; `duplicates` is
/// the subset of `entries` that replaced an earlier value.
#[derive(Default, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyLogStats {
    pub lines: u64,
    pub entries: u64,
    pub comments: u64,
    pub blank: u64,
    pub malformed: u64,
    pub unknown_labels: u64,
    pub duplicates: u64,
}

/// The secrets of a key log, by client random.
#[derive(Clone, Default)]
pub struct KeyLog {
    /// Shared by clones (each owner of connections has one, with its own record budget);
    /// copied only when a clone adds to it.
    sessions: std::sync::Arc<Sessions>,
    stats: KeyLogStats,
    /// Bytes of encrypted records a session may hold waiting for its keys; 0 unless the key
    /// log is still growing (live capture following SSLKEYLOGFILE).
    hold: usize,
    /// All sessions together hold at most this much; `held` is what they hold now.
    hold_total: usize,
    held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Lines may still be added while traffic is analysed (see [`KeyLog::set_growing`]).
    growing: bool,
    /// What decrypting sessions hold of records on their way; shared by clones, except
    /// those made by [`KeyLog::with_record_budget`].
    records: std::sync::Arc<super::record::RecordBudget>,
}

/// The sessions of a key log: a list, and an index of it by client random. A map of
/// `SessionSecrets` by client random kept its 64-byte slots in a power of two, about half of
/// them empty after it doubled (8.4 MB for 72k sessions, against 4.6 MB of list and 0.7 MB of
/// index); the list grows by an eighth at a time, so its spare room stays small too.
#[derive(Clone, Default)]
struct Sessions {
    list: Vec<([u8; 32], SessionSecrets)>,
    /// Positions in `list`.
    index: HashTable<u32>,
    /// Seeded: a pcapng's Decryption Secrets Block is capture input, so client randoms may
    /// be chosen to collide.
    hasher: foldhash::fast::RandomState,
}

impl Sessions {
    fn get(&self, random: &[u8; 32]) -> Option<&SessionSecrets> {
        let at = self.index.find(self.hasher.hash_one(random), |&i| {
            self.random(i) == Some(random)
        })?;
        self.list.get(*at as usize).map(|(_, s)| s)
    }

    fn random(&self, i: u32) -> Option<&[u8; 32]> {
        self.list.get(i as usize).map(|(r, _)| r)
    }

    /// The secrets of `random`, made empty if it had none. `None` past 2^32 sessions, which
    /// positions in the index cannot name (a key log of some 600 GB).
    fn entry(&mut self, random: [u8; 32]) -> Option<&mut SessionSecrets> {
        let hash = self.hasher.hash_one(random);
        let found = self
            .index
            .find(hash, |&i| self.random(i) == Some(&random))
            .copied();
        let at = match found {
            Some(at) => at,
            None => {
                let at = u32::try_from(self.list.len()).ok()?;
                if self.list.len() == self.list.capacity() {
                    self.list.reserve_exact(self.list.len() / 8 + 16);
                }
                self.list.push((random, SessionSecrets::default()));
                let (list, hasher) = (&self.list, &self.hasher);
                self.index.insert_unique(hash, at, |&i| {
                    list.get(i as usize).map_or(0, |(r, _)| hasher.hash_one(r))
                });
                at
            }
        };
        self.list.get_mut(at as usize).map(|(_, s)| s)
    }
}

impl fmt::Debug for KeyLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyLog")
            .field("sessions", &self.sessions.list.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// The labels of the key log format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// `CLIENT_RANDOM`: the TLS 1.2 (and earlier) master secret, 48 bytes.
    ClientRandom,
    /// `CLIENT_HANDSHAKE_TRAFFIC_SECRET`, and the others of TLS 1.3 by their names.
    ClientHandshake,
    ServerHandshake,
    ClientTraffic0,
    ServerTraffic0,
    Exporter,
    ClientEarly,
    EarlyExporter,
}

const LABELS: usize = 8;

impl Label {
    const ALL: [Label; LABELS] = [
        Label::ClientRandom,
        Label::ClientHandshake,
        Label::ServerHandshake,
        Label::ClientTraffic0,
        Label::ServerTraffic0,
        Label::Exporter,
        Label::ClientEarly,
        Label::EarlyExporter,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Label::ClientRandom => "CLIENT_RANDOM",
            Label::ClientHandshake => "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            Label::ServerHandshake => "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            Label::ClientTraffic0 => "CLIENT_TRAFFIC_SECRET_0",
            Label::ServerTraffic0 => "SERVER_TRAFFIC_SECRET_0",
            Label::Exporter => "EXPORTER_SECRET",
            Label::ClientEarly => "CLIENT_EARLY_TRAFFIC_SECRET",
            Label::EarlyExporter => "EARLY_EXPORTER_SECRET",
        }
    }

    fn parse(label: &[u8]) -> Option<Label> {
        Label::ALL
            .into_iter()
            .find(|l| l.name().as_bytes() == label)
    }

    /// The TLS 1.2 master secret is always 48 bytes (RFC 5246 §8.1); TLS 1.3 secrets are
    /// one hash output long (RFC 8446 §7.1), 32 or 48 bytes for the SHA-256/384 suites.
    fn length_ok(self, len: usize) -> bool {
        match self {
            Label::ClientRandom => len == 48,
            _ => len == 32 || len == 48,
        }
    }

    /// Exporter secrets derive keys for other protocols, never for records: they are
    /// counted, not kept.
    fn kept(self) -> bool {
        !matches!(self, Label::Exporter | Label::EarlyExporter)
    }
}

/// What one line turned out to be.
enum Line {
    Blank,
    Comment,
    Malformed,
    UnknownLabel,
    /// The label, the client random, and the secret's length in the caller's buffer.
    Entry(Label, [u8; 32], usize),
}

impl KeyLog {
    pub fn new() -> Self {
        KeyLog::default()
    }

    /// Parses `text` (whole lines; a line is not joined across calls) and merges its
    /// entries. LF or CRLF line ends; a missing final newline is fine; a UTF-8 byte order
    /// mark before the first line is ignored.
    pub fn add(&mut self, text: &[u8]) {
        let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
        if text.is_empty() {
            return;
        }
        // The newline ends the last line; it does not start an empty one.
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        // Each line's secret is decoded here, wiped at the end, never moved by value.
        let mut secret = Zeroizing::new([0u8; 48]);
        for line in text.split(|&b| b == b'\n') {
            self.stats.lines += 1;
            match classify(line, &mut secret) {
                Line::Blank => self.stats.blank += 1,
                Line::Comment => self.stats.comments += 1,
                Line::Malformed => self.stats.malformed += 1,
                Line::UnknownLabel => self.stats.unknown_labels += 1,
                Line::Entry(label, random, len) => {
                    self.stats.entries += 1;
                    let sessions = std::sync::Arc::make_mut(&mut self.sessions);
                    if sessions
                        .entry(random)
                        .is_some_and(|s| s.set(label, secret.get(..len).unwrap_or_default()))
                    {
                        self.stats.duplicates += 1;
                    }
                }
            }
        }
    }

    pub fn get(&self, client_random: &[u8; 32]) -> Option<&SessionSecrets> {
        self.sessions.get(client_random)
    }

    pub fn stats(&self) -> &KeyLogStats {
        &self.stats
    }

    /// The budget of record bytes that decrypting sessions share (see
    /// [`RecordBudget`](super::record::RecordBudget)).
    pub fn record_budget(&self) -> &super::record::RecordBudget {
        &self.records
    }

    /// The same budget, to keep.
    pub fn record_budget_handle(&self) -> std::sync::Arc<super::record::RecordBudget> {
        std::sync::Arc::clone(&self.records)
    }

    /// A copy for one owner of connections (a thread's share): the same secrets, not
    /// copied, and a record budget of its own of `limit` bytes, so that which records
    /// stream depends only on that owner's connections, never on another thread's timing.
    /// Records streamed are still counted together.
    pub fn with_record_budget(&self, limit: usize) -> KeyLog {
        KeyLog {
            records: std::sync::Arc::new(self.records.share(limit)),
            ..self.clone()
        }
    }

    /// The key log will grow while traffic is analysed: a TLS session whose keys are not
    /// there yet holds up to `per_session` bytes of its encrypted records until they come,
    /// all sessions together up to `total`.
    pub fn set_growing(&mut self, per_session: usize, total: usize) {
        self.hold = per_session;
        self.hold_total = total;
        self.growing = true;
    }

    /// Whether a session without keys may still find them later (even with nothing held).
    pub fn can_grow(&self) -> bool {
        self.growing
    }

    /// See [`KeyLog::set_growing`]; 0 when the key log is complete.
    pub fn hold_for_keys(&self) -> usize {
        self.hold
    }

    /// Reserves `n` held bytes from the shared budget; the handle gives them back.
    pub fn reserve_hold(&self, n: usize) -> Option<std::sync::Arc<std::sync::atomic::AtomicUsize>> {
        use std::sync::atomic::Ordering;
        let prev = self.held.fetch_add(n, Ordering::Relaxed);
        if prev.saturating_add(n) > self.hold_total {
            self.held.fetch_sub(n, Ordering::Relaxed);
            return None;
        }
        Some(std::sync::Arc::clone(&self.held))
    }

    /// Number of distinct client randoms.
    pub fn len(&self) -> usize {
        self.sessions.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.list.is_empty()
    }
}

/// Classifies one line; an entry's secret is decoded into `secret_out`.
fn classify(line: &[u8], secret_out: &mut [u8; 48]) -> Line {
    // Checked before anything else so that a huge line costs one comparison, no copy.
    if line.len() > MAX_LINE_LEN {
        return Line::Malformed;
    }
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.trim_ascii();
    if line.is_empty() {
        return Line::Blank;
    }
    if line.starts_with(b"#") {
        return Line::Comment;
    }
    let mut fields = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let (Some(label), Some(random), Some(secret), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Line::Malformed;
    };
    let Some(label) = Label::parse(label) else {
        return Line::UnknownLabel;
    };
    let mut client_random = [0u8; 32];
    if !decode_hex_into(random, &mut client_random) {
        return Line::Malformed;
    }
    if secret.len() % 2 != 0 || !label.length_ok(secret.len() / 2) {
        return Line::Malformed;
    }
    let len = secret.len() / 2;
    if !secret_out
        .get_mut(..len)
        .is_some_and(|b| decode_hex_into(secret, b))
    {
        return Line::Malformed;
    }
    Line::Entry(label, client_random, len)
}

/// Decodes `hex` into exactly `out.len()` bytes; false on a wrong length or a non-hex digit.
fn decode_hex_into(hex: &[u8], out: &mut [u8]) -> bool {
    if hex.len() != out.len() * 2 {
        return false;
    }
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (Some(hi), Some(lo)) = (
            pair.first().copied().and_then(nibble),
            pair.get(1).copied().and_then(nibble),
        ) else {
            return false;
        };
        *o = (hi << 4) | lo;
    }
    true
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "0101010101010101010101010101010101010101010101010101010101010101";
    const R2: &str = "02020202020202020202020202020202020202020202020202020202020202aA";

    fn hex(n: usize, byte: &str) -> String {
        byte.repeat(n)
    }

    fn sum(s: &KeyLogStats) -> u64 {
        s.entries + s.comments + s.blank + s.malformed + s.unknown_labels
    }

    #[test]
    fn every_label_fills_its_field() {
        let labels = [
            "CLIENT_RANDOM",
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            "CLIENT_TRAFFIC_SECRET_0",
            "SERVER_TRAFFIC_SECRET_0",
            "EXPORTER_SECRET",
            "CLIENT_EARLY_TRAFFIC_SECRET",
            "EARLY_EXPORTER_SECRET",
        ];
        let mut text = String::new();
        for (i, l) in labels.iter().enumerate() {
            // A distinct first byte per label tells the fields apart.
            text.push_str(&format!("{l} {R1} {:02x}{}\n", i + 1, hex(47, "ab")));
        }
        let mut log = KeyLog::new();
        log.add(text.as_bytes());
        assert_eq!(log.len(), 1);
        assert_eq!(log.stats().entries, 8);
        let s = log.get(&[1; 32]).unwrap();
        let first = |x: Option<&[u8]>| x.map(|s| (s.len(), s[0]));
        assert_eq!(first(s.get(Label::ClientRandom)), Some((48, 1)));
        assert_eq!(first(s.get(Label::ClientHandshake)), Some((48, 2)));
        assert_eq!(first(s.get(Label::ServerHandshake)), Some((48, 3)));
        assert_eq!(first(s.get(Label::ClientTraffic0)), Some((48, 4)));
        assert_eq!(first(s.get(Label::ServerTraffic0)), Some((48, 5)));
        assert_eq!(first(s.get(Label::ClientEarly)), Some((48, 7)));
        // Exporter secrets are counted, not kept.
        for l in [Label::Exporter, Label::EarlyExporter] {
            assert!(s.has(l) && s.get(l).is_none());
        }
        assert!(log.get(&[2; 32]).is_none());
        // Labels arriving in any order, some again with another length, land in place.
        let mut log = KeyLog::new();
        for (i, l) in labels.iter().enumerate().rev() {
            let len = if i % 2 == 0 { 48 } else { 32 };
            let len = if i == 0 { 48 } else { len };
            log.add(format!("{l} {R1} {:02x}{}\n", i + 1, hex(len - 1, "cd")).as_bytes());
        }
        log.add(format!("SERVER_TRAFFIC_SECRET_0 {R1} 99{}\n", hex(47, "ef")).as_bytes());
        let s = log.get(&[1; 32]).unwrap();
        assert_eq!(log.stats().duplicates, 1);
        assert_eq!(first(s.get(Label::ClientRandom)), Some((48, 1)));
        assert_eq!(first(s.get(Label::ClientHandshake)), Some((32, 2)));
        assert_eq!(first(s.get(Label::ServerHandshake)), Some((48, 3)));
        assert_eq!(first(s.get(Label::ClientTraffic0)), Some((32, 4)));
        assert_eq!(first(s.get(Label::ServerTraffic0)), Some((48, 0x99)));
        assert_eq!(first(s.get(Label::ClientEarly)), Some((48, 7)));
        assert_eq!(s.get(Label::ClientEarly).unwrap()[47], 0xcd);
    }

    #[test]
    fn comments_blank_lines_crlf_and_case() {
        let text = format!(
            "\u{feff}# SSL/TLS secrets log file, generated by NSS\r\n\r\n   \n\t# indented\n\
             CLIENT_RANDOM {R2} {}\r\nCLIENT_TRAFFIC_SECRET_0  {R1}\t{}",
            hex(48, "Fe"),
            hex(32, "07")
        );
        let mut log = KeyLog::new();
        log.add(text.as_bytes());
        let st = log.stats();
        assert_eq!(
            (st.lines, st.comments, st.blank, st.entries, st.malformed),
            (6, 2, 2, 2, 0)
        );
        let mut r2 = [2u8; 32];
        r2[31] = 0xaa;
        let s = log.get(&r2).unwrap();
        assert_eq!(s.get(Label::ClientRandom), Some(&[0xfe; 48][..]));
        let s = log.get(&[1; 32]).unwrap();
        assert_eq!(s.get(Label::ClientTraffic0), Some(&[7; 32][..]));
        assert_eq!(sum(st), st.lines);
    }

    #[test]
    fn malformed_lines_are_counted_and_skipped() {
        let ms = hex(48, "11");
        let lines = [
            format!("CLIENT_RANDOM {R1}"),                     // missing field
            "CLIENT_RANDOM".to_string(),                       // missing fields
            format!("CLIENT_RANDOM {R1} {ms} extra"),          // extra field
            format!("CLIENT_RANDOM {} {ms}", &R1[..62]),       // short random
            format!("CLIENT_RANDOM {R1}00 {ms}"),              // long random
            format!("CLIENT_RANDOM {}zz {ms}", &R1[..62]),     // bad hex in random
            format!("CLIENT_RANDOM {R1} {}", hex(47, "11")),   // 47-byte master secret
            format!("CLIENT_RANDOM {R1} {}", hex(32, "11")),   // 32-byte master secret
            format!("CLIENT_RANDOM {R1} {}1", hex(48, "11")),  // odd number of digits
            format!("CLIENT_RANDOM {R1} {}g1", hex(47, "11")), // bad hex in secret
            format!("SERVER_TRAFFIC_SECRET_0 {R1} {}", hex(40, "11")), // no such hash length
            format!("CLIENT_RANDOM {R1} +{}", &ms[1..]),       // sign is not a digit
        ];
        let mut log = KeyLog::new();
        log.add(lines.join("\n").as_bytes());
        let st = log.stats().clone();
        assert_eq!(st.malformed, lines.len() as u64, "{st:?}");
        assert_eq!(st.entries, 0);
        assert!(log.is_empty());
        assert_eq!(sum(&st), st.lines);
    }

    #[test]
    fn unknown_labels_are_counted() {
        let text = format!(
            "CLIENT_TRAFFIC_SECRET_N {R1} {}\nRSA 0011223344556677 {}\nclient_random {R1} {}\n",
            hex(32, "22"),
            hex(48, "33"),
            hex(48, "44")
        );
        let mut log = KeyLog::new();
        log.add(text.as_bytes());
        assert_eq!(log.stats().unknown_labels, 3);
        assert!(log.is_empty());
    }

    #[test]
    fn duplicates_replace_and_are_counted() {
        let mut log = KeyLog::new();
        log.add(format!("CLIENT_RANDOM {R1} {}\n", hex(48, "01")).as_bytes());
        log.add(format!("CLIENT_RANDOM {R1} {}\n", hex(48, "02")).as_bytes());
        log.add(format!("CLIENT_HANDSHAKE_TRAFFIC_SECRET {R1} {}\n", hex(32, "03")).as_bytes());
        let st = log.stats();
        assert_eq!((st.lines, st.entries, st.duplicates), (3, 3, 1));
        assert_eq!(log.len(), 1);
        let s = log.get(&[1; 32]).unwrap();
        assert_eq!(s.get(Label::ClientRandom), Some(&[2; 48][..]));
    }

    #[test]
    fn many_sessions_added_in_several_parts_are_each_found() {
        // Enough to grow the list and its index many times, in parts as a live capture adds
        // them, each session's lines apart from each other as browsers interleave them.
        let random = |n: u32| {
            let mut r = [0u8; 32];
            r[..4].copy_from_slice(&n.to_be_bytes());
            r
        };
        let line = |label: &str, n: u32, len: usize| {
            let r: String = random(n).iter().map(|b| format!("{b:02x}")).collect();
            format!("{label} {r} {}\n", hex(len, &format!("{:02x}", n % 251)))
        };
        let mut log = KeyLog::new();
        for part in 0..4u32 {
            let range = part * 5000..(part + 1) * 5000;
            let mut text: String = range
                .clone()
                .map(|n| line("CLIENT_HANDSHAKE_TRAFFIC_SECRET", n, 32))
                .collect();
            text.extend(range.map(|n| line("SERVER_TRAFFIC_SECRET_0", n, 48)));
            log.add(text.as_bytes());
        }
        assert_eq!((log.len(), log.stats().duplicates), (20_000, 0));
        for n in [0, 1, 4999, 5000, 12_345, 19_999] {
            let s = log.get(&random(n)).unwrap();
            let fill = (n % 251) as u8;
            assert_eq!(s.get(Label::ClientHandshake), Some(&[fill; 32][..]));
            assert_eq!(s.get(Label::ServerTraffic0), Some(&[fill; 48][..]));
        }
        assert!(log.get(&random(20_000)).is_none());
        // Its spare room stays an eighth or so, not the half a doubling leaves.
        assert!(log.sessions.list.capacity() <= 20_000 + 20_000 / 8 + 16);
    }

    #[test]
    fn huge_line_is_malformed_and_neighbours_survive() {
        let huge = format!("CLIENT_RANDOM {R1} {}", hex(4000, "11"));
        let text = format!(
            "{huge}\nCLIENT_RANDOM {R2} {}\n{}\n",
            hex(48, "05"),
            "#".repeat(MAX_LINE_LEN + 1)
        );
        let mut log = KeyLog::new();
        log.add(text.as_bytes());
        let st = log.stats();
        assert_eq!((st.lines, st.malformed, st.entries), (3, 2, 1));
    }

    #[test]
    fn empty_input_and_debug_hide_secrets() {
        let mut log = KeyLog::new();
        log.add(b"");
        log.add(b"\n");
        assert_eq!(log.stats().lines, 1);
        assert_eq!(log.stats().blank, 1);
        log.add(format!("CLIENT_RANDOM {R1} {}", hex(48, "5a")).as_bytes());
        let s = log.get(&[1; 32]).unwrap();
        let dbg = format!("{s:?} {log:?}");
        assert!(dbg.contains("CLIENT_RANDOM: Secret(48 bytes)"), "{dbg}");
        assert!(!dbg.contains("5a") && !dbg.contains("90"), "{dbg}");
    }
}
