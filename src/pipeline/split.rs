//! One capture file (pcap or pcapng) on several threads, each reading and decoding parts
//! of the file and analysing a share of the connections.
//!
//! Contract: the report is byte-identical to a one-thread run's, for any number of threads,
//! with the same exception as [`super::handoff`] (table-wide limits are divided between the
//! owners, here in equal shares).
//!
//! Why this shape: in [`super::handoff`] one thread reads and decodes every packet, about
//! 40% of the work without keys, which bounds two threads near 1.4× one. Here the file is
//! cut into parts of [`PART`] bytes. Every thread owns an equal share of the connections
//! (by [`flow_hash`]) and takes every part in file order, so it sees its connections'
//! segments in capture order, as one thread would. Parts are read and decoded in file order
//! by whichever thread has nothing to take, which sends each owner the part's segments of
//! its connections ([`Batch`]): a thread whose connections cost more reads fewer parts.
//! Reading, decoding and analysing are all divided.
//!
//! - **Record boundaries.** Where a part's first record (pcap) or block (pcapng) starts is
//!   guessed (a chain of plausible headers, [`Layout::plausible`]); each owner checks the
//!   guess against where the part before it ended, in order, so the check is exact. A
//!   wrong guess (a payload that holds what looks like records) is read again by each owner
//!   from the right place: it costs time, never a different report.
//! - **Blocks that change what a reader keeps** (a pcapng section, interface or secrets
//!   block, a simple packet, which takes the time of the packet before): parts are read
//!   with the interfaces in force at the first packet; at such a block, every owner reads
//!   the rest of the file in order itself ([`Owner::read_on`]), as one thread would, and
//!   keeps its own connections. Writers put these blocks before the first packet, where
//!   they are read before the parts.
//! - **IP fragments** need one decoder that sees all of them: a part's decoder leaves them
//!   to the owners ([`Decoder::decode_or_defer`]); every owner decodes all of them, in order,
//!   and keeps the segments it owns. The first owner's counts are the run's.
//! - **Damage** (a record cut short, corrupt or over the limit) ends the reading where one
//!   thread would end it, with the same warning.
//! - **Memory.** No part is read more than [`WINDOW_PER_THREAD`] × N parts ahead of the
//!   slowest owner, so at most that many parts (of [`PART`] bytes and their batches) are
//!   alive at once, besides the ones being taken.
//! - **A file still being written** is read up to the size it had when it was opened.
//!
//! Only a single input read from a regular file is split ([`Plan::new`]): several inputs
//! are merged by time, and standard input cannot be read out of order; those take
//! [`super::handoff`].

use super::shard::{flow_hash, Batch, Owned, Replayed, Shares, WorkerOutcome};
use super::RunStats;
use crate::analysis::Partial;
use crate::anomaly::AnomalyCounts;
use crate::capture::{
    damage_warning, Capture, Chunk, DecryptionSecret, FileSource, InputName, InputSummary, Layout,
    LinkType, Origin, OwnedPacket, RawPacket, Record, CUT_SHORT, READ_ERROR,
};
use crate::flow::{EventMeta, StreamSink};
use crate::proto::tls::keylog::KeyLog;
use crate::wire::{DecodeStats, Decoder, Transport};
use crate::{Limits, Timestamp};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Bytes per part: large enough that a part's fixed costs (a read, a message per owner)
/// are small beside its packets, small enough that the parts in flight stay a few MiB.
/// Parts of 2 MiB were no faster on the 1 GB mix, and cost 6 MB more at 100k connections.
const PART: usize = 1 << 20;
/// Files under this many parts per thread take [`super::handoff`].
const MIN_PARTS_PER_THREAD: u64 = 4;
/// Plausible record headers in a row that make a guess of a part's first record (fewer
/// when the part ends first).
const CHAIN: usize = 4;
/// Bytes before a part read to find its first record (see [`guess`]).
const OVERLAP: usize = 64 << 10;
/// Parts read, per thread, beyond the slowest owner's: bounds the parts alive at once.
const WINDOW_PER_THREAD: usize = 2;
/// Seconds between two records of a guessed chain at most. Captures have gaps longer than
/// this (a guess that misses is read again, slower), but random bytes rarely have this.
const CHAIN_SECONDS: u32 = 3600;
/// Chunks a thread keeps for reuse (the others are freed when the last batch that holds
/// them is done).
const SPARE_CHUNKS: usize = WINDOW_PER_THREAD + 2;

/// A capture that can be split, and how.
pub(super) struct Plan {
    path: PathBuf,
    /// The framing and interfaces in force from the first packet on (`layout.start`).
    layout: Layout,
    len: u64,
    /// The input's summary as opened (name, fingerprint, format, warnings before the
    /// first packet), its counts to be made again.
    summary: InputSummary,
    /// Secrets met before the first packet.
    secrets: Vec<DecryptionSecret>,
    part: usize,
    /// Bytes before a part read to find its first record ([`OVERLAP`], at most a part).
    overlap: usize,
}

impl Plan {
    /// A plan for `capture` (opened from `inputs`) on `threads` threads, when it is one
    /// capture file, regular and large enough to be worth it (its secrets read so far are
    /// then taken).
    pub(super) fn new(inputs: &[InputName], capture: &mut Capture, threads: usize) -> Option<Self> {
        if threads < 2 {
            return None;
        }
        Self::with_part(inputs, capture, PART, MIN_PARTS_PER_THREAD * threads as u64)
    }

    /// A plan with parts of `part` bytes when the file has `min_parts` at least (tests cut
    /// small files into many parts, whose guesses start at most a part before them).
    pub(super) fn with_part(
        inputs: &[InputName],
        capture: &mut Capture,
        part: usize,
        min_parts: u64,
    ) -> Option<Self> {
        let [InputName::Path(path)] = inputs else {
            return None;
        };
        let (layout, mut summary) = capture.single_layout()?;
        let meta = std::fs::metadata(path).ok()?;
        let part = part.max(1);
        if !meta.is_file() || summary.packets == 0 || meta.len().div_ceil(part as u64) < min_parts {
            return None;
        }
        // Guesses look for records like the file's first ones: when those do not look
        // plausible (a writer's quirk, such as microseconds past a second), no guess would
        // be right, and every owner would read every part again.
        let mut first = Vec::new();
        read_at(&mut None, path, layout.start, &mut first, OVERLAP as u64).ok()?;
        if !chain(&layout, &first, 0) {
            return None;
        }
        summary.packets = 0;
        summary.bytes = layout.start;
        summary.link_types.clear();
        Some(Plan {
            path: path.clone(),
            layout,
            len: meta.len(),
            summary,
            secrets: capture.take_secrets(),
            part,
            overlap: OVERLAP.min(part),
        })
    }

    /// The part the first packet is in: the parts before it have nothing to read.
    fn first_part(&self) -> usize {
        usize::try_from(self.layout.start / self.part as u64).unwrap_or(usize::MAX)
    }

    fn parts(&self) -> usize {
        usize::try_from(self.len.div_ceil(self.part as u64)).unwrap_or(usize::MAX)
    }

    /// The bytes of part `k`: records that start there are its records.
    fn bounds(&self, k: usize) -> (u64, u64) {
        let at = |k: usize| (k as u64).saturating_mul(self.part as u64).min(self.len);
        (at(k), at(k + 1))
    }
}

/// A part as read, for one owner: what every owner learns of it, and the owner's batch.
struct Part {
    k: usize,
    facts: Facts,
    /// The part decoder's counts (in the first owner's copy only).
    counts: Option<Box<(DecodeStats, AnomalyCounts)>>,
    batch: Batch,
}

/// What a part's reading found, the same for every owner.
#[derive(Clone, Default)]
struct Facts {
    /// Where its first record starts (guessed unless it was known); `None`: none was found.
    start: Option<u64>,
    /// Where the records read end: after the last one that starts in the part, or where
    /// damage stopped the reading.
    end: u64,
    /// Why reading stops at `end`.
    damage: Option<String>,
    /// The block at `end` changes what a reader keeps: the file is read on from there
    /// in order ([`Owner::read_on`]).
    stateful: bool,
    packets: u64,
    /// Link types of its packets, in the order they came.
    links: Vec<LinkType>,
    /// Its last packet's time.
    last_ts: Option<Timestamp>,
    first_ts: Option<Timestamp>,
    max_ts: Option<Timestamp>,
}

impl Facts {
    fn damaged(&mut self, at: u64, what: &str) {
        self.end = at;
        self.damage = Some(what.to_string());
    }
}

/// Reads and decodes parts of the file, on one thread.
struct PartReader<'p> {
    plan: &'p Plan,
    file: Option<File>,
    decoder: Decoder,
    shares: Shares,
    owners: usize,
    spare: Vec<Chunk>,
    /// A record that runs past its part's end, read whole (shared like a part's chunk).
    tail: Chunk,
}

impl PartReader<'_> {
    /// Part `k`, read from `start` when it is known, else from a guess; one copy per owner.
    fn read(&mut self, k: usize, start: Option<u64>) -> Vec<Part> {
        let mut facts = Facts {
            start,
            end: start.unwrap_or(0),
            ..Facts::default()
        };
        let mut batches: Vec<Batch> = (0..self.owners).map(|_| Batch::default()).collect();
        let counts = self.read_into(k, &mut facts, &mut batches);
        let mut counts = Some(Box::new(counts));
        batches
            .into_iter()
            .map(|batch| Part {
                k,
                facts: facts.clone(),
                counts: counts.take(),
                batch,
            })
            .collect()
    }

    /// Reads part `k` from `facts.start` (or a guess), filling each owner's batch and the
    /// facts; returns the decoder's counts.
    fn read_into(
        &mut self,
        k: usize,
        facts: &mut Facts,
        batches: &mut [Batch],
    ) -> (DecodeStats, AnomalyCounts) {
        let start = facts.start;
        let (lo, hi) = self.plan.bounds(k);
        // A guess starts from further back, where the records before the part are.
        let from = start.unwrap_or(lo.saturating_sub(self.plan.overlap as u64));
        if from >= hi {
            return Default::default();
        }
        let skip = (lo - from.min(lo)) as usize;
        let mut chunk = self.fresh_chunk();
        let read = Arc::get_mut(&mut chunk)
            .ok_or_else(|| std::io::Error::other("chunk still shared"))
            .and_then(|buf| read_at(&mut self.file, &self.plan.path, from, buf, hi - from));
        if read.is_err() {
            // Only where the part surely starts is it where reading stops; a guess is
            // checked, and the part read again from there.
            if start.is_some() {
                facts.damaged(from, READ_ERROR);
            }
            return Default::default();
        }
        let first = match start {
            Some(_) => Some(0),
            None => guess(&self.plan.layout, &chunk, skip),
        };
        let Some(mut p) = first else {
            return Default::default();
        };
        facts.start = Some(from + p as u64);
        // The file's end lies within this part's bytes.
        let at_end = from + chunk.len() as u64 >= self.plan.len;
        let mut local = 0;
        while from + (p as u64) < hi {
            let at = from + p as u64;
            let rest = chunk.get(p..).unwrap_or_default();
            let mut in_tail = false;
            let record = match self.plan.layout.block(rest) {
                Record::Need(_) if at_end => Record::Damage(CUT_SHORT.into()),
                Record::Need(wanted) => match self.read_whole(at, wanted) {
                    Ok(()) => {
                        in_tail = true;
                        self.plan.layout.block(&self.tail)
                    }
                    Err(_) => Record::Damage(READ_ERROR.into()),
                },
                r => r,
            };
            // Where the record lies, shared by every batch that keeps a part of it.
            let held = if in_tail { &self.tail } else { &chunk };
            let (len, link, ts, data, orig_len) = match record {
                Record::Packet {
                    len,
                    link,
                    ts,
                    data,
                    orig_len,
                } => (len, link, ts, data, orig_len),
                Record::Skip(len) => {
                    p += len;
                    continue;
                }
                Record::Stateful => {
                    facts.stateful = true;
                    break;
                }
                Record::Need(_) => {
                    facts.damaged(at, CUT_SHORT);
                    break;
                }
                Record::Damage(what) => {
                    facts.damaged(at, &what);
                    break;
                }
            };
            local += 1;
            let pkt = RawPacket {
                index: local,
                origin: Origin {
                    input: 0,
                    packet: local,
                },
                ts,
                link,
                data,
                orig_len,
            };
            match self.decoder.decode_or_defer(&pkt, true) {
                Ok(Some(d)) => {
                    if let Transport::Tcp(seg) = d.transport {
                        let owner = owner_of(self.shares, flow_hash(d.src, d.dst));
                        if let Some(batch) = batches.get_mut(owner) {
                            batch.push(&d, &seg, held);
                        }
                    }
                }
                Ok(None) => {}
                Err(_) => {
                    for batch in batches.iter_mut() {
                        batch.push_raw(&pkt, held);
                    }
                }
            }
            facts.first_ts.get_or_insert(ts);
            facts.max_ts = facts.max_ts.max(Some(ts));
            facts.last_ts = Some(ts);
            if !facts.links.contains(&link) {
                facts.links.push(link);
            }
            p += len;
        }
        facts.packets = local;
        if facts.damage.is_none() {
            facts.end = from + p as u64;
        }
        self.keep(chunk);
        (
            std::mem::take(&mut self.decoder.stats),
            std::mem::take(&mut self.decoder.anomalies),
        )
    }

    /// Reads the record at `at`, `wanted` bytes at least, into `tail`; more when its header
    /// asks for more (never past the record limit: [`Layout::block`] stops before).
    fn read_whole(&mut self, at: u64, mut wanted: usize) -> std::io::Result<()> {
        loop {
            // A tail that batches still hold is theirs; this one is new.
            if Arc::get_mut(&mut self.tail).is_none() {
                self.tail = Chunk::default();
            }
            let Some(buf) = Arc::get_mut(&mut self.tail) else {
                return Err(std::io::Error::other("tail still shared"));
            };
            buf.clear();
            read_at(&mut self.file, &self.plan.path, at, buf, wanted as u64)?;
            match self.plan.layout.block(&self.tail) {
                Record::Need(more) if more > wanted && self.tail.len() == wanted => wanted = more,
                _ => return Ok(()),
            }
        }
    }

    /// A chunk nobody else holds any more, or a new one.
    fn fresh_chunk(&mut self) -> Chunk {
        match self.spare.iter().position(|c| Arc::strong_count(c) == 1) {
            Some(i) => {
                let mut c = self.spare.swap_remove(i);
                if let Some(v) = Arc::get_mut(&mut c) {
                    v.clear();
                }
                c
            }
            None => {
                let part = u64::try_from(self.plan.part)
                    .unwrap_or(u64::MAX)
                    .min(self.plan.len);
                let part = usize::try_from(part).unwrap_or(usize::MAX);
                Arc::new(Vec::with_capacity(part.saturating_add(self.plan.overlap)))
            }
        }
    }

    fn keep(&mut self, chunk: Chunk) {
        if self.spare.len() < SPARE_CHUNKS {
            self.spare.push(chunk);
        }
    }
}

/// Reads `len` bytes of the file at `at` into `buf` (fewer at its end), opening it the first
/// time: each thread has its own handle, so that its position is its own.
fn read_at(
    file: &mut Option<File>,
    path: &std::path::Path,
    at: u64,
    buf: &mut Vec<u8>,
    len: u64,
) -> std::io::Result<()> {
    let file = match file {
        Some(f) => f,
        None => file.insert(File::open(path)?),
    };
    file.seek(SeekFrom::Start(at))?;
    buf.reserve(usize::try_from(len).unwrap_or(usize::MAX));
    // `read_to_end` fills the spare capacity without zeroing it first.
    file.by_ref().take(len).read_to_end(buf)?;
    Ok(())
}

/// Where the first record at or after `data[skip..]` (a part's bytes, after some of the
/// bytes before it) seems to start. A chain is a run of [`CHAIN`] plausible record headers,
/// at most [`CHAIN_SECONDS`] apart (or at least two that run to the end of `data`); the
/// first chain found is followed, record by record, to the part. A chain can start at a
/// header that is not one (a payload's bytes that look like one), but following it soon
/// falls into step with the real records, as their lengths lead from one to the next: it
/// is where it arrives, not where it started, that is the guess.
fn guess(layout: &Layout, data: &[u8], skip: usize) -> Option<usize> {
    let chain = |p: usize| chain(layout, data, p);
    let follow = |mut at: usize| {
        while at < skip {
            match layout.plausible(data.get(at..).unwrap_or_default()) {
                Some((len, _)) => at += len,
                // Off the chain: look again from here.
                None => at = (at + 1..data.len()).find(|&p| chain(p))?,
            }
        }
        Some(at)
    };
    let mut at = follow((0..data.len()).find(|&p| chain(p))?)?;
    // A chain read four bytes late is a chain too, when records' captured and original
    // lengths agree (their microseconds read as seconds, their lengths as microseconds and
    // captured length, their data's first bytes as original length), and it never falls
    // into step. Read four bytes early, a real chain is not one (its seconds read as
    // microseconds are too many, unless the capture's clock is near 1970).
    while at >= 4 && chain(at - 4) {
        at -= 4;
    }
    let at = follow(at)?;
    (at < data.len()).then_some(at)
}

/// Whether a chain starts at `data[p..]`: [`CHAIN`] plausible headers, each leading to the
/// next, at most [`CHAIN_SECONDS`] apart (or at least two that run to the end of `data`).
fn chain(layout: &Layout, data: &[u8], p: usize) -> bool {
    let mut at = p;
    let mut last: Option<u32> = None;
    for n in 0..CHAIN {
        let rest = data.get(at..).unwrap_or_default();
        if rest.len() < layout.header() {
            return n > 1;
        }
        let Some((len, secs)) = layout.plausible(rest) else {
            return false;
        };
        if let (Some(l), Some(s)) = (last, secs) {
            if l.abs_diff(s) > CHAIN_SECONDS {
                return false;
            }
        }
        last = secs;
        at = at.saturating_add(len);
    }
    true
}

/// The owner of a connection's hash: the first share is the first owner's.
fn owner_of(shares: Shares, hash: u64) -> usize {
    shares.lane(hash).map_or(0, |lane| lane + 1)
}

/// One owner of connections: takes every part in order, keeping its share.
struct Owner {
    me: usize,
    own: Owned,
    /// Decodes the packets the parts' decoders left (IP fragments), all of them, and every
    /// packet read on in order after a block that changes what a reader keeps.
    decoder: Decoder,
    shares: Shares,
    /// Where the next part's first record must start.
    expected: u64,
    /// The input's summary so far: packets, bytes, link types, warnings.
    summary: InputSummary,
    first_ts: Option<Timestamp>,
    /// The latest time of a packet so far (where the flow table's end happens).
    max_ts: Timestamp,
    /// The last packet's time (a pcapng Simple Packet Block takes it).
    last_ts: Timestamp,
    /// The parts' decoders' counts (the first owner's).
    counts: (DecodeStats, AnomalyCounts),
    /// No part is taken any more: the reading ended (damage) or went on in order.
    done: bool,
}

impl Owner {
    fn take(&mut self, part: Part, reader: &mut PartReader<'_>) {
        let (_, hi) = reader.plan.bounds(part.k);
        let right = match part.facts.start {
            Some(start) => start == self.expected,
            None => self.expected >= hi,
        };
        let mut part = if right {
            part
        } else {
            let mine = reader.read(part.k, Some(self.expected));
            match mine.into_iter().nth(self.me) {
                Some(p) => p,
                None => return,
            }
        };
        if let Some(c) = part.counts.take() {
            self.counts.0.add(&c.0);
            self.counts.1.merge(&c.1);
        }
        let Owner {
            me,
            own,
            decoder,
            shares,
            ..
        } = self;
        part.batch.replay(self.summary.packets, &mut |r| match r {
            Replayed::Segment(d, seg) => own.process(&d, &seg),
            Replayed::Deferred(pkt) => keep_own(decoder, own, *shares, *me, &pkt),
        });
        let facts = part.facts;
        self.summary.packets += facts.packets;
        for link in facts.links {
            if !self.summary.link_types.contains(&link) {
                self.summary.link_types.push(link);
            }
        }
        if self.first_ts.is_none() {
            self.first_ts = facts.first_ts;
        }
        self.max_ts = self.max_ts.max(facts.max_ts.unwrap_or_default());
        self.last_ts = facts.last_ts.unwrap_or(self.last_ts);
        if facts.start.is_some() {
            self.expected = facts.end;
            self.summary.bytes = facts.end;
        }
        if let Some(what) = facts.damage {
            self.summary.warnings.push(damage_warning(&what, facts.end));
            self.done = true;
        } else if facts.stateful {
            self.read_on(facts.end, reader.plan);
            self.done = true;
        }
    }

    /// Reads the rest of the file in order from `at`, a block that changes what a reader
    /// keeps, as one thread would (every owner does, keeping its own connections).
    fn read_on(&mut self, at: u64, plan: &Plan) {
        let summary = self.summary.clone();
        let mut src = match FileSource::resume(&plan.path, &plan.layout, at, summary, self.last_ts)
        {
            Ok(src) => src,
            Err(_) => {
                self.summary.warnings.push(damage_warning(READ_ERROR, at));
                return;
            }
        };
        let mut pkt = OwnedPacket::default();
        while src.next_packet(&mut pkt) {
            for secret in src.take_secrets() {
                StreamSink::key_material(&mut self.own.ledger, &secret);
            }
            let index = src.summary().packets;
            let (Some(link), Some(data)) = (pkt.link, src.chunk().get(pkt.at.0..pkt.at.1)) else {
                continue;
            };
            self.first_ts.get_or_insert(pkt.ts);
            self.max_ts = self.max_ts.max(pkt.ts);
            let raw = RawPacket {
                index,
                origin: Origin {
                    input: 0,
                    packet: index,
                },
                ts: pkt.ts,
                link,
                data,
                orig_len: pkt.orig_len,
            };
            keep_own(&mut self.decoder, &mut self.own, self.shares, self.me, &raw);
        }
        self.summary = src.summary().clone();
        self.expected = self.summary.bytes;
    }

    fn last(&self) -> EventMeta {
        EventMeta {
            ts: self.max_ts,
            packet: self.summary.packets,
        }
    }
}

/// Decodes a packet every owner sees, and analyses its segment if it is `me`'s.
fn keep_own(
    decoder: &mut Decoder,
    own: &mut Owned,
    shares: Shares,
    me: usize,
    pkt: &RawPacket<'_>,
) {
    if let Some(d) = decoder.decode(pkt) {
        if let Transport::Tcp(seg) = d.transport {
            if owner_of(shares, flow_hash(d.src, d.dst)) == me {
                own.process(&d, &seg);
            }
        }
    }
}

/// What a thread ends with: its connections, and (all owners agree on them) what was read.
struct Ended {
    outcome: WorkerOutcome,
    owner_decoder: Decoder,
    counts: (DecodeStats, AnomalyCounts),
    summary: InputSummary,
    first_ts: Option<Timestamp>,
    last: EventMeta,
}

/// Tells the other threads when this one panics.
struct PanicGuard<'a>(&'a AtomicBool);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// The channels of one thread.
struct Lanes {
    me: usize,
    from_others: mpsc::Receiver<Part>,
    to: Vec<mpsc::Sender<Part>>,
}

/// Analyses the planned file on `threads` threads (this one and `threads - 1` more).
pub(super) fn analyze(
    plan: &Plan,
    limits: &Limits,
    keylog: &KeyLog,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> Partial {
    let n = threads.max(1);
    let shares = Shares::new(n - 1, 1.0);
    let (first, others) = shares.table_limits(limits);
    let owner_limits: Vec<Limits> = std::iter::once(first).chain(others).collect();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..n).map(|_| mpsc::channel::<Part>()).unzip();
    let mut lanes: Vec<Lanes> = receivers
        .into_iter()
        .enumerate()
        .map(|(me, from_others)| Lanes {
            me,
            from_others,
            to: senders.clone(),
        })
        .collect();
    drop(senders);
    let abandoned = AtomicBool::new(false);
    let context = Context {
        next_read: AtomicUsize::new(plan.first_part()),
        taken: (0..n)
            .map(|_| AtomicUsize::new(plan.first_part()))
            .collect(),
        abandoned: &abandoned,
        plan,
        keylog,
        shares,
        owners: n,
        limits,
    };
    let ended: Vec<Ended> = std::thread::scope(|s| {
        // This thread failing to start one (or panicking) must not leave the others waiting
        // for its parts while the scope waits for them.
        let _guard = PanicGuard(&abandoned);
        let mut handles = Vec::with_capacity(n);
        let mine = lanes.remove(0);
        for lane in lanes {
            let (context, limits) = (&context, owner_limits.get(lane.me).unwrap_or(limits));
            let handle = std::thread::Builder::new()
                .name(format!("misdirect-part-{}", lane.me))
                .spawn_scoped(s, move || context.run(lane, limits, &mut |_| {}))
                // What `std::thread::spawn` does when the system has no thread left for us.
                .unwrap_or_else(|e| panic!("cannot start a thread: {e}"));
            handles.push(handle);
        }
        let first_limits = owner_limits.first().unwrap_or(limits);
        let mut all = vec![context.run(mine, first_limits, progress)];
        for h in handles {
            // A thread that panicked is a bug: let it surface as one.
            all.push(match h.join() {
                Ok(e) => e,
                Err(panic) => std::panic::resume_unwind(panic),
            });
        }
        all
    });
    let mut run = RunStats::default();
    let mut parts = Vec::with_capacity(ended.len());
    let mut summary = plan.summary.clone();
    for (i, mut e) in ended.into_iter().enumerate() {
        if i == 0 {
            // Every owner took the same parts; the first one's counts are the run's.
            e.owner_decoder.finish();
            let (mut decode, mut anomalies) = e.counts;
            decode.add(&e.owner_decoder.stats);
            anomalies.merge(&e.owner_decoder.anomalies);
            run.decode = decode;
            run.anomalies = anomalies;
            run.first_ts = e.first_ts;
            run.last_ts = e.first_ts.map(|_| e.last.ts);
            summary = e.summary;
        }
        run.connections += e.outcome.opened;
        run.evicted += e.outcome.evicted;
        run.anomalies.merge(&e.outcome.anomalies);
        parts.push(e.outcome.part);
    }
    progress(summary.bytes);
    Partial {
        inputs: vec![summary],
        parts,
        run,
    }
}

/// What every thread shares.
struct Context<'a> {
    /// The next part nobody has read yet.
    next_read: AtomicUsize,
    /// How many parts each owner has taken.
    taken: Vec<AtomicUsize>,
    /// Set when a thread panicked: the others stop waiting for its parts.
    abandoned: &'a AtomicBool,
    plan: &'a Plan,
    keylog: &'a KeyLog,
    shares: Shares,
    owners: usize,
    limits: &'a Limits,
}

impl Context<'_> {
    /// One thread: takes every part in order, and reads the next part nobody has read
    /// whenever the next one to take is not there yet.
    fn run(&self, lanes: Lanes, limits: &Limits, progress: &mut dyn FnMut(u64)) -> Ended {
        let _guard = PanicGuard(self.abandoned);
        let n = self.owners;
        let count = self.plan.parts();
        let mut reader = PartReader {
            plan: self.plan,
            file: None,
            decoder: Decoder::new(self.limits),
            shares: self.shares,
            owners: n,
            spare: Vec::new(),
            tail: Chunk::default(),
        };
        let mut owner = Owner {
            me: lanes.me,
            own: Owned::new(limits, self.keylog),
            decoder: Decoder::new(self.limits),
            shares: self.shares,
            expected: self.plan.layout.start,
            summary: self.plan.summary.clone(),
            first_ts: None,
            max_ts: Timestamp::default(),
            last_ts: self.plan.layout.last_ts,
            counts: Default::default(),
            done: false,
        };
        for secret in &self.plan.secrets {
            StreamSink::key_material(&mut owner.own.ledger, secret);
        }
        let mut waiting: BTreeMap<usize, Part> = BTreeMap::new();
        let first = self.plan.first_part();
        let mut next_take = first;
        let mine = self.taken.get(lanes.me);
        while !owner.done && next_take < count {
            // The next part, when it is here.
            if let Some(part) = waiting.remove(&next_take) {
                owner.take(part, &mut reader);
                next_take += 1;
                if let Some(t) = mine {
                    t.store(next_take, Ordering::Relaxed);
                }
                progress(self.plan.bounds(next_take).0);
                continue;
            }
            if let Ok(part) = lanes.from_others.try_recv() {
                waiting.insert(part.k, part);
                continue;
            }
            // Else read the next part nobody has read, within the window.
            let slowest = self.taken.iter().map(|t| t.load(Ordering::Relaxed)).min();
            let k = self.next_read.load(Ordering::Relaxed);
            if k < count && k < slowest.unwrap_or(0).saturating_add(WINDOW_PER_THREAD * n) {
                if self
                    .next_read
                    .compare_exchange(k, k + 1, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    let start = (k == first).then_some(self.plan.layout.start);
                    for (o, part) in reader.read(k, start).into_iter().enumerate() {
                        if o == lanes.me {
                            waiting.insert(part.k, part);
                        } else if let Some(to) = lanes.to.get(o) {
                            // An owner that stopped (the reading ended before) takes no more.
                            let _ = to.send(part);
                        }
                    }
                }
                continue;
            }
            // Else wait: for a part another thread is reading, or for the slowest owner to
            // take one (it does not say when, hence the timeout).
            if self.abandoned.load(Ordering::Relaxed) {
                break;
            }
            if let Ok(part) = lanes.from_others.recv_timeout(Duration::from_micros(200)) {
                waiting.insert(part.k, part);
            }
        }
        if let Some(t) = mine {
            // A thread that stopped early holds no one back.
            t.store(usize::MAX, Ordering::Relaxed);
        }
        drop(lanes);
        let last = owner.last();
        Ended {
            first_ts: owner.first_ts,
            last,
            summary: owner.summary,
            counts: owner.counts,
            owner_decoder: owner.decoder,
            outcome: owner.own.finish(last),
        }
    }
}
