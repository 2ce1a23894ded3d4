//! Handshake messages of one direction, joined across records (RFC 8446 §5.1: a message may
//! span several records, and several messages may share one).
//!
//! Contract: [`HandshakeReader::feed`] takes the plaintext of handshake records in order and
//! yields each complete message as `(type, body)`. A message longer than the limit
//! (`Limits::max_tls_handshake_message`) stops the reader (anomaly `tls_handshake_limit`): its
//! remaining bytes could not be framed anyway.

use crate::bytes::ThinBytes;

#[derive(Debug, Default)]
pub struct HandshakeReader {
    /// One pointer: every TLS connection has two readers, and their buffers are empty but
    /// while a message spans records.
    buf: ThinBytes,
    stopped: bool,
}

/// A handshake message longer than the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLong;

impl HandshakeReader {
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// True when a message is partly buffered (a handshake still in progress).
    pub fn is_mid_message(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Takes handshake bytes; `max` is the largest message accepted.
    pub fn feed(
        &mut self,
        data: &[u8],
        max: usize,
        on_message: &mut dyn FnMut(u8, &[u8]),
    ) -> Result<(), TooLong> {
        if self.stopped {
            return Err(TooLong);
        }
        let mut data = data;
        if self.buf.is_empty() {
            // Fast path: whole messages straight from the record.
            while let Some((t, len)) = header(data) {
                if len > max {
                    return self.stop();
                }
                let Some(body) = data.get(4..4 + len) else {
                    break;
                };
                on_message(t, body);
                data = data.get(4 + len..).unwrap_or(&[]);
            }
            self.buf.extend_from_slice(data);
            return if header(&self.buf).is_some_and(|(_, len)| len > max) {
                self.stop()
            } else {
                Ok(())
            };
        }
        self.buf.extend_from_slice(data);
        let mut start = 0;
        while let Some((t, len)) = self.buf.get(start..).and_then(header) {
            if len > max {
                return self.stop();
            }
            let Some(body) = self.buf.get(start + 4..start + 4 + len) else {
                break;
            };
            on_message(t, body);
            start += 4 + len;
        }
        self.buf.drop_front(start);
        if self.buf.is_empty() {
            // Certificate chains make this buffer large; a finished handshake keeps none of it.
            self.buf.free();
        }
        Ok(())
    }

    fn stop(&mut self) -> Result<(), TooLong> {
        self.stopped = true;
        self.buf.free();
        Err(TooLong)
    }
}

fn header(b: &[u8]) -> Option<(u8, usize)> {
    match b {
        [t, a, b, c, ..] => Some((*t, u32::from_be_bytes([0, *a, *b, *c]) as usize)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_across_and_within_records() {
        let stream: Vec<u8> = [
            &[1, 0, 0, 3, 7, 8, 9][..],
            &[2, 0, 0, 0],
            &[11, 0, 0, 2, 5, 6],
        ]
        .concat();
        for cut in 0..=stream.len() {
            let mut r = HandshakeReader::default();
            let mut out = Vec::new();
            for piece in [&stream[..cut], &stream[cut..]] {
                r.feed(piece, 1 << 17, &mut |t, b| out.push((t, b.to_vec())))
                    .unwrap();
            }
            assert_eq!(
                out,
                vec![(1, vec![7, 8, 9]), (2, vec![]), (11, vec![5, 6])],
                "cut {cut}"
            );
            assert!(!r.is_mid_message());
        }
    }

    #[test]
    fn oversized_message_stops() {
        let mut r = HandshakeReader::default();
        assert_eq!(
            r.feed(&[11, 0xff, 0xff, 0xff], 1 << 17, &mut |_, _| {}),
            Err(TooLong)
        );
        assert!(r.is_stopped());
        let mut r = HandshakeReader::default();
        assert_eq!(r.feed(&[11], 1 << 17, &mut |_, _| {}), Ok(()));
        assert_eq!(r.feed(&[0x10, 0, 0], 1 << 17, &mut |_, _| {}), Err(TooLong));
    }
}
