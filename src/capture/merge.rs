//! Several inputs merged into one packet stream in timestamp order.
//!
//! Rotated captures of one link (`tcpdump -C`/`-G`, several files of one `dumpcap` ring) must
//! read as one capture, so that a connection spanning a file boundary is one connection. Each
//! input holds one pending packet; a min-heap on (timestamp, input index) picks the next. Ties
//! go to the earlier input, and packets of one input keep their order even if its timestamps
//! go backwards (a file's order is its truth; clocks step).

use super::file::{FileSource, InputName, OwnedPacket};
use super::{CaptureError, DecryptionSecret, InputSummary, RawPacket};
use crate::{Limits, Timestamp};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The merged packet stream of all inputs.
pub struct Capture {
    sources: Vec<FileSource>,
    pending: Vec<OwnedPacket>,
    heap: BinaryHeap<Reverse<(Timestamp, usize)>>,
    /// Input whose pending packet was handed out last and must be refilled before the next.
    refill: Option<usize>,
    next_index: u64,
}

impl Capture {
    /// Opens every input; fails on the first that cannot be read as a capture.
    pub fn open(names: &[InputName], limits: &Limits) -> Result<Self, CaptureError> {
        let sources = names
            .iter()
            .map(|n| FileSource::open(n, limits.max_capture_block))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_sources(sources)
    }

    /// Reads the first packet of every source. A source that yields no packet because it is
    /// damaged (rather than simply empty of packets) is an error: nothing could be read from it.
    pub fn from_sources(mut sources: Vec<FileSource>) -> Result<Self, CaptureError> {
        let mut pending = vec![OwnedPacket::default(); sources.len()];
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (i, (src, slot)) in sources.iter_mut().zip(pending.iter_mut()).enumerate() {
            if src.next_packet(slot) {
                heap.push(Reverse((slot.ts, i)));
            } else if let Some(what) = src.summary().warnings.first() {
                return Err(CaptureError::Corrupt {
                    name: src.summary().name.clone(),
                    offset: src.summary().bytes,
                    what: what.clone(),
                });
            }
        }
        Ok(Capture {
            sources,
            pending,
            heap,
            refill: None,
            next_index: 1,
        })
    }

    /// The next packet in merged order, or `None` when every input is exhausted.
    pub fn next_packet(&mut self) -> Option<RawPacket<'_>> {
        if let Some(i) = self.refill.take() {
            if let (Some(src), Some(slot)) = (self.sources.get_mut(i), self.pending.get_mut(i)) {
                if src.next_packet(slot) {
                    self.heap.push(Reverse((slot.ts, i)));
                }
            }
        }
        let Reverse((_, input)) = self.heap.pop()?;
        self.refill = Some(input);
        let index = self.next_index;
        self.next_index += 1;
        let pkt = self.pending.get(input)?;
        Some(RawPacket {
            index,
            input,
            ts: pkt.ts,
            link: pkt.link?,
            data: &pkt.data,
            orig_len: pkt.orig_len,
        })
    }

    /// Secrets from pcapng Decryption Secrets Blocks read so far, in input order.
    pub fn secrets(&self) -> impl Iterator<Item = &DecryptionSecret> {
        self.sources.iter().flat_map(|s| s.secrets().iter())
    }

    /// Bytes consumed so far over all inputs (for progress reporting).
    pub fn bytes_read(&self) -> u64 {
        self.sources.iter().map(|s| s.summary().bytes).sum()
    }

    /// Per-input summaries, in input order.
    pub fn summaries(&self) -> Vec<InputSummary> {
        self.sources.iter().map(|s| s.summary().clone()).collect()
    }
}
