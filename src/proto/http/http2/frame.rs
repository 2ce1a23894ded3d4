//! The HTTP/2 frame layer (RFC 9113 §4.1): one direction's bytes in, frames out.
//!
//! Contract: [`FrameReader::push`] takes the direction's bytes in order, cut anywhere, and
//! calls back once per frame: with the payload for the frame types whose payload matters
//! (headers, settings, control), with the header only for DATA and unknown types, whose
//! payload is counted but never buffered. A kept payload larger than the reader's limit is
//! skipped as well and said so ([`Frame::Skipped`] with `oversized`).
//!
//! Recovery: HTTP/2 has no resynchronisation marks. A gap that ends inside the payload of the
//! frame being read keeps the framing (that frame's payload is lost, and said so); a gap that
//! reaches past it loses the framing, and the direction is no longer parsed.

use crate::bytes::ThinBytes;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
    /// RFC 7838 §4.
    pub const ALTSVC: u8 = 0xa;
    /// RFC 8336.
    pub const ORIGIN: u8 = 0xc;
    /// RFC 9218 §7.1.
    pub const PRIORITY_UPDATE: u8 = 0x10;
}

pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

const HEADER_LEN: usize = 9;

/// A frame's 9-byte header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    /// Stream identifier, reserved bit cleared.
    pub stream: u32,
}

impl FrameHeader {
    fn parse(b: &[u8; HEADER_LEN]) -> Self {
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = *b;
        FrameHeader {
            len: u32::from_be_bytes([0, l0, l1, l2]),
            kind,
            flags,
            stream: u32::from_be_bytes([s0, s1, s2, s3]) & 0x7fff_ffff,
        }
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Whether the payload of this frame type is kept for the caller.
    fn keeps_payload(&self) -> bool {
        !matches!(self.kind, kind::DATA) && self.kind <= kind::PRIORITY_UPDATE
    }
}

/// What the reader hands out.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete frame of a kept type.
    Full(FrameHeader, &'a [u8]),
    /// A frame whose payload was not kept: DATA, unknown types, or (`oversized`) a kept type
    /// beyond the payload limit.
    Skipped(FrameHeader, bool),
    /// The payload of this frame was (partly) lost in a gap.
    Lost(FrameHeader),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("the stream does not start with the HTTP/2 client preface")]
    BadPreface,
    #[error("bytes of the stream were lost across a frame boundary")]
    FramingLost,
}

enum State {
    /// Matching the client preface; `optional`: a frame header instead is fine too.
    Preface {
        pos: u8,
        optional: bool,
    },
    Header {
        have: [u8; HEADER_LEN],
        n: u8,
    },
    Payload {
        hdr: FrameHeader,
        /// At most a frame's length, 24 bits.
        left: u32,
        keep: bool,
        lost: bool,
    },
    Dead(FrameError),
}

/// Splits one direction into frames. 32 bytes: two per HTTP/2 connection. Its state's
/// counts are as narrow as frames allow, and the payload limit is the caller's, given with
/// each piece, not kept (40 bytes before).
pub struct FrameReader {
    state: State,
    preface_seen: bool,
    /// One pointer: mostly empty.
    buf: ThinBytes,
}

impl FrameReader {
    /// A reader for a direction that starts with the client preface, or may (`optional`:
    /// the client's side when the server's frames were seen first), or starts with a frame
    /// (`None`).
    pub fn new(preface: Option<bool>) -> Self {
        FrameReader {
            state: match preface {
                Some(optional) => State::Preface { pos: 0, optional },
                None => header_state(),
            },
            preface_seen: false,
            buf: ThinBytes::default(),
        }
    }

    /// Whether the client preface was read.
    pub fn preface_seen(&self) -> bool {
        self.preface_seen
    }

    /// Whether the direction can no longer be parsed.
    pub fn error(&self) -> Option<FrameError> {
        match self.state {
            State::Dead(e) => Some(e),
            _ => None,
        }
    }

    /// Takes the next bytes of the direction. Kept payloads longer than `max_payload` are
    /// skipped.
    pub fn push(&mut self, mut data: &[u8], max_payload: usize, out: &mut dyn FnMut(Frame<'_>)) {
        while !data.is_empty() {
            match &mut self.state {
                State::Dead(_) => return,
                State::Preface { pos, optional } => {
                    let want = PREFACE.get(usize::from(*pos)..).unwrap_or(&[]);
                    let n = want.len().min(data.len());
                    if data.get(..n) != want.get(..n) {
                        if !*optional {
                            self.state = State::Dead(FrameError::BadPreface);
                            continue;
                        }
                        // Not the preface after all: a frame header. What matched of the
                        // preface in earlier pieces is that header's start. (Deciding so only
                        // at the first byte made a stream starting with a preface prefix
                        // parse as frames in one piece and fail when cut after the prefix.)
                        let matched = PREFACE.get(..usize::from(*pos)).unwrap_or(&[]);
                        self.state = header_state();
                        self.push(matched, max_payload, out);
                        continue;
                    }
                    // The preface is 24 bytes.
                    *pos += n as u8;
                    data = data.get(n..).unwrap_or(&[]);
                    if usize::from(*pos) == PREFACE.len() {
                        self.preface_seen = true;
                        self.state = header_state();
                    }
                }
                State::Header { have, n } => {
                    let at = usize::from(*n);
                    let take = (HEADER_LEN - at).min(data.len());
                    let (head, rest) = data.split_at(take);
                    if let Some(dst) = have.get_mut(at..at + take) {
                        dst.copy_from_slice(head);
                    }
                    *n += take as u8;
                    data = rest;
                    if usize::from(*n) == HEADER_LEN {
                        let hdr = FrameHeader::parse(have);
                        let len = hdr.len;
                        let keep = hdr.keeps_payload() && len as usize <= max_payload;
                        if hdr.keeps_payload() && !keep {
                            out(Frame::Skipped(hdr, true));
                        }
                        self.buf.clear();
                        self.state = State::Payload {
                            hdr,
                            left: len,
                            keep,
                            lost: false,
                        };
                        self.finish_if_done(out);
                    }
                }
                State::Payload {
                    hdr,
                    left,
                    keep,
                    lost,
                } => {
                    let take = (*left as usize).min(data.len());
                    let (part, rest) = data.split_at(take);
                    *left -= take as u32;
                    data = rest;
                    if *keep && !*lost {
                        if *left == 0 && self.buf.is_empty() {
                            // The whole payload is at hand: no copy.
                            let hdr = *hdr;
                            self.state = header_state();
                            out(Frame::Full(hdr, part));
                            continue;
                        }
                        self.buf.extend_from_slice(part);
                    }
                    self.finish_if_done(out);
                }
            }
        }
    }

    fn finish_if_done(&mut self, out: &mut dyn FnMut(Frame<'_>)) {
        if let State::Payload {
            hdr,
            left: 0,
            keep,
            lost,
        } = self.state
        {
            self.state = header_state();
            if lost {
                out(Frame::Lost(hdr));
            } else if keep {
                out(Frame::Full(hdr, &self.buf));
            } else if !(hdr.keeps_payload()) {
                out(Frame::Skipped(hdr, false));
            }
        }
    }

    /// `n` bytes of the direction were never captured.
    pub fn gap(&mut self, n: u64, out: &mut dyn FnMut(Frame<'_>)) {
        match &mut self.state {
            State::Payload {
                left,
                lost,
                keep,
                hdr,
            } if n <= *left as u64 => {
                *left -= n as u32;
                *lost |= *keep;
                let _ = hdr;
                self.buf.clear();
                self.finish_if_done(out);
            }
            State::Dead(_) => {}
            _ => self.state = State::Dead(FrameError::FramingLost),
        }
    }
}

fn header_state() -> State {
    State::Header {
        have: [0; HEADER_LEN],
        n: 0,
    }
}

/// The header-block fragment of a HEADERS or PUSH_PROMISE payload, without padding and
/// priority fields, and (PUSH_PROMISE) the promised stream id. `None` when the padding or
/// fields do not fit: a frame size error.
pub fn header_block<'a>(hdr: &FrameHeader, payload: &'a [u8]) -> Option<(Option<u32>, &'a [u8])> {
    let mut p = payload;
    let mut pad = 0usize;
    if hdr.has(flag::PADDED) {
        let (&n, rest) = p.split_first()?;
        pad = usize::from(n);
        p = rest;
    }
    let mut promised = None;
    if hdr.kind == kind::HEADERS && hdr.has(flag::PRIORITY) {
        p = p.get(5..)?;
    }
    if hdr.kind == kind::PUSH_PROMISE {
        let id = p.get(..4)?;
        promised = Some(u32::from_be_bytes(id.try_into().ok()?) & 0x7fff_ffff);
        p = p.get(4..)?;
    }
    let end = p.len().checked_sub(pad)?;
    Some((promised, p.get(..end)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut v = len.to_be_bytes()[1..].to_vec();
        v.push(kind);
        v.push(flags);
        v.extend_from_slice(&stream.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[derive(Debug, PartialEq)]
    enum Seen {
        Full(u8, u32, Vec<u8>),
        Skipped(u8, u32, bool),
        Lost(u8),
    }

    /// Kept payloads up to this long, unless a test says otherwise.
    const MAX: usize = 1024;

    fn run(r: &mut FrameReader, pieces: &[&[u8]]) -> Vec<Seen> {
        run_max(r, pieces, MAX)
    }

    fn run_max(r: &mut FrameReader, pieces: &[&[u8]], max: usize) -> Vec<Seen> {
        let mut seen = Vec::new();
        for p in pieces {
            r.push(p, max, &mut |f| {
                seen.push(match f {
                    Frame::Full(h, p) => Seen::Full(h.kind, h.stream, p.to_vec()),
                    Frame::Skipped(h, o) => Seen::Skipped(h.kind, h.stream, o),
                    Frame::Lost(h) => Seen::Lost(h.kind),
                })
            });
        }
        seen
    }

    #[test]
    fn frames_cut_anywhere_come_out_whole() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(kind::SETTINGS, 0, 0, &[0, 1, 0, 0, 0x10, 0]));
        bytes.extend(frame(kind::DATA, flag::END_STREAM, 1, &[7; 100]));
        bytes.extend(frame(kind::HEADERS, flag::END_HEADERS, 3, b"abc"));
        bytes.extend(frame(0xee, 0, 0, b"unknown"));
        let want = vec![
            Seen::Full(kind::SETTINGS, 0, vec![0, 1, 0, 0, 0x10, 0]),
            Seen::Skipped(kind::DATA, 1, false),
            Seen::Full(kind::HEADERS, 3, b"abc".to_vec()),
            Seen::Skipped(0xee, 0, false),
        ];
        for cut in 1..bytes.len() {
            let mut r = FrameReader::new(Some(false));
            let (a, b) = bytes.split_at(cut);
            assert_eq!(run(&mut r, &[a, b]), want, "cut at {cut}");
        }
        let mut r = FrameReader::new(Some(false));
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run(&mut r, &singles), want);
    }

    #[test]
    fn bad_preface_and_oversized_frames() {
        let mut r = FrameReader::new(Some(false));
        run(&mut r, &[b"GET / HTTP/1.1\r\n"]);
        assert_eq!(r.error(), Some(FrameError::BadPreface));
        let mut r = FrameReader::new(None);
        let f = frame(kind::HEADERS, 0, 1, b"too long");
        assert_eq!(
            run_max(&mut r, &[&f], 4),
            vec![Seen::Skipped(kind::HEADERS, 1, true)]
        );
    }

    #[test]
    fn gaps_inside_a_payload_keep_the_framing() {
        let mut r = FrameReader::new(None);
        let d = frame(kind::DATA, 0, 1, &[0; 50]);
        run(&mut r, &[&d[..20]]);
        r.gap(39, &mut |_| {});
        let h = frame(kind::HEADERS, 0, 3, b"xyz");
        assert_eq!(run(&mut r, &[&h[..11]]), vec![]);
        let mut seen = Vec::new();
        r.gap(1, &mut |f| seen.push(matches!(f, Frame::Lost(_))));
        assert_eq!(seen, vec![true]);
        assert_eq!(r.error(), None);
        r.gap(5, &mut |_| {});
        assert_eq!(r.error(), Some(FrameError::FramingLost));
    }

    #[test]
    fn header_block_strips_padding_and_priority() {
        let hdr = FrameHeader {
            len: 0,
            kind: kind::HEADERS,
            flags: flag::PADDED | flag::PRIORITY,
            stream: 1,
        };
        let payload = [2, 0, 0, 0, 0, 16, b'h', b'b', 0, 0];
        assert_eq!(header_block(&hdr, &payload), Some((None, &b"hb"[..])));
        assert_eq!(header_block(&hdr, &[9, 0]), None);
        let pp = FrameHeader {
            kind: kind::PUSH_PROMISE,
            flags: 0,
            ..hdr
        };
        assert_eq!(
            header_block(&pp, &[0, 0, 0, 2, b'x']),
            Some((Some(2), &b"x"[..]))
        );
    }
}
