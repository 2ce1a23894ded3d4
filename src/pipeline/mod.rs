//! The driver: capture → decode → flow table → a [`StreamSink`], one packet at a time; and
//! whole analyses on several threads.
//!
//! Kept apart from the layers so each stays sans-IO and testable; the CLI, the tests and the
//! benchmarks all run captures through here.
//!
//! - One capture on several threads: [`split`] for a large legacy pcap file (each thread
//!   reads and decodes parts of the file and owns a share of the connections), else
//!   [`handoff`] (this thread reads and decodes, and each thread owns a share of the
//!   connections). The report is the same for any number of threads.
//! - Several independent captures ([`crate::capture::partition`]): [`analyze_partitions`]
//!   analyses each on its own, several at a time, and merges the reports
//!   ([`Report::merge`]).
//! - A report's connections are a list, or records spilled to a temporary file
//!   ([`analyze_partitions_spilled`]) so that memory does not grow with the capture.

mod handoff;
mod shard;
mod split;

use crate::analysis::{Ledger, Listing, Partial, Report, SpillError, Spilled};
use crate::anomaly::AnomalyCounts;
use crate::capture::{Capture, CaptureError, Chunk, DecryptionSecret, InputName, RawPacket};
use crate::flow::{EventMeta, FlowTable, StreamSink};
use crate::proto::tls::keylog::KeyLog;
use crate::wire::{DecodeStats, Decoder, Transport};
use crate::{Limits, Timestamp};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Totals of one run, besides what the sink collected.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    pub decode: DecodeStats,
    pub anomalies: AnomalyCounts,
    pub connections: u64,
    pub evicted: u64,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
}

/// The packets a run has seen: the first time, and the latest time and packet (where the
/// flow table's end happens).
#[derive(Clone, Copy, Debug)]
struct Span {
    first_ts: Option<Timestamp>,
    last: EventMeta,
}

impl Span {
    fn new() -> Self {
        Span {
            first_ts: None,
            last: EventMeta {
                ts: Timestamp::default(),
                packet: 0,
            },
        }
    }

    fn see(&mut self, pkt: &RawPacket<'_>) {
        self.first_ts.get_or_insert(pkt.ts);
        self.last = EventMeta {
            ts: self.last.ts.max(pkt.ts),
            packet: pkt.index,
        };
    }

    fn last_ts(&self) -> Option<Timestamp> {
        self.first_ts.map(|_| self.last.ts)
    }
}

/// What [`walk`] hands out, in capture order.
enum Item<'a> {
    /// Key material from the capture, before the packets that follow it.
    Secret(DecryptionSecret),
    /// A packet, and the chunk of input it lies in.
    Packet(RawPacket<'a>, &'a Chunk),
}

/// Walks a capture, calling `progress` now and then with the input bytes read so far.
fn walk(capture: &mut Capture, progress: &mut dyn FnMut(u64), each: &mut dyn FnMut(Item<'_>)) {
    while capture.advance() {
        for secret in capture.take_secrets() {
            each(Item::Secret(secret));
        }
        let (Some(pkt), Some(chunk)) = (capture.current(), capture.current_chunk()) else {
            break;
        };
        if pkt.index % 16_384 == 0 {
            progress(capture.bytes_read());
        }
        each(Item::Packet(pkt, chunk));
    }
    progress(capture.bytes_read());
}

/// Decoding and reassembly for one packet stream, whatever its source (files or an
/// interface): feed it packets in order, then finish.
pub struct Pipeline {
    decoder: Decoder,
    flows: FlowTable,
    span: Span,
}

impl Pipeline {
    pub fn new(limits: &Limits) -> Self {
        Pipeline {
            decoder: Decoder::new(limits),
            flows: FlowTable::new(limits),
            span: Span::new(),
        }
    }

    /// Takes the next packet of the stream.
    pub fn packet(&mut self, pkt: &RawPacket<'_>, sink: &mut dyn StreamSink) {
        self.span.see(pkt);
        if let Some(decoded) = self.decoder.decode(pkt) {
            if let Transport::Tcp(seg) = &decoded.transport {
                self.flows.process(&decoded, seg, sink);
            }
        }
    }

    /// The open connections' ids and sink states (for [`crate::analysis::Ledger::add_keys`]).
    pub fn sink_states(
        &mut self,
    ) -> impl Iterator<Item = (crate::flow::ConnId, &mut crate::flow::SinkState)> {
        self.flows.sink_states()
    }

    /// Ends the stream: open connections are closed in id order.
    pub fn finish(mut self, sink: &mut dyn StreamSink) -> RunStats {
        self.decoder.finish();
        self.flows.finish(self.span.last, sink);
        let mut anomalies = self.decoder.anomalies;
        anomalies.merge(&self.flows.anomalies);
        RunStats {
            decode: self.decoder.stats,
            anomalies,
            connections: self.flows.opened,
            evicted: self.flows.evicted,
            first_ts: self.span.first_ts,
            last_ts: self.span.last_ts(),
        }
    }
}

/// Feeds every packet of `capture` through decoding and reassembly into `sink`.
/// `progress` is called now and then with the input bytes consumed so far.
pub fn run(
    capture: &mut Capture,
    limits: &Limits,
    sink: &mut dyn StreamSink,
    progress: &mut dyn FnMut(u64),
) -> RunStats {
    let mut pipeline = Pipeline::new(limits);
    walk(capture, progress, &mut |item| match item {
        Item::Secret(secret) => sink.key_material(&secret),
        Item::Packet(pkt, _) => pipeline.packet(&pkt, sink),
    });
    pipeline.finish(sink)
}

/// Runs a whole capture through the standard pipeline, on this thread, and returns its
/// report.
pub fn analyze(
    capture: Capture,
    limits: &Limits,
    keylog: KeyLog,
    progress: &mut dyn FnMut(u64),
) -> Report {
    Report::assemble(analyze_one(capture, limits, &keylog, progress), 1)
}

/// [`analyze`], stopping short of numbering and diagnosing.
fn analyze_one(
    mut capture: Capture,
    limits: &Limits,
    keylog: &KeyLog,
    progress: &mut dyn FnMut(u64),
) -> Partial {
    let mut ledger = Ledger::new(keylog, limits);
    let run = run(&mut capture, limits, &mut ledger, progress);
    Partial {
        inputs: capture.summaries(),
        parts: vec![ledger.into_part()],
        run,
    }
}

/// Analyses one capture (its inputs merged by time) on `threads` threads. `progress` is
/// called on this thread with the bytes read so far.
pub fn analyze_inputs(
    inputs: &[InputName],
    limits: &Limits,
    keylog: &KeyLog,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<Report, CaptureError> {
    let partial = inputs_partial(inputs, limits, keylog, threads, progress)?;
    Ok(Report::assemble(partial, 1))
}

/// [`analyze_inputs`], stopping short of numbering and diagnosing.
fn inputs_partial(
    inputs: &[InputName],
    limits: &Limits,
    keylog: &KeyLog,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<Partial, CaptureError> {
    let mut capture = Capture::open(inputs, limits)?;
    if let Some(plan) = split::Plan::new(inputs, &mut capture, threads) {
        drop(capture);
        return Ok(split::analyze(&plan, limits, keylog, threads, progress));
    }
    Ok(capture_partial(capture, limits, keylog, threads, progress))
}

/// [`analyze_inputs`] on a single capture file read in parts of `part` bytes, whatever its
/// size (large files are read so by [`analyze_inputs`]; tests cut small files into many
/// small parts). `Ok(None)` when the inputs cannot be read in parts.
#[doc(hidden)]
pub fn analyze_in_parts(
    inputs: &[InputName],
    limits: &Limits,
    keylog: &KeyLog,
    threads: usize,
    part: usize,
) -> Result<Option<Report>, CaptureError> {
    let mut capture = Capture::open(inputs, limits)?;
    let Some(plan) = split::Plan::with_part(inputs, &mut capture, part, 0) else {
        return Ok(None);
    };
    drop(capture);
    let partial = split::analyze(&plan, limits, keylog, threads, &mut |_| {});
    Ok(Some(Report::assemble(partial, 1)))
}

/// Analyses an opened capture on `threads` threads (one: this thread alone). Each owner of
/// connections gets a copy of the key log that shares its secrets ([`KeyLog::with_record_budget`]).
pub fn analyze_capture(
    capture: Capture,
    limits: &Limits,
    keylog: &KeyLog,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> Report {
    Report::assemble(
        capture_partial(capture, limits, keylog, threads, progress),
        1,
    )
}

/// [`analyze_capture`], stopping short of numbering and diagnosing.
fn capture_partial(
    capture: Capture,
    limits: &Limits,
    keylog: &KeyLog,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> Partial {
    if threads > 1 {
        handoff::analyze(capture, limits, keylog, threads, progress)
    } else {
        analyze_one(capture, limits, keylog, progress)
    }
}

/// Analyses each partition on its own, up to `threads` at a time (each on one thread;
/// a single partition gets them all), and merges the reports in partition order, connection
/// ids following each other. A partition that cannot be read is left out and its error
/// returned beside the report.
pub fn analyze_partitions(
    partitions: &[Vec<InputName>],
    limits: &Limits,
    keylog: &KeyLog,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> (Option<Report>, Vec<CaptureError>) {
    // A list is never read back from a spill: no error is made.
    partitions_as(partitions, limits, keylog, threads, progress).unwrap_or_default()
}

/// [`analyze_partitions`] for a report whose records wait on a temporary file until it is
/// written ([`Spilled`]): memory does not grow with the capture. The error: the records
/// could not be read back.
#[allow(clippy::type_complexity)]
pub fn analyze_partitions_spilled(
    partitions: &[Vec<InputName>],
    limits: &Limits,
    keylog: &KeyLog,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<(Option<Report<Spilled>>, Vec<CaptureError>), SpillError> {
    partitions_as(partitions, limits, keylog, threads, progress)
}

#[allow(clippy::type_complexity)]
fn partitions_as<L: Listing>(
    partitions: &[Vec<InputName>],
    limits: &Limits,
    keylog: &KeyLog,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<(Option<Report<L>>, Vec<CaptureError>), SpillError> {
    let limits = &Limits {
        spill_records: L::SPILLS,
        ..limits.clone()
    };
    if let [one] = partitions {
        return match inputs_partial(one, limits, keylog, threads, progress) {
            Ok(p) => Ok((Some(L::assemble(p, 1)?), Vec::new())),
            Err(e) => Ok((None, vec![e])),
        };
    }
    // Bytes of finished partitions, plus each running one's progress in its slot.
    let done = AtomicU64::new(0);
    let slots: Vec<AtomicU64> = (0..threads.max(1)).map(|_| AtomicU64::new(0)).collect();
    let read = AtomicU64::new(0);
    let outcomes = on_threads(
        partitions.iter().collect(),
        threads,
        &read,
        progress,
        |inputs, slot| {
            let outcome = Capture::open(inputs, limits).map(|capture| {
                analyze_one(capture, limits, keylog, &mut |b| {
                    if let Some(s) = slots.get(slot) {
                        s.store(b, Ordering::Relaxed);
                    }
                    let running: u64 = slots.iter().map(|s| s.load(Ordering::Relaxed)).sum();
                    read.store(done.load(Ordering::Relaxed) + running, Ordering::Relaxed);
                })
            });
            if let Some(s) = slots.get(slot) {
                let b = s.swap(0, Ordering::Relaxed);
                done.fetch_add(b, Ordering::Relaxed);
            }
            outcome
        },
    );
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    let mut next_id = 1;
    for o in outcomes {
        match o {
            Ok(partial) => {
                let count = partial.connections();
                reports.push(L::assemble(partial, next_id)?);
                next_id += count;
            }
            Err(e) => errors.push(e),
        }
    }
    Ok((Report::merge(reports, keylog.stats()), errors))
}

/// Runs `job` on every item with up to `threads` threads (items taken in order as threads
/// come free; each job is told its thread's number), calling `progress` on this thread with
/// `read` every tenth of a second meanwhile, and returns the outcomes in item order.
fn on_threads<I, O, F>(
    items: Vec<I>,
    threads: usize,
    read: &AtomicU64,
    progress: &mut dyn FnMut(u64),
    job: F,
) -> Vec<O>
where
    I: Send,
    O: Send,
    F: Fn(I, usize) -> O + Sync,
{
    let count = items.len();
    let queue = std::sync::Mutex::new(items.into_iter().enumerate());
    let (tx, rx) = mpsc::channel::<(usize, O)>();
    let mut outcomes: Vec<Option<O>> = (0..count).map(|_| None).collect();
    std::thread::scope(|s| {
        for t in 0..threads.clamp(1, count.max(1)) {
            let (tx, queue, job) = (tx.clone(), &queue, &job);
            s.spawn(move || loop {
                let item = queue.lock().map(|mut q| q.next()).unwrap_or(None);
                let Some((i, item)) = item else { break };
                if tx.send((i, job(item, t))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut received = 0;
        while received < count {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok((i, o)) => {
                    if let Some(slot) = outcomes.get_mut(i) {
                        *slot = Some(o);
                    }
                    received += 1;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            progress(read.load(Ordering::Relaxed));
        }
    });
    progress(read.load(Ordering::Relaxed));
    outcomes.into_iter().flatten().collect()
}
