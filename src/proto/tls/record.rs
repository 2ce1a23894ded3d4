//! TLS record framing of one direction's byte stream (RFC 8446 §5.1, RFC 5246 §6.2).
//!
//! Contract: [`RecordReader::feed`] takes in-order stream bytes in pieces of any size (a
//! record header may be cut between TCP segments) and yields each complete record as
//! `(content_type, version, fragment)`. At most one record is buffered, bounded by
//! [`MAX_RECORD_LEN`]; a header claiming more, or an impossible content type or version,
//! makes the stream unparseable: TLS has no markers to resynchronise on, so the reader stops
//! for good and says why.
//!
//! Once told that application data cannot be decrypted ([`RecordReader::skip_application_data`]),
//! the reader hands such records out as soon as their header is read, with an empty
//! fragment, and passes over their bytes without keeping them: no copy, and no record-sized
//! buffer per connection while a record is on its way.

/// Largest fragment a legal record can carry: 2^14 bytes of plaintext plus up to 2048 bytes of
/// TLS 1.2 expansion (RFC 5246 §6.2.3; TLS 1.3 allows only 256, RFC 8446 §5.2).
pub const MAX_RECORD_LEN: usize = (1 << 14) + 2048;

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

/// One record's header fields and fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub content_type: u8,
    pub version: u16,
    /// Empty for a record passed over (see [`RecordReader::skip_application_data`]).
    pub fragment: &'a [u8],
    /// The fragment's length as the header declares it.
    pub length: usize,
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

#[derive(Debug, Default)]
pub struct RecordReader {
    buf: Vec<u8>,
    failed: Option<RecordError>,
    skip_application_data: bool,
    /// Bytes of a passed-over record still to come.
    skipping: usize,
}

impl RecordReader {
    /// Why the stream stopped being readable, if it did.
    pub fn failed(&self) -> Option<RecordError> {
        self.failed
    }

    /// Bytes of an incomplete record held or still to pass over.
    pub fn pending(&self) -> usize {
        self.buf.len() + self.skipping
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
        self.buf = Vec::new();
    }

    /// Takes stream bytes and calls `on_record` for every record completed.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        on_record: &mut dyn FnMut(Record<'_>),
    ) -> Result<(), RecordError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.skipping > 0 {
            let n = self.skipping.min(data.len());
            self.skipping -= n;
            data = data.get(n..).unwrap_or_default();
        }
        // Finish a record begun in an earlier piece.
        if !self.buf.is_empty() {
            let need = match record_len(&self.buf) {
                Some(total) => total,
                None => {
                    let take = (5 - self.buf.len()).min(data.len());
                    let (head, rest) = data.split_at(take);
                    self.buf.extend_from_slice(head);
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
                self.skipping = rest - n;
                data = data.get(n..).unwrap_or_default();
                emit_header(&std::mem::take(&mut self.buf), need, on_record);
                return self.feed(data, on_record);
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
            emit(&buf, on_record);
        }
        // Whole records straight from the input, without copying.
        while let Some(total) = record_len(data) {
            if let Err(e) = check(data) {
                self.stop(e);
                return Err(e);
            }
            if data.len() < total {
                if self.skips(data) {
                    self.skipping = total - data.len();
                    emit_header(data, total, on_record);
                    return Ok(());
                }
                break;
            }
            let (rec, rest) = data.split_at(total);
            emit(rec, on_record);
            data = rest;
        }
        if !data.is_empty() {
            if data.len() >= 5 {
                if let Err(e) = check(data) {
                    self.stop(e);
                    return Err(e);
                }
            }
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
fn hold(buf: &mut Vec<u8>, bytes: &[u8], total: usize) {
    let want = buf.len() + bytes.len();
    if want > buf.capacity() {
        let cap = (buf.capacity() * 2).max(want).min(total.max(want));
        buf.reserve_exact(cap - buf.len());
    }
    buf.extend_from_slice(bytes);
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

fn emit(rec: &[u8], on_record: &mut dyn FnMut(Record<'_>)) {
    if let [t, v0, v1, _, _, fragment @ ..] = rec {
        on_record(Record {
            content_type: *t,
            version: u16::from_be_bytes([*v0, *v1]),
            fragment,
            length: fragment.len(),
        });
    }
}

/// A passed-over record of `total` bytes (header included), from its header.
fn emit_header(header: &[u8], total: usize, on_record: &mut dyn FnMut(Record<'_>)) {
    if let [t, v0, v1, ..] = header {
        on_record(Record {
            content_type: *t,
            version: u16::from_be_bytes([*v0, *v1]),
            fragment: &[],
            length: total.saturating_sub(5),
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
            res = r.feed(p, &mut |rec| {
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
            r.feed(piece, &mut |rec| out.push(rec.fragment.to_vec()))
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
                    r.feed(p, &mut |rec| out.push((rec.content_type, rec.length)))
                        .unwrap();
                    // Of application data, never more than a header's bytes are kept.
                    assert!(r.buf.len() < 5 || r.buf[0] != 23, "cuts {cut1} {cut2}");
                }
                assert_eq!(out, [(23, 4), (21, 2), (23, 3)], "cuts {cut1} {cut2}");
                assert_eq!(r.pending(), 0);
            }
        }
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
