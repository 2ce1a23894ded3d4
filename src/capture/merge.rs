//! Several inputs merged into one packet stream in timestamp order.
//!
//! Rotated captures of one link (`tcpdump -C`/`-G`, several files of one `dumpcap` ring) must
//! read as one capture, so that a connection spanning a file boundary is one connection. Each
//! input holds one pending packet; a min-heap on (timestamp, input index) picks the next. Ties
//! go to the earlier input, and packets of one input keep their order even if its timestamps
//! go backwards (a file's order is its truth; clocks step).

use super::file::{FileSource, InputName, OwnedPacket};
use super::{CaptureError, DecryptionSecret, InputSummary, Origin, RawPacket};
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
    /// (packet index, input) of the packet `advance` moved to.
    current: Option<(u64, usize)>,
    next_index: u64,
    secrets: Vec<DecryptionSecret>,
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
    /// damaged (rather than simply empty of packets, or with only skipped blocks) is an
    /// error: nothing could be read from it.
    pub fn from_sources(mut sources: Vec<FileSource>) -> Result<Self, CaptureError> {
        let mut pending = vec![OwnedPacket::default(); sources.len()];
        let mut heap = BinaryHeap::with_capacity(sources.len());
        let mut secrets = Vec::new();
        for (i, (src, slot)) in sources.iter_mut().zip(pending.iter_mut()).enumerate() {
            let got = src.next_packet(slot);
            secrets.extend(src.take_secrets());
            if got {
                heap.push(Reverse((slot.ts, i)));
            } else if let Some((offset, what)) = src.damage() {
                return Err(CaptureError::Corrupt {
                    name: src.summary().name.clone(),
                    offset: *offset,
                    what: what.clone(),
                });
            }
        }
        Ok(Capture {
            sources,
            pending,
            heap,
            refill: None,
            current: None,
            next_index: 1,
            secrets,
        })
    }

    /// Moves to the next packet in merged order; false when every input is exhausted.
    pub fn advance(&mut self) -> bool {
        if let Some(i) = self.refill.take() {
            if let (Some(src), Some(slot)) = (self.sources.get_mut(i), self.pending.get_mut(i)) {
                if src.next_packet(slot) {
                    self.heap.push(Reverse((slot.ts, i)));
                }
                self.secrets.extend(src.take_secrets());
            }
        }
        let Some(Reverse((_, input))) = self.heap.pop() else {
            self.current = None;
            return false;
        };
        self.refill = Some(input);
        self.current = Some((self.next_index, input));
        self.next_index += 1;
        true
    }

    /// The packet `advance` moved to.
    pub fn current(&self) -> Option<RawPacket<'_>> {
        let (index, input) = self.current?;
        let pkt = self.pending.get(input)?;
        let source = self.sources.get(input)?;
        Some(RawPacket {
            index,
            origin: Origin {
                input: u32::try_from(input).unwrap_or(u32::MAX),
                // The input's packets read so far: its next one is read only at the next
                // `advance`, so this is the current packet's number.
                packet: source.summary().packets,
            },
            ts: pkt.ts,
            link: pkt.link?,
            data: source.chunk().get(pkt.at.0..pkt.at.1)?,
            orig_len: pkt.orig_len,
        })
    }

    /// `advance`, then `current`.
    pub fn next_packet(&mut self) -> Option<RawPacket<'_>> {
        if self.advance() {
            self.current()
        } else {
            None
        }
    }

    /// Decryption secrets (pcapng DSBs) read so far and not taken yet. Called after
    /// `advance`, it includes every secret that precedes the current packet in its file.
    pub fn take_secrets(&mut self) -> Vec<DecryptionSecret> {
        std::mem::take(&mut self.secrets)
    }

    /// The chunk of its input the current packet lies in (see [`FileSource::chunk`]).
    pub fn current_chunk(&self) -> Option<&super::file::Chunk> {
        let (_, input) = self.current?;
        self.sources.get(input).map(FileSource::chunk)
    }

    /// Bytes consumed so far over all inputs (for progress reporting).
    pub fn bytes_read(&self) -> u64 {
        self.sources.iter().map(|s| s.summary().bytes).sum()
    }

    /// The one input's layout (from its first packet on) and summary so far, and the
    /// secrets read before that packet, when the capture is a single input (which
    /// `pipeline::split` may read in parts).
    pub(crate) fn single_layout(&self) -> Option<(super::file::Layout, InputSummary)> {
        let [source] = self.sources.as_slice() else {
            return None;
        };
        Some((source.layout()?, source.summary().clone()))
    }

    /// Per-input summaries, in input order.
    pub fn summaries(&self) -> Vec<InputSummary> {
        self.sources.iter().map(|s| s.summary().clone()).collect()
    }
}
