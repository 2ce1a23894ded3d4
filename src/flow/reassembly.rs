//! One direction of a TCP connection: segments in, in-order bytes and gaps out.
//!
//! Contract: [`Reassembler`] emits [`StreamEvent::Data`] with every byte of the stream exactly
//! once and in order, [`StreamEvent::Gap`] with the length of every run of bytes the capture
//! never held, then at most one [`StreamEvent::Fin`]. It never buffers more than its limits.
//!
//! Policies (the ones a passive observer needs; see `docs/reassembly.md`):
//! - **Start.** Offset 0 is the byte after the SYN. Without a SYN (capture started
//!   mid-connection) offset 0 is the first sequence number seen in this direction; bytes
//!   before it are dropped and counted (`tcp_data_before_start`).
//! - **Overlaps.** Bytes already delivered are final. Among buffered out-of-order segments the
//!   first copy wins; a later copy whose bytes differ counts `tcp_overlap_mismatch`.
//! - **Gaps.** A hole is declared lost when the peer has acknowledged bytes in it (the receiver
//!   got them, the capture did not) for longer than the reorder window, when the out-of-order buffer hits a limit, when a segment
//!   was cut by the snap length, or when the direction ends (FIN, RST, eviction, end of capture).
//! - **End.** A FIN or RST marks the offset where the direction ends; it is emitted once every
//!   byte before it was delivered (or declared lost), so reordering around it loses nothing.
//! - **Keep-alives** (one byte or none at next-1) are recognised and ignored.

use super::seq::SeqSpace;
use crate::anomaly::{Anomaly, AnomalyCounts};
use crate::{Limits, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;

/// What reassembly hands to the protocol parsers, per direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEvent<'a> {
    /// The next in-order bytes of the stream.
    Data(&'a [u8]),
    /// This many bytes of the stream were never captured; data resumes after them.
    Gap(u64),
    /// The sender finished this direction (FIN, after all bytes before it).
    Fin,
    /// The connection was reset by the sender of this direction (after all bytes before it).
    Rst,
}

/// How a direction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Fin,
    Rst,
}

/// Counters for one direction, as reported.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DirectionStats {
    pub packets: u64,
    /// TCP payload bytes on the wire, retransmissions included.
    pub payload_bytes: u64,
    /// Bytes delivered in order to the parsers.
    pub stream_bytes: u64,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub retransmitted_bytes: u64,
    pub out_of_order_segments: u64,
    pub keepalives: u64,
    /// Bytes sent beyond the FIN or RST that ended the direction (dropped;
    /// anomaly `tcp_data_after_close`).
    pub bytes_after_end: u64,
}

/// A direction's counters while it is open. The two that every direction moves are inline;
/// the six that most never move are boxed, made at their first count (every open connection
/// paid 96 bytes for them). The bytes delivered in order are not counted: they are where
/// the stream is, less its gaps ([`Reassembler::report`]).
#[derive(Debug, Default)]
pub struct Counters {
    pub packets: u64,
    pub payload_bytes: u64,
    /// Its `packets`, `payload_bytes` and `stream_bytes` are unused.
    rare: Option<Box<DirectionStats>>,
}

impl Counters {
    /// Adds `n` to one of the boxed counters; nothing is made for a zero.
    fn add(&mut self, n: u64, counter: impl FnOnce(&mut DirectionStats) -> &mut u64) {
        if n > 0 {
            *counter(self.rare.get_or_insert_with(Box::default)) += n;
        }
    }

    pub fn bytes_after_end(&self) -> u64 {
        self.rare.as_ref().map_or(0, |r| r.bytes_after_end)
    }
}

/// Out-of-order bytes buffered over all connections, against `Limits::max_ooo_bytes_total`.
#[derive(Clone, Debug, Default)]
pub struct BufferBudget {
    pub used: usize,
    pub max: usize,
}

/// A TCP segment as reassembly sees it.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Sequence number of the first payload byte (already past the SYN, if any).
    pub seq: u32,
    pub payload: &'a [u8],
    /// Payload bytes after `payload` that were on the wire but not captured.
    pub missing: u32,
    pub fin: bool,
}

/// Out-of-order segments of one direction by offset; ranges never overlap each other. Boxed
/// and made when a segment first arrives early, freed when the last one is delivered: most
/// directions never hold one, and every open connection pays for what is inline (48 B of
/// each direction's 168 before).
#[derive(Debug, Default)]
struct OutOfOrder(Option<Box<Held>>);

#[derive(Debug)]
struct Held {
    segments: BTreeMap<u64, Vec<u8>>,
    bytes: usize,
    /// When the peer first acknowledged bytes in the current hole (see
    /// `Limits::reorder_window_ns`).
    hole_acked_since: Option<Timestamp>,
}

impl OutOfOrder {
    fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |h| h.segments.len())
    }

    fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |h| h.bytes)
    }

    /// Offset of the first held segment.
    fn first(&self) -> Option<u64> {
        Some(*self.0.as_ref()?.segments.first_key_value()?.0)
    }

    fn range(
        &self,
        r: impl std::ops::RangeBounds<u64>,
    ) -> impl DoubleEndedIterator<Item = (&u64, &Vec<u8>)> {
        self.0
            .as_ref()
            .map(|h| h.segments.range(r))
            .into_iter()
            .flatten()
    }

    /// Holds a segment, its bytes counted against the budget of every connection too.
    fn insert(&mut self, at: u64, bytes: Vec<u8>, budget: &mut BufferBudget) {
        budget.used += bytes.len();
        let held = self.0.get_or_insert_with(|| {
            Box::new(Held {
                segments: BTreeMap::new(),
                bytes: 0,
                hole_acked_since: None,
            })
        });
        held.bytes += bytes.len();
        held.segments.insert(at, bytes);
    }

    /// Takes the first segment if it starts at or before `next`.
    fn pop_first_from(&mut self, next: u64, budget: &mut BufferBudget) -> Option<(u64, Vec<u8>)> {
        let held = self.0.as_mut()?;
        let entry = held.segments.first_entry()?;
        if *entry.key() > next {
            return None;
        }
        let (k, bytes) = entry.remove_entry();
        held.bytes -= bytes.len();
        budget.used = budget.used.saturating_sub(bytes.len());
        if held.segments.is_empty() {
            self.0 = None;
        }
        Some((k, bytes))
    }

    /// Drops every segment; returns their byte count.
    fn clear(&mut self, budget: &mut BufferBudget) -> usize {
        let dropped = self.0.take().map_or(0, |h| h.bytes);
        budget.used = budget.used.saturating_sub(dropped);
        dropped
    }

    /// When the hole before the first segment was first acknowledged (`now` if this is the
    /// first time); `None` when nothing is held, so there is no hole.
    fn hole_acked_since(&mut self, now: Timestamp) -> Option<Timestamp> {
        Some(*self.0.as_mut()?.hole_acked_since.get_or_insert(now))
    }

    fn hole_filled(&mut self) {
        if let Some(h) = &mut self.0 {
            h.hole_acked_since = None;
        }
    }
}

/// Where the sender ended a direction (the offset after its last data byte) and how, in one
/// word, where `Option<(u64, End)>` takes two: two per open connection. Offsets come from
/// non-negative `i64`s, so the top bit is free to say RST; all ones is none.
#[derive(Clone, Copy, Debug)]
struct EndAt(u64);

impl EndAt {
    const NONE: EndAt = EndAt(u64::MAX);
    const RST: u64 = 1 << 63;

    fn new(at: u64, how: End) -> Self {
        // An offset of 2^63 - 1 and a RST would read as none: an 8-exabyte stream.
        let at = at.min(Self::RST - 2);
        EndAt(match how {
            End::Fin => at,
            End::Rst => at | Self::RST,
        })
    }

    fn get(self) -> Option<(u64, End)> {
        match self.0 {
            u64::MAX => None,
            e if e & Self::RST != 0 => Some((e & !Self::RST, End::Rst)),
            e => Some((e, End::Fin)),
        }
    }
}

impl Default for EndAt {
    fn default() -> Self {
        EndAt::NONE
    }
}

/// One direction's reassembly. 72 bytes, two per open connection: the sequence space and
/// the end are kept in the fields' spare room (88 bytes as `Option`s).
#[derive(Debug, Default)]
pub struct Reassembler {
    /// Offset of the next byte to deliver.
    next: u64,
    ooo: OutOfOrder,
    end_at: EndAt,
    /// Highest offset the peer acknowledged.
    acked: u64,
    pub stats: Counters,
    /// The sequence number at offset 0, once `spaced` (see [`Reassembler::space`]).
    base: u32,
    spaced: bool,
    finished: bool,
    /// The peer acknowledged the FIN (its sequence number, past the last byte).
    fin_acked: bool,
    /// True when the stream did not start at a SYN.
    pub mid_stream: bool,
}

/// Shared context for one call: limits, the global budget and the anomaly counters.
pub struct Ctx<'c> {
    /// Capture time of the packet being processed.
    pub now: Timestamp,
    pub limits: &'c Limits,
    pub budget: &'c mut BufferBudget,
    pub anomalies: &'c mut AnomalyCounts,
}

impl Reassembler {
    /// The direction's counters as the report has them. `next` moves only by bytes
    /// delivered and by gaps, so the bytes delivered are `next` less the gaps' bytes.
    pub fn report(&self) -> DirectionStats {
        let rare = self.stats.rare.as_deref().cloned().unwrap_or_default();
        DirectionStats {
            packets: self.stats.packets,
            payload_bytes: self.stats.payload_bytes,
            stream_bytes: self.next.saturating_sub(rare.gap_bytes),
            ..rare
        }
    }

    /// Where the stream starts in sequence space, once known.
    fn space(&self) -> Option<SeqSpace> {
        self.spaced.then_some(SeqSpace { base: self.base })
    }

    /// Fixes the start of the stream at `base`, unless it is known already; its start.
    fn space_or(&mut self, base: u32) -> SeqSpace {
        if !self.spaced {
            self.spaced = true;
            self.base = base;
        }
        SeqSpace { base: self.base }
    }

    /// A SYN from this direction fixes the start of the stream at ISN + 1.
    pub fn syn(&mut self, isn: u32) {
        self.space_or(isn.wrapping_add(1));
    }

    /// The initial sequence number, when the SYN was seen.
    pub fn isn(&self) -> Option<u32> {
        self.space()
            .filter(|_| !self.mid_stream)
            .map(|s| s.base.wrapping_sub(1))
    }

    /// The stream offset of sequence number `seq`, once the direction has a start.
    pub fn offset_of(&self, seq: u32) -> Option<i64> {
        self.space().map(|s| s.offset(seq, self.next))
    }

    /// True once a FIN or RST ended this direction and every byte before it was handed on.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether the peer acknowledged this direction's FIN: nothing more is due from either
    /// side for it.
    pub fn fin_acked(&self) -> bool {
        self.fin_acked
    }

    /// Bytes held in the out-of-order buffer.
    pub fn buffered(&self) -> usize {
        self.ooo.bytes()
    }

    /// Takes one segment of this direction.
    pub fn segment(&mut self, seg: Segment<'_>, ctx: &mut Ctx<'_>, out: Out<'_>) {
        self.mid_stream |= !self.spaced;
        let space = self.space_or(seg.seq);
        self.stats.packets += 1;
        let len = seg.payload.len() as u64 + u64::from(seg.missing);
        self.stats.payload_bytes += len;
        let start = space.offset(seg.seq, self.next);
        let end = start.saturating_add(len as i64);
        if seg.fin && self.end_at.get().is_none() && end >= 0 {
            self.end_at = EndAt::new(end as u64, End::Fin);
        }
        if len > 0 {
            self.data(start, seg.payload, seg.missing, ctx, out);
        } else if start == self.next as i64 - 1 {
            self.stats.add(1, |s| &mut s.keepalives);
        }
        self.drain(ctx.budget, out);
        self.check_acked_hole(ctx, out);
    }

    /// The peer acknowledged everything before `ack` (a sequence number of this direction).
    pub fn peer_ack(&mut self, ack: u32, ctx: &mut Ctx<'_>, out: Out<'_>) {
        let Some(space) = self.space() else { return };
        let acked = space.offset(ack, self.next);
        if acked <= 0 {
            return;
        }
        // The FIN takes one sequence number; an ACK of it acknowledges no data.
        let acked = match self.end_at.get() {
            Some((f, _)) => {
                self.fin_acked |= acked as u64 > f;
                (acked as u64).min(f)
            }
            None => acked as u64,
        };
        self.acked = self.acked.max(acked);
        self.check_acked_hole(ctx, out);
    }

    /// Bytes before the first buffered segment that the peer received were sent but not
    /// captured: once that has held for the reorder window, they are a gap.
    fn check_acked_hole(&mut self, ctx: &mut Ctx<'_>, out: Out<'_>) {
        while self.acked > self.next {
            let Some(since) = self.ooo.hole_acked_since(ctx.now) else {
                return;
            };
            if ctx.now.0.saturating_sub(since.0) < ctx.limits.reorder_window_ns {
                return;
            }
            let first = self.ooo.first().unwrap_or(self.acked);
            self.gap(first.min(self.acked) - self.next, out);
            self.drain(ctx.budget, out);
            self.ooo.hole_filled();
        }
        self.ooo.hole_filled();
    }

    /// Ends the direction: every hole left is a gap, buffered data is delivered, and a FIN or
    /// RST seen earlier is emitted. Used at eviction and the end of the capture.
    pub fn flush(&mut self, budget: &mut BufferBudget, out: Out<'_>) {
        while !self.ooo.is_empty() {
            self.release_first_hole(budget, out);
        }
        let end = self.end_at.get().map_or(self.acked, |(e, _)| e);
        if end > self.next && !self.finished {
            self.gap(end - self.next, out);
        }
        self.drain(budget, out);
    }

    /// A RST from this direction with sequence number `seq`: the stream ends there. Like a FIN
    /// it takes effect once every byte before it has been delivered, so data that was sent
    /// before the RST but captured after it (reordering) is not lost.
    pub fn reset(&mut self, seq: u32, budget: &mut BufferBudget, out: Out<'_>) {
        self.stats.packets += 1;
        let at = match self.space() {
            Some(space) => space.offset(seq, self.next).max(self.next as i64) as u64,
            None => self.next,
        };
        match self.end_at.get() {
            // A FIN already ended the stream; a RST after it changes nothing here.
            Some((_, End::Fin)) => {}
            Some((e, End::Rst)) if e <= at => {}
            _ => self.end_at = EndAt::new(at, End::Rst),
        }
        self.drain(budget, out);
    }

    fn data(&mut self, start: i64, payload: &[u8], missing: u32, ctx: &mut Ctx<'_>, out: Out<'_>) {
        let next = self.next as i64;
        let wire_end = start + payload.len() as i64 + i64::from(missing);
        if payload.len() <= 1 && missing == 0 && start == next - 1 {
            self.stats.add(1, |s| &mut s.keepalives);
            return;
        }
        if wire_end <= 0 {
            ctx.anomalies.add(Anomaly::TcpDataBeforeStart);
            return;
        }
        let mut payload = payload;
        let closed_at = if self.finished {
            Some(next)
        } else {
            self.end_at.get().map(|(f, _)| f as i64)
        };
        if let Some(close) = closed_at {
            if start >= close {
                self.stats
                    .add((wire_end - start) as u64, |s| &mut s.bytes_after_end);
                return;
            }
            if self.finished {
                self.stats
                    .add((wire_end.min(close) - start.max(0)) as u64, |s| {
                        &mut s.retransmitted_bytes
                    });
                return;
            }
            // Nothing of this direction lies beyond its FIN.
            payload = payload.get(..(close - start) as usize).unwrap_or(payload);
        }
        if start < next {
            // Already delivered bytes are final (and unknown for the part before offset 0).
            let old = (next - start) as usize;
            self.stats.add(old.min(payload.len()) as u64, |s| {
                &mut s.retransmitted_bytes
            });
            self.in_order(payload.get(old..).unwrap_or(&[]), ctx, out);
        } else if start == next {
            self.in_order(payload, ctx, out);
        } else {
            if !payload.is_empty() {
                self.stats.add(1, |s| &mut s.out_of_order_segments);
                self.buffer(start as u64, payload, ctx, out);
            }
            return;
        }
        if missing > 0 && !self.finished {
            // The snap length cut this segment: its tail is lost for good, up to bytes already
            // held (their first copy wins) and never past the direction's end.
            let mut lost_end = wire_end as u64;
            if let Some((e, _)) = self.end_at.get() {
                lost_end = lost_end.min(e);
            }
            if let Some(k) = self.ooo.first() {
                lost_end = lost_end.min(k);
            }
            if lost_end > self.next {
                self.gap(lost_end - self.next, out);
            }
            self.drain(ctx.budget, out);
        }
    }

    /// Delivers bytes that start at `next`. Where they overlap buffered bytes, the buffered
    /// (first) copy wins: only the fresh parts are added, then everything contiguous drains.
    fn in_order(&mut self, payload: &[u8], ctx: &mut Ctx<'_>, out: Out<'_>) {
        let end = self.next + payload.len() as u64;
        if self.ooo.range(..end).next().is_none() {
            self.deliver(payload, out);
            return;
        }
        let start = self.next;
        let plan = self.plan(start, payload);
        if plan.mismatch {
            ctx.anomalies.add(Anomaly::TcpOverlapMismatch);
        }
        self.stats.add(plan.overlap, |s| &mut s.retransmitted_bytes);
        for (a, b) in plan.fresh {
            let piece = slice(payload, a - start, b - start);
            self.ooo.insert(a, piece.to_vec(), ctx.budget);
        }
        self.drain(ctx.budget, out);
    }

    /// Buffers an out-of-order segment, keeping the first copy of every byte. When a limit is
    /// in the way, the oldest hole is declared lost until the segment fits or is in order.
    fn buffer(&mut self, start: u64, payload: &[u8], ctx: &mut Ctx<'_>, out: Out<'_>) {
        let end = start + payload.len() as u64;
        loop {
            if start <= self.next {
                // Releasing holes moved the stream up to (or past) this segment.
                let skip = (self.next - start) as usize;
                self.in_order(payload.get(skip..).unwrap_or(&[]), ctx, out);
                return;
            }
            let plan = self.plan(start, payload);
            let adding: usize = plan.fresh.iter().map(|(a, b)| (b - a) as usize).sum();
            let over = self.ooo.bytes() + adding > ctx.limits.max_ooo_bytes_per_direction
                || ctx.budget.used + adding > ctx.budget.max
                || self.ooo.len() + plan.fresh.len() > ctx.limits.max_ooo_segments_per_direction;
            if !over {
                if plan.mismatch {
                    ctx.anomalies.add(Anomaly::TcpOverlapMismatch);
                }
                self.stats.add(plan.overlap, |s| &mut s.retransmitted_bytes);
                for (a, b) in plan.fresh {
                    let piece = slice(payload, a - start, b - start);
                    self.ooo.insert(a, piece.to_vec(), ctx.budget);
                }
                return;
            }
            ctx.anomalies.add(Anomaly::TcpReassemblyLimit);
            if self.ooo.is_empty() {
                // Nothing of ours to give up (the global budget is spent elsewhere): skip to
                // this segment.
                self.gap(start - self.next, out);
                self.deliver(payload, out);
                return;
            }
            self.release_first_hole(ctx.budget, out);
            if end <= self.next {
                self.stats
                    .add(payload.len() as u64, |s| &mut s.retransmitted_bytes);
                return;
            }
        }
    }

    /// Which parts of a segment are new to the buffer, and how the rest compares.
    fn plan(&self, start: u64, payload: &[u8]) -> Plan {
        let end = start + payload.len() as u64;
        let mut plan = Plan::default();
        let mut cursor = start;
        let from = self
            .ooo
            .range(..=start)
            .next_back()
            .map_or(start, |(&k, _)| k);
        for (&k, held) in self.ooo.range(from..end) {
            let k_end = k + held.len() as u64;
            if k_end <= cursor {
                continue;
            }
            if k > cursor {
                plan.fresh.push((cursor, k));
                cursor = k;
            }
            let overlap_end = k_end.min(end);
            let new_part = slice(payload, cursor - start, overlap_end - start);
            let old_part = slice(held, cursor - k, overlap_end - k);
            plan.mismatch |= new_part != old_part;
            plan.overlap += overlap_end - cursor;
            cursor = overlap_end;
        }
        if cursor < end {
            plan.fresh.push((cursor, end));
        }
        plan
    }

    /// Declares the hole before the first buffered segment lost and delivers what follows it.
    fn release_first_hole(&mut self, budget: &mut BufferBudget, out: Out<'_>) {
        if let Some(first) = self.ooo.first() {
            if first > self.next {
                self.gap(first - self.next, out);
            }
            self.drain(budget, out);
        }
    }

    /// Delivers buffered segments that have become contiguous, then a pending FIN or RST.
    fn drain(&mut self, budget: &mut BufferBudget, out: Out<'_>) {
        while let Some((k, held)) = self.ooo.pop_first_from(self.next, budget) {
            let skip = (self.next - k) as usize;
            if let Some(rest) = held.get(skip..) {
                self.deliver(rest, out);
            }
        }
        if let Some((f, how)) = self.end_at.get() {
            if self.next >= f && !self.finished {
                self.finished = true;
                // Anything still buffered lies beyond the end the sender declared.
                let dropped = self.ooo.clear(budget);
                self.stats.add(dropped as u64, |s| &mut s.bytes_after_end);
                out(match how {
                    End::Fin => StreamEvent::Fin,
                    End::Rst => StreamEvent::Rst,
                });
            }
        }
    }

    fn deliver(&mut self, data: &[u8], out: Out<'_>) {
        debug_assert!(!self.finished, "data after the end of the stream");
        if data.is_empty() || self.finished {
            return;
        }
        self.next += data.len() as u64;
        out(StreamEvent::Data(data));
    }

    fn gap(&mut self, len: u64, out: Out<'_>) {
        debug_assert!(!self.finished, "gap after the end of the stream");
        if len == 0 || self.finished {
            return;
        }
        self.next += len;
        self.stats.add(1, |s| &mut s.gaps);
        self.stats.add(len, |s| &mut s.gap_bytes);
        out(StreamEvent::Gap(len));
    }
}

/// Where reassembly sends its events.
pub type Out<'o> = &'o mut dyn FnMut(StreamEvent<'_>);

#[derive(Default)]
struct Plan {
    /// Ranges of the segment not held yet.
    fresh: Vec<(u64, u64)>,
    /// Bytes already held.
    overlap: u64,
    /// Some held byte differs from the new copy.
    mismatch: bool,
}

fn slice(data: &[u8], from: u64, to: u64) -> &[u8] {
    data.get(from as usize..to as usize).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (fuzz/regressions/tcp_streams/snaplen-tail-gap-after-fin): the lost tail of
    /// a segment cut by the snap length ran past the FIN and over buffered bytes.
    #[test]
    fn snaplen_tail_gap_stops_at_buffered_bytes_and_the_fin() {
        let limits = Limits::default();
        let mut budget = BufferBudget {
            used: 0,
            max: 1 << 20,
        };
        let mut anomalies = AnomalyCounts::default();
        let mut r = Reassembler::default();
        r.syn(99);
        let mut events = Vec::new();
        for (seq, payload, missing, fin) in
            [(108u32, &b"89"[..], 0, true), (100, b"01234", 100, false)]
        {
            let mut ctx = Ctx {
                now: Timestamp(0),
                limits: &limits,
                budget: &mut budget,
                anomalies: &mut anomalies,
            };
            r.segment(
                Segment {
                    seq,
                    payload,
                    missing,
                    fin,
                },
                &mut ctx,
                &mut |ev| {
                    events.push(match ev {
                        StreamEvent::Data(d) => format!("data {}", String::from_utf8_lossy(d)),
                        other => format!("{other:?}"),
                    })
                },
            );
        }
        assert_eq!(events, ["data 01234", "Gap(3)", "data 89", "Fin"]);
        assert_eq!(budget.used, 0);
    }
}
