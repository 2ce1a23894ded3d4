//! TCP sequence numbers mapped onto 64-bit stream offsets.
//!
//! Sequence numbers are 32-bit and wrap (RFC 9293 §3.4). Reassembly works on 64-bit offsets
//! from the first byte of the stream instead, which never wrap: a sequence number is placed at
//! the offset nearest to a reference (the next expected byte), i.e. within ±2^31 of it, which is
//! what "modulo 2^32 comparison" means in the RFC.

/// Maps sequence numbers of one direction to stream offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqSpace {
    /// Sequence number of stream offset 0 (ISN + 1 when the SYN was seen).
    pub base: u32,
}

impl SeqSpace {
    /// The offset of `seq` nearest to `reference`; negative when before the stream's start.
    pub fn offset(self, seq: u32, reference: u64) -> i64 {
        let rel = seq.wrapping_sub(self.base);
        let diff = rel.wrapping_sub(reference as u32) as i32;
        (reference as i64).saturating_add(i64::from(diff))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_across_wraparound() {
        let s = SeqSpace {
            base: u32::MAX - 10,
        };
        assert_eq!(s.offset(u32::MAX - 10, 0), 0);
        assert_eq!(s.offset(5, 0), 16);
        // Far into the stream, after several wraps, the nearest offset is chosen.
        let far = (3u64 << 32) + 100;
        let seq = s.base.wrapping_add(far as u32);
        assert_eq!(s.offset(seq, far - 50), far as i64);
        assert_eq!(s.offset(seq.wrapping_sub(200), far), far as i64 - 200);
        // Before the start of the stream.
        assert_eq!(s.offset(s.base.wrapping_sub(3), 0), -3);
    }
}
