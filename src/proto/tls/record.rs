//! TLS record framing of one direction's byte stream (RFC 8446 §5.1, RFC 5246 §6.2).
//!
//! Contract: [`RecordReader::feed`] takes in-order stream bytes in pieces of any size (a
//! record header may be cut between TCP segments) and yields each complete record as
//! `(content_type, version, fragment)`. At most one record is buffered, bounded by
//! [`MAX_RECORD_LEN`]; a header claiming more, or an impossible content type or version,
//! makes the stream unparseable: TLS has no markers to resynchronise on, so the reader stops
//! for good and says why.
//!
//! Told that long application-data records may stream ([`RecordReader::stream_long`]), the
//! reader hands such a record out in parts as its bytes come ([`Part`]) instead of holding it
//! until it is whole: the TLS session then opens it piece by piece (`opening`), and no
//! record-sized buffer is kept for it.
//!
//! Once told that application data cannot be decrypted ([`RecordReader::skip_application_data`]),
//! the reader hands such records out as soon as their header is read, with an empty
//! fragment, and passes over their bytes without keeping them: no copy, and no record-sized
//! buffer per connection while a record is on its way.

use crate::bytes::ThinBytes;
use crate::Timestamp;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Largest fragment a legal record can carry: 2^14 bytes of plaintext plus up to 2048 bytes of
/// TLS 1.2 expansion (RFC 5246 §6.2.3; TLS 1.3 allows only 256, RFC 8446 §5.2).
pub const MAX_RECORD_LEN: usize = (1 << 14) + 2048;

/// Application-data records shorter than this are always held until whole, even when
/// long ones stream: TLS 1.3 tells a record's real content type only at its end, and the
/// handshake messages that follow a handshake (tickets, key updates) are far shorter, so a
/// record this long is application data in practice.
pub const STREAM_FROM: usize = 4096;

pub const CHANGE_CIPHER_SPEC: u8 = 20;
pub const ALERT: u8 = 21;
pub const HANDSHAKE: u8 = 22;
pub const APPLICATION_DATA: u8 = 23;
pub const HEARTBEAT: u8 = 24;

/// Why a record stream could not be read on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The header claims a fragment longer than [`MAX_RECORD_LEN`].
    TooLong,
    /// A content type or protocol version no TLS peer sends.
    NotTls,
}

impl RecordError {
    pub fn reason(self) -> &'static str {
        match self {
            RecordError::TooLong => "record longer than the TLS maximum",
            RecordError::NotTls => "bytes that are not a TLS record",
        }
    }
}

/// Which part of its record a [`Record`] hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The whole fragment (or none of it, for a record passed over).
    Whole,
    /// A streamed record's header, and the first of its fragment's bytes (maybe none).
    First,
    /// More of a streamed record's fragment, in order.
    Middle,
    /// The end of a streamed record's fragment.
    Last,
}

/// One record's header fields and fragment, or a part of the fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub content_type: u8,
    pub version: u16,
    /// Empty for a record passed over (see [`RecordReader::skip_application_data`]); a
    /// piece of it for a streamed record.
    pub fragment: &'a [u8],
    /// The fragment's length as the header declares it.
    pub length: usize,
    pub part: Part,
    /// Capture time of the record's first byte: every part of a record carries it, so its
    /// plaintext is dated alike whether the record was held or streamed.
    pub at: Timestamp,
}

/// Whether five bytes look like a TLS record header (content type 20-24, version 3.0-3.4,
/// a length within bounds). Used for detection by content.
pub fn is_record_header(h: &[u8]) -> bool {
    match h {
        [t, 3, minor, hi, lo, ..] => {
            (CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(t)
                && *minor <= 4
                && usize::from(u16::from_be_bytes([*hi, *lo])) <= MAX_RECORD_LEN
        }
        _ => false,
    }
}

/// Bytes of incomplete records that the decrypting sessions of one owner of connections
/// hold (its [`KeyLog`](super::keylog::KeyLog)'s clones share one), against its share of
/// `Limits::max_tls_records_held`. Past the limit, sessions stream long application-data
/// records ([`RecordReader::stream_long`]) instead of holding them; each session charges
/// the whole length of the record it holds, what holding it costs at most. The records
/// streamed are counted over all owners.
#[derive(Debug)]
pub struct RecordBudget {
    limit: AtomicUsize,
    held: AtomicUsize,
    streamed: Arc<AtomicU64>,
}

impl Default for RecordBudget {
    fn default() -> Self {
        RecordBudget {
            limit: AtomicUsize::new(crate::Limits::default().max_tls_records_held),
            held: AtomicUsize::new(0),
            streamed: Arc::default(),
        }
    }
}

impl RecordBudget {
    /// A budget of `limit` bytes for another owner, counting streamed records with this one.
    pub fn share(&self, limit: usize) -> RecordBudget {
        RecordBudget {
            limit: AtomicUsize::new(limit),
            held: AtomicUsize::new(0),
            streamed: Arc::clone(&self.streamed),
        }
    }

    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Whether what is held has reached the limit.
    pub fn exhausted(&self) -> bool {
        self.held.load(Ordering::Relaxed) >= self.limit.load(Ordering::Relaxed)
    }

    /// Moves a session's charge from `from` to `to` bytes.
    pub fn recharge(&self, from: usize, to: usize) {
        if to > from {
            self.held.fetch_add(to - from, Ordering::Relaxed);
        } else if from > to {
            self.held.fetch_sub(from - to, Ordering::Relaxed);
        }
    }

    /// Counts a record that was streamed for want of budget.
    pub fn count_streamed(&self) {
        self.streamed.fetch_add(1, Ordering::Relaxed);
    }

    /// Records streamed so far, by every session sharing this budget.
    pub fn streamed(&self) -> u64 {
        self.streamed.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct RecordReader {
    /// The start of a record that is not whole yet, dropped once it is whole.
    buf: ThinBytes,
    failed: Option<RecordError>,
    skip_application_data: bool,
    /// Long application-data records may stream (see [`RecordReader::stream_long`]).
    stream_long: bool,
    /// Bytes of a passed-over record still to come. Record lengths fit in 16 bits
    /// ([`MAX_RECORD_LEN`] is checked first); every open connection has two readers.
    skipping: u16,
    /// The record being streamed: bytes still to come, and its version and length.
    streaming: u16,
    streamed: (u16, u16),
    /// When the record held or streamed began to arrive.
    since: Timestamp,
}

impl RecordReader {
    /// Why the stream stopped being readable, if it did.
    pub fn failed(&self) -> Option<RecordError> {
        self.failed
    }

    /// Bytes of an incomplete record held, still to pass over or still to stream.
    pub fn pending(&self) -> usize {
        self.buf.len() + usize::from(self.skipping) + usize::from(self.streaming)
    }

    /// The whole length (header included) of the incomplete record held, 0 when none is:
    /// what holding it will cost at most.
    pub fn holding(&self) -> usize {
        record_len(&self.buf).unwrap_or(self.buf.len())
    }

    /// The stream is cut (a gap, or its end) while an application-data record that could
    /// have streamed is held: hands over its version, declared fragment length, the bytes
    /// held (header first) and when it began, and holds nothing more.
    pub fn take_cut(&mut self) -> Option<(u16, usize, Vec<u8>, Timestamp)> {
        let total = record_len(&self.buf)?;
        if self.buf.first() != Some(&APPLICATION_DATA) || total < 5 + STREAM_FROM {
            return None;
        }
        let held = self.buf.take();
        let version = u16::from_be_bytes([*held.get(1)?, *held.get(2)?]);
        Some((version, total - 5, held, self.since))
    }

    /// From now on, until told otherwise, application-data records of at least
    /// [`STREAM_FROM`] fragment bytes that are not whole in the bytes at hand are handed out
    /// in parts ([`Part`]), a record already held included; `false` holds every record
    /// until it is whole.
    pub fn stream_long(&mut self, on: bool) {
        self.stream_long = on;
    }

    fn streams(&self, header: &[u8], total: usize) -> bool {
        self.stream_long && header.first() == Some(&APPLICATION_DATA) && total >= 5 + STREAM_FROM
    }

    /// Hands out `head` (a header and the start of its fragment) as the first part of a
    /// record of `total` bytes, whose rest is streamed as it comes.
    fn begin_stream(
        &mut self,
        head: &[u8],
        total: usize,
        at: Timestamp,
        on_record: &mut dyn FnMut(Record<'_>),
    ) {
        if let [_, v0, v1, _, _, fragment @ ..] = head {
            let version = u16::from_be_bytes([*v0, *v1]);
            self.streaming = small(total.saturating_sub(head.len()));
            self.streamed = (version, small(total - 5));
            self.since = at;
            on_record(Record {
                content_type: APPLICATION_DATA,
                version,
                fragment,
                length: total - 5,
                part: Part::First,
                at,
            });
        }
    }

    /// From now on, application-data records are handed out with their header only.
    pub fn skip_application_data(&mut self) {
        self.skip_application_data = true;
    }

    fn skips(&self, header: &[u8]) -> bool {
        self.skip_application_data && header.first() == Some(&APPLICATION_DATA)
    }

    /// Stops reading for good (e.g. after a gap, record boundaries are unknown).
    pub fn stop(&mut self, why: RecordError) {
        self.failed.get_or_insert(why);
        self.buf.free();
        self.streaming = 0;
    }

    /// Takes stream bytes captured at `at` and calls `on_record` for every record completed
    /// (or part of a streamed one).
    pub fn feed(
        &mut self,
        mut data: &[u8],
        at: Timestamp,
        on_record: &mut dyn FnMut(Record<'_>),
    ) -> Result<(), RecordError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.skipping > 0 {
            let n = usize::from(self.skipping).min(data.len());
            self.skipping -= small(n);
            data = data.get(n..).unwrap_or_default();
        }
        if self.streaming > 0 && !data.is_empty() {
            let n = usize::from(self.streaming).min(data.len());
            let (piece, rest) = data.split_at(n);
            self.streaming -= small(n);
            let (version, length) = (self.streamed.0, usize::from(self.streamed.1));
            on_record(Record {
                content_type: APPLICATION_DATA,
                version,
                fragment: piece,
                length,
                part: if self.streaming == 0 {
                    Part::Last
                } else {
                    Part::Middle
                },
                at: self.since,
            });
            data = rest;
        }
        // Finish a record begun in an earlier piece.
        if !self.buf.is_empty() {
            let need = match record_len(&self.buf) {
                Some(total) => total,
                None => {
                    let take = (5 - self.buf.len()).min(data.len());
                    let (head, rest) = data.split_at(take);
                    hold(&mut self.buf, head, 0);
                    data = rest;
                    match record_len(&self.buf) {
                        Some(total) => total,
                        None => return Ok(()),
                    }
                }
            };
            self.check_header()?;
            if self.skips(&self.buf) {
                let rest = need.saturating_sub(self.buf.len());
                let n = rest.min(data.len());
                self.skipping = small(rest - n);
                data = data.get(n..).unwrap_or_default();
                emit_header(&std::mem::take(&mut self.buf), need, self.since, on_record);
                return self.feed(data, at, on_record);
            }
            if self.buf.len() + data.len() < need && self.streams(&self.buf, need) {
                let held = std::mem::take(&mut self.buf);
                self.begin_stream(&held, need, self.since, on_record);
                return self.feed(data, at, on_record);
            }
            let take = need.saturating_sub(self.buf.len()).min(data.len());
            let (head, rest) = data.split_at(take);
            hold(&mut self.buf, head, need);
            data = rest;
            if self.buf.len() < need {
                return Ok(());
            }
            // Emitted from a taken buffer, which is then dropped: an idle connection keeps no
            // record-sized allocation (the next split record allocates again).
            let buf = std::mem::take(&mut self.buf);
            emit(&buf, self.since, on_record);
        }
        // Whole records straight from the input, without copying.
        while let Some(total) = record_len(data) {
            if let Err(e) = check(data) {
                self.stop(e);
                return Err(e);
            }
            if data.len() < total {
                if self.skips(data) {
                    self.skipping = small(total - data.len());
                    emit_header(data, total, at, on_record);
                    return Ok(());
                }
                if self.streams(data, total) {
                    self.begin_stream(data, total, at, on_record);
                    return Ok(());
                }
                break;
            }
            let (rec, rest) = data.split_at(total);
            emit(rec, at, on_record);
            data = rest;
        }
        if !data.is_empty() {
            if data.len() >= 5 {
                if let Err(e) = check(data) {
                    self.stop(e);
                    return Err(e);
                }
            }
            self.since = at;
            hold(&mut self.buf, data, record_len(data).unwrap_or(0));
        }
        Ok(())
    }

    fn check_header(&mut self) -> Result<(), RecordError> {
        if let Err(e) = check(&self.buf) {
            self.stop(e);
            return Err(e);
        }
        Ok(())
    }
}

/// Appends `bytes` to `buf`, which holds the start of a record of `total` bytes (0 when its
/// header is not complete): grown by doubling as a `Vec` grows, but never past the record's
/// end. Every connection in the middle of a record holds one of these, and doubling made a
/// 16 kB record's buffer 23 kB.
fn hold(buf: &mut ThinBytes, bytes: &[u8], total: usize) {
    if bytes.is_empty() {
        return;
    }
    let buf = buf.vec();
    let want = buf.len() + bytes.len();
    if want > buf.capacity() {
        let cap = (buf.capacity() * 2).max(want).min(total.max(want));
        buf.reserve_exact(cap - buf.len());
    }
    buf.extend_from_slice(bytes);
}

/// A length within one record (at most 5 + [`MAX_RECORD_LEN`], checked before).
fn small(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// Header plus fragment length, once the 5-byte header is present.
fn record_len(b: &[u8]) -> Option<usize> {
    match b {
        [_, _, _, hi, lo, ..] => Some(5 + usize::from(u16::from_be_bytes([*hi, *lo]))),
        _ => None,
    }
}

fn check(b: &[u8]) -> Result<(), RecordError> {
    match b {
        [_, _, _, hi, lo, ..] if usize::from(u16::from_be_bytes([*hi, *lo])) > MAX_RECORD_LEN => {
            Err(RecordError::TooLong)
        }
        [t, major, minor, ..]
            if !(CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(t) || *major != 3 || *minor > 4 =>
        {
            Err(RecordError::NotTls)
        }
        _ => Ok(()),
    }
}

fn emit(rec: &[u8], at: Timestamp, on_record: &mut dyn FnMut(Record<'_>)) {
    if let [t, v0, v1, _, _, fragment @ ..] = rec {
        on_record(Record {
            content_type: *t,
            version: u16::from_be_bytes([*v0, *v1]),
            fragment,
            length: fragment.len(),
            part: Part::Whole,
            at,
        });
    }
}

/// A passed-over record of `total` bytes (header included), from its header.
fn emit_header(header: &[u8], total: usize, at: Timestamp, on_record: &mut dyn FnMut(Record<'_>)) {
    if let [t, v0, v1, ..] = header {
        on_record(Record {
            content_type: *t,
            version: u16::from_be_bytes([*v0, *v1]),
            fragment: &[],
            length: total.saturating_sub(5),
            part: Part::Whole,
            at,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (content type, fragment) of each record, and the reader's last result.
    type Fed = (Vec<(u8, Vec<u8>)>, Result<(), RecordError>);

    fn records(pieces: &[&[u8]]) -> Fed {
        let mut r = RecordReader::default();
        let mut out = Vec::new();
        let mut res = Ok(());
        for p in pieces {
            res = r.feed(p, Timestamp(0), &mut |rec| {
                out.push((rec.content_type, rec.fragment.to_vec()))
            });
        }
        (out, res)
    }

    #[test]
    fn records_cut_anywhere_come_out_whole() {
        let stream: Vec<u8> = [
            &[22, 3, 1, 0, 3, 1, 2, 3][..],
            &[23, 3, 3, 0, 0],
            &[21, 3, 3, 0, 2, 9, 9],
        ]
        .concat();
        for cut1 in 0..stream.len() {
            for cut2 in cut1..stream.len() {
                let (out, res) = records(&[&stream[..cut1], &stream[cut1..cut2], &stream[cut2..]]);
                assert_eq!(res, Ok(()));
                assert_eq!(
                    out,
                    vec![(22, vec![1, 2, 3]), (23, vec![]), (21, vec![9, 9])],
                    "cuts {cut1} {cut2}"
                );
            }
        }
    }

    /// A record that arrives in segments is held in a buffer that grows as a `Vec` does but
    /// never past the record, and comes out whole.
    #[test]
    fn a_held_record_never_outgrows_itself() {
        let fragment: Vec<u8> = (0..16_384u32).map(|i| i as u8).collect();
        let mut stream = vec![23, 3, 3, 0x40, 0];
        stream.extend(&fragment);
        let mut r = RecordReader::default();
        let mut out = Vec::new();
        for piece in stream.chunks(1448) {
            r.feed(piece, Timestamp(0), &mut |rec| {
                out.push(rec.fragment.to_vec())
            })
            .unwrap();
            assert!(r.buf.capacity() <= stream.len(), "{}", r.buf.capacity());
        }
        assert_eq!(out, [fragment]);
        assert_eq!(r.pending(), 0);
    }

    /// Passed over, application data keeps its place and length, cut anywhere, and other
    /// records still come whole.
    #[test]
    fn skipped_application_data_cut_anywhere() {
        let stream: Vec<u8> = [
            &[23, 3, 3, 0, 4, 1, 2, 3, 4][..],
            &[21, 3, 3, 0, 2, 9, 9],
            &[23, 3, 3, 0, 3, 5, 6, 7],
        ]
        .concat();
        for cut1 in 0..stream.len() {
            for cut2 in cut1..stream.len() {
                let mut r = RecordReader::default();
                r.skip_application_data();
                let mut out = Vec::new();
                for p in [&stream[..cut1], &stream[cut1..cut2], &stream[cut2..]] {
                    r.feed(p, Timestamp(0), &mut |rec| {
                        out.push((rec.content_type, rec.length))
                    })
                    .unwrap();
                    // Of application data, never more than a header's bytes are kept.
                    assert!(r.buf.len() < 5 || r.buf[0] != 23, "cuts {cut1} {cut2}");
                }
                assert_eq!(out, [(23, 4), (21, 2), (23, 3)], "cuts {cut1} {cut2}");
                assert_eq!(r.pending(), 0);
            }
        }
    }

    /// Told to stream, the reader hands out long application-data records in parts as
    /// their bytes come, a record already held included, each part dated when its record
    /// began; short records and other types still come whole.
    #[test]
    fn long_application_data_streams_in_parts_cut_anywhere() {
        let long: Vec<u8> = (0..STREAM_FROM as u32 + 10).map(|i| i as u8).collect();
        let mut stream = vec![23, 3, 3];
        stream.extend((long.len() as u16).to_be_bytes());
        stream.extend(&long);
        stream.extend([22, 3, 3, 0, 2, 1, 2]);
        stream.extend([23, 3, 3, 0, 1, 7]);
        let want = [(22, vec![1, 2]), (23, vec![7])];
        for cut1 in (0..stream.len()).step_by(97).chain([1, 4, 5, 6]) {
            for cut2 in (cut1..stream.len()).step_by(331).chain([stream.len() - 3]) {
                let mut r = RecordReader::default();
                // The first piece is held as usual; streaming is asked for after it.
                let mut parts: Vec<(Part, Vec<u8>, Timestamp)> = Vec::new();
                let mut whole = Vec::new();
                let pieces = [&stream[..cut1], &stream[cut1..cut2], &stream[cut2..]];
                for (i, p) in pieces.into_iter().enumerate() {
                    r.stream_long(i > 0);
                    r.feed(p, Timestamp(i as i64), &mut |rec| match rec.part {
                        Part::Whole => whole.push((rec.content_type, rec.fragment.to_vec())),
                        part => {
                            assert_eq!(rec.length, long.len());
                            parts.push((part, rec.fragment.to_vec(), rec.at));
                        }
                    })
                    .unwrap();
                }
                assert_eq!(r.pending(), 0, "cuts {cut1} {cut2}");
                if whole.len() == 3 {
                    // Whole at its first piece, or before streaming was asked for.
                    assert_eq!(whole[0].1, long, "cuts {cut1} {cut2}");
                    assert!(parts.is_empty());
                    continue;
                }
                assert_eq!(whole, want, "cuts {cut1} {cut2}");
                assert_eq!(parts.first().map(|p| p.0), Some(Part::First));
                assert_eq!(parts.last().map(|p| p.0), Some(Part::Last));
                let began = pieces.iter().position(|p| !p.is_empty()).unwrap_or(0) as i64;
                assert!(
                    parts.iter().all(|p| p.2 == Timestamp(began)),
                    "dated at its start"
                );
                let joined: Vec<u8> = parts.iter().flat_map(|p| p.1.clone()).collect();
                assert_eq!(joined, long, "cuts {cut1} {cut2}");
            }
        }
        // Records shorter than STREAM_FROM are held whole.
        let mut r = RecordReader::default();
        r.stream_long(true);
        let short = [23, 3, 3, 0x0f, 0xff];
        let mut n = 0;
        r.feed(&short, Timestamp(0), &mut |_| n += 1).unwrap();
        assert_eq!((n, r.holding()), (0, 5 + 0x0fff));
    }

    #[test]
    fn lying_headers_stop_the_stream() {
        let (out, res) = records(&[&[23, 3, 3, 0xff, 0xff, 0]]);
        assert!(out.is_empty());
        assert_eq!(res, Err(RecordError::TooLong));
        // Cut inside the header: the check happens once the header is whole.
        let (_, res) = records(&[&[23, 3], &[3, 0x48, 0x01]]);
        assert_eq!(res, Err(RecordError::TooLong));
        let (_, res) = records(&[b"GET / HTTP/1.1\r\n"]);
        assert_eq!(res, Err(RecordError::NotTls));
        assert!(is_record_header(&[22, 3, 1, 2, 0]));
        assert!(!is_record_header(&[22, 3, 1, 0xff, 0]));
        assert!(!is_record_header(b"GET /"));
    }
}
