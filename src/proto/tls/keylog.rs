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

/// Where a key log keeps one client random's secrets: one after the other in [`Label`] order,
/// at `at` in the key log's one buffer of secrets, in a room sized at the session's first
/// line for the lines that usually follow ([`Label::session_room`]), so that a browser's key
/// log, whose sessions' lines are interleaved, fills each room in place. A key log of 100k
/// sessions kept a box of eight optional secrets and a box for each secret per session
/// (about 450 bytes with the allocator's headers), then one exact-sized box per session
/// (about 210 bytes with its list entry); now 48 bytes of list entry and the secrets.
#[derive(Default, Clone, Copy)]
struct Slot {
    /// Length of each label's secret; 0 when not logged.
    lens: [u8; LABELS],
    /// Labels logged, including those whose secret is not kept (the exporter secrets).
    seen: u8,
    /// Bytes at `at` that are the session's (its secrets first, then zeros).
    room: u16,
    at: u32,
}

impl Slot {
    fn has(&self, label: Label) -> bool {
        self.seen & (1 << label as u8) != 0
    }

    fn total(&self) -> usize {
        self.lens.iter().map(|&l| usize::from(l)).sum()
    }

    /// Where `label`'s secret lies among the session's: offset and length.
    fn place(&self, label: Label) -> Option<(usize, usize)> {
        let i = label as usize;
        let len = usize::from(*self.lens.get(i)?);
        let at = self.lens.iter().take(i).map(|&l| usize::from(l)).sum();
        Some((at, len))
    }
}

/// Everything a key log holds for one client random: the secrets decryption uses.
#[derive(Clone, Copy)]
pub struct SessionSecrets<'a> {
    slot: Slot,
    /// The session's secrets, one after the other.
    bytes: &'a [u8],
}

impl<'a> SessionSecrets<'a> {
    /// The secret logged under `label`, when it was logged and is kept.
    pub fn get(&self, label: Label) -> Option<&'a [u8]> {
        let (at, len) = self.slot.place(label)?;
        (len > 0).then(|| self.bytes.get(at..at + len)).flatten()
    }

    /// Whether a line with `label` was logged, kept or not.
    pub fn has(&self, label: Label) -> bool {
        self.slot.has(label)
    }
}

impl fmt::Debug for SessionSecrets<'_> {
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

/// The sessions of a key log: a list, an index of it by client random, and every session's
/// secrets in one buffer. A map of sessions by client random kept its 64-byte slots in a
/// power of two, about half of them empty after it doubled (8.4 MB for 72k sessions, against
/// 4.6 MB of list and 0.7 MB of index); the list and the buffer grow by an eighth at a time,
/// so their spare room stays small too.
#[derive(Clone, Default)]
struct Sessions {
    list: Vec<([u8; 32], Slot)>,
    /// Positions in `list`.
    index: HashTable<u32>,
    /// Seeded: a pcapng's Decryption Secrets Block is capture input, so client randoms may
    /// be chosen to collide.
    hasher: foldhash::fast::RandomState,
    /// The sessions' secrets. Grown by copying into a new buffer, so that the old one is
    /// wiped when dropped (a `Vec` growing in place would leave copies unwiped).
    secrets: Zeroizing<Vec<u8>>,
    /// Bytes of `secrets` no session points to any more (the rooms of sessions that outgrew
    /// them and moved to the end); wiped, and packed away when they are half the buffer.
    stale: usize,
}

/// The most a session keeps: six kept labels of at most 48 bytes.
const SESSION_MAX: usize = 6 * 48;

impl Sessions {
    fn get(&self, random: &[u8; 32]) -> Option<SessionSecrets<'_>> {
        let at = self.index.find(self.hasher.hash_one(random), |&i| {
            self.random(i) == Some(random)
        })?;
        let &(_, slot) = self.list.get(*at as usize)?;
        let start = slot.at as usize;
        let bytes = self.secrets.get(start..start + slot.total())?;
        Some(SessionSecrets { slot, bytes })
    }

    fn random(&self, i: u32) -> Option<&[u8; 32]> {
        self.list.get(i as usize).map(|(r, _)| r)
    }

    /// Sets `label`'s secret for `random`; true when it replaced one. Nothing is kept past
    /// 2^32 sessions or 4 GiB of secrets, which positions cannot name (a key log of some
    /// 600 GB, or of 15 million sessions).
    fn set(&mut self, random: [u8; 32], label: Label, secret: &[u8]) -> bool {
        let Some(i) = self.entry(random, Label::session_room(label, secret.len())) else {
            return false;
        };
        let Some((_, slot)) = self.list.get_mut(i) else {
            return false;
        };
        let was = slot.has(label);
        slot.seen |= 1 << label as u8;
        // A secret is at most 48 bytes (`Label::length_ok`); its length is kept in a byte.
        let (Some((at, len)), true, Ok(new_len)) =
            (slot.place(label), label.kept(), u8::try_from(secret.len()))
        else {
            return was;
        };
        // The session's secrets with this one in its place.
        let old = *slot;
        let (start, total, room) = (old.at as usize, old.total(), usize::from(old.room));
        let mut new = Zeroizing::new([0u8; SESSION_MAX]);
        let new_total = total - len + secret.len();
        let (Some(before), Some(after), Some(dst)) = (
            self.secrets.get(start..start + at),
            self.secrets.get(start + at + len..start + total),
            new.get_mut(..new_total),
        ) else {
            return was;
        };
        let (head, rest) = dst.split_at_mut(before.len());
        head.copy_from_slice(before);
        let (mid, tail) = rest.split_at_mut(secret.len());
        mid.copy_from_slice(secret);
        tail.copy_from_slice(after);
        let new = new.get(..new_total).unwrap_or_default();
        // In its room when it fits, else at the end (in place when it is there already).
        let (new_at, new_room) = if new_total <= room {
            (start, room)
        } else if start + room == self.secrets.len() {
            (start, new_total)
        } else {
            (self.secrets.len(), new_total)
        };
        let (Ok(new_at), Ok(_), Ok(new_room)) = (
            u32::try_from(new_at),
            u32::try_from(new_at + new_room),
            u16::try_from(new_room),
        ) else {
            return was;
        };
        // Old bytes are wiped wherever the secrets go.
        if let Some(old) = self.secrets.get_mut(start..start + room) {
            old.fill(0);
        }
        if new_at as usize == start && new_total <= room {
            if let Some(dst) = self.secrets.get_mut(start..start + new_total) {
                dst.copy_from_slice(new);
            }
        } else {
            if new_at as usize == start {
                self.secrets.truncate(start);
            } else {
                self.stale += room;
            }
            self.append(new);
        }
        if let Some((_, slot)) = self.list.get_mut(i) {
            slot.at = new_at;
            slot.room = new_room;
            if let Some(l) = slot.lens.get_mut(label as usize) {
                *l = new_len;
            }
        }
        if self.stale > self.secrets.len() / 2 {
            self.compact();
        }
        was
    }

    /// Makes room for `more` bytes of secrets at once (see [`KeyLog::add`]).
    fn reserve(&mut self, more: usize) {
        let len = self.secrets.len();
        if self.secrets.capacity() - len < more {
            self.regrow(len + more);
        }
    }

    /// Moves `secrets` into a new buffer of `capacity`, so that the old one is wiped as it
    /// is dropped (a `Vec` growing in place would leave its old copy unwiped).
    fn regrow(&mut self, capacity: usize) {
        let mut grown = Zeroizing::new(Vec::with_capacity(capacity));
        grown.extend_from_slice(&self.secrets);
        self.secrets = grown;
    }

    /// Appends to `secrets`, growing it by an eighth when full.
    fn append(&mut self, bytes: &[u8]) {
        let len = self.secrets.len();
        if len + bytes.len() > self.secrets.capacity() {
            self.regrow(len + (len / 8).max(bytes.len()).max(4096));
        }
        self.secrets.extend_from_slice(bytes);
    }

    /// Rewrites `secrets` without the rooms sessions moved away from.
    fn compact(&mut self) {
        let live = self.secrets.len() - self.stale;
        let mut packed = Zeroizing::new(Vec::with_capacity(live + live / 8));
        for (_, slot) in &mut self.list {
            let start = slot.at as usize;
            let Some(bytes) = self.secrets.get(start..start + usize::from(slot.room)) else {
                continue;
            };
            // Fits: `packed` holds less than `secrets`, whose positions fit.
            slot.at = u32::try_from(packed.len()).unwrap_or(u32::MAX);
            packed.extend_from_slice(bytes);
        }
        self.secrets = packed;
        self.stale = 0;
    }

    /// The position of `random` in `list`, added with `room` bytes for its secrets if it had
    /// none; `None` past 2^32 sessions.
    fn entry(&mut self, random: [u8; 32], room: usize) -> Option<usize> {
        let hash = self.hasher.hash_one(random);
        if let Some(&at) = self.index.find(hash, |&i| self.random(i) == Some(&random)) {
            return Some(at as usize);
        }
        let at = u32::try_from(self.list.len()).ok()?;
        let slot = Slot {
            at: u32::try_from(self.secrets.len()).ok()?,
            room: u16::try_from(room).ok()?,
            ..Slot::default()
        };
        if u32::try_from(self.secrets.len() + room).is_err() {
            return None;
        }
        if self.list.len() == self.list.capacity() {
            self.list.reserve_exact(self.list.len() / 8 + 16);
        }
        self.list.push((random, slot));
        let (list, hasher) = (&self.list, &self.hasher);
        self.index.insert_unique(hash, at, |&i| {
            list.get(i as usize).map_or(0, |(r, _)| hasher.hash_one(r))
        });
        self.append([0; SESSION_MAX].get(..room).unwrap_or_default());
        Some(at as usize)
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

    /// The room a session whose first line is `label` with a secret of `len` bytes keeps
    /// for its secrets: the master secret in TLS 1.2, the four traffic secrets (five with
    /// 0-RTT) of one hash's length in TLS 1.3.
    fn session_room(label: Label, len: usize) -> usize {
        match label {
            Label::ClientRandom => len,
            Label::ClientEarly | Label::EarlyExporter => 5 * len,
            _ => 4 * len,
        }
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
        // The secrets' buffer is sized once for what the lines bring (a session's room is
        // what its lines fill), not grown by copies while they are read.
        let incoming = text.split(|&b| b == b'\n').map(kept_len).sum();
        if incoming > 0 {
            std::sync::Arc::make_mut(&mut self.sessions).reserve(incoming);
        }
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
                    if sessions.set(random, label, secret.get(..len).unwrap_or_default()) {
                        self.stats.duplicates += 1;
                    }
                }
            }
        }
    }

    pub fn get(&self, client_random: &[u8; 32]) -> Option<SessionSecrets<'_>> {
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
    let (label, random, secret) = match fields(line) {
        Ok(f) => f,
        Err(other) => return other,
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

/// A line's label, client random and secret, as text.
type Fields<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// A line's fields, or what else the line is.
fn fields(line: &[u8]) -> Result<Fields<'_>, Line> {
    // Checked before anything else so that a huge line costs one comparison, no copy.
    if line.len() > MAX_LINE_LEN {
        return Err(Line::Malformed);
    }
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.trim_ascii();
    if line.is_empty() {
        return Err(Line::Blank);
    }
    if line.starts_with(b"#") {
        return Err(Line::Comment);
    }
    let mut fields = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    match (fields.next(), fields.next(), fields.next(), fields.next()) {
        (Some(label), Some(random), Some(secret), None) => Ok((label, random, secret)),
        _ => Err(Line::Malformed),
    }
}

/// The bytes a line's secret will take among the key log's secrets, without decoding it.
fn kept_len(line: &[u8]) -> usize {
    match fields(line) {
        Ok((label, _, secret)) if Label::parse(label).is_some_and(Label::kept) => {
            (secret.len() / 2).min(48)
        }
        _ => 0,
    }
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
        // Each session's second line filled the room its first made (four secrets of the
        // first's length): nothing moved.
        assert_eq!(log.sessions.stale, 0);
        assert_eq!(log.sessions.secrets.len(), 20_000 * 4 * 32);
        check_rooms(&log.sessions);
    }

    /// Every byte of the secrets' buffer outside the sessions' rooms is wiped and counted
    /// stale, and the stale part stays under half the buffer.
    fn check_rooms(sessions: &Sessions) {
        let mut used = vec![false; sessions.secrets.len()];
        for (_, slot) in &sessions.list {
            let start = slot.at as usize;
            let room = &mut used[start..start + usize::from(slot.room)];
            assert!(room.iter().all(|u| !u), "rooms overlap");
            room.fill(true);
        }
        let outside = sessions.secrets.iter().zip(&used).filter(|(_, &u)| !u);
        assert!(outside.clone().all(|(&b, _)| b == 0));
        assert_eq!(outside.count(), sessions.stale);
        assert!(sessions.stale <= sessions.secrets.len() / 2);
    }

    #[test]
    fn sessions_that_outgrow_their_room_move_and_leave_it_wiped() {
        // A TLS 1.2 line first makes a room of 48 bytes; TLS 1.3 lines for the same random
        // (a key log that reuses randoms, or a hostile one) outgrow it, interleaved with
        // other sessions, so each moves to the end; the rooms left behind are wiped and,
        // once half the buffer, packed away.
        let random = |n: u32| {
            let mut r = [0u8; 32];
            r[..4].copy_from_slice(&n.to_be_bytes());
            r.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let mut log = KeyLog::new();
        let mut text = String::new();
        for n in 0..3000u32 {
            text += &format!("CLIENT_RANDOM {} {}\n", random(n), hex(48, "0a"));
        }
        for n in 0..3000u32 {
            text += &format!("CLIENT_TRAFFIC_SECRET_0 {} {}\n", random(n), hex(48, "0b"));
        }
        for n in 0..3000u32 {
            text += &format!("SERVER_TRAFFIC_SECRET_0 {} {}\n", random(n), hex(48, "0c"));
        }
        for n in 0..3000u32 {
            text += &format!(
                "SERVER_HANDSHAKE_TRAFFIC_SECRET {} {}\n",
                random(n),
                hex(48, "0e")
            );
        }
        log.add(text.as_bytes());
        check_rooms(&log.sessions);
        // Less than every room ever made: the stale ones were packed away.
        assert!(log.sessions.secrets.len() < 3000 * (48 + 96 + 144 + 192));
        for n in [0u32, 1, 1500, 2999] {
            let mut r = [0u8; 32];
            r[..4].copy_from_slice(&n.to_be_bytes());
            let s = log.get(&r).unwrap();
            assert_eq!(s.get(Label::ClientRandom), Some(&[0x0a; 48][..]));
            assert_eq!(s.get(Label::ClientTraffic0), Some(&[0x0b; 48][..]));
            assert_eq!(s.get(Label::ServerTraffic0), Some(&[0x0c; 48][..]));
            assert_eq!(s.get(Label::ServerHandshake), Some(&[0x0e; 48][..]));
        }
        // Rewritten in place when the session is last: a duplicate of another length.
        let mut r = [0u8; 32];
        r[..4].copy_from_slice(&2999u32.to_be_bytes());
        log.add(
            format!(
                "CLIENT_HANDSHAKE_TRAFFIC_SECRET {} {}",
                random(2999),
                hex(32, "0d")
            )
            .as_bytes(),
        );
        check_rooms(&log.sessions);
        let s = log.get(&r).unwrap();
        assert_eq!(s.get(Label::ClientHandshake), Some(&[0x0d; 32][..]));
        assert_eq!(s.get(Label::ServerTraffic0), Some(&[0x0c; 48][..]));
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
