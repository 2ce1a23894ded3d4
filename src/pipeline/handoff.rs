//! One capture on several threads: this thread reads and decodes every packet, analyses a
//! share of the connections itself, and hands each TCP segment of the others to the worker
//! that owns its connection.
//!
//! Contract: the report is byte-identical to a one-thread run's, for any number of threads,
//! unless a table-wide limit is reached (`max_connections`, `max_ooo_bytes_total` and
//! `max_empty_connection_records` are divided between the threads in proportion to their
//! shares of the connections, so which connection is evicted or left unlisted can differ;
//! the report names the limit either way).
//!
//! Why this shape: on two cores, reading and decoding are half the work (one cache miss per
//! packet header), so every worker reading the whole capture costs more than it saves. Here
//! each packet is decoded once, with the one decoder a single thread would use (its counts,
//! anomalies, IP reassembly and tunnels are the same), and an owner sees its connections'
//! segments in capture order, which is all a connection's analysis depends on. Connections
//! are owned by a hash of their endpoints ([`Shares`]); the reading thread keeps a small
//! share, whose bytes stay in the cache of the core that read them and need no handing over.
//! A segment is handed over as its header fields and where its payload lies in the chunk of
//! input it was read into (chunks are shared, [`crate::capture::Chunk`]): payloads are not
//! copied, except those the decoder rebuilt (IP fragments, inner packets of some tunnels),
//! which travel in the batch. Connections are numbered by their first packet when the
//! owners' ledgers are assembled ([`crate::analysis::Report::assemble`]).

use super::{walk, Item, RunStats, Span};
use crate::analysis::{Ledger, LedgerPart, Partial};
use crate::anomaly::AnomalyCounts;
use crate::capture::{place, Capture, Chunk, DecryptionSecret, Origin, RawPacket};
use crate::flow::{EventMeta, FlowTable};
use crate::proto::tls::keylog::KeyLog;
use crate::wire::tunnel::{Tunnel, BARE};
use crate::wire::{Decapsulated, Decoded, Decoder, TcpFlags, TcpSegment, Transport};
use crate::{Limits, Timestamp};
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;

/// Segments per batch: large enough that channel operations are rare, small enough that a
/// batch stays in cache.
const BATCH: usize = 512;
/// Batches in flight per worker, which bounds the memory between the reader and a worker.
const IN_FLIGHT: usize = 8;
/// A batch is sent once it keeps more input chunks alive than this. A worker that gets a
/// small share of the traffic (one idle connection beside a bulk one) would otherwise fill
/// its batch slowly while it pinned every chunk its few segments came from: up to `BATCH`
/// chunks of 2 MiB. With this, a batch keeps at most `BATCH_CHUNKS + 1` chunks, and a worker
/// has at most `IN_FLIGHT + 3` batches with chunks (in its channel, the one it reads, the
/// one a blocked send holds, the one being filled).
const BATCH_CHUNKS: usize = 2;

/// A decoded TCP segment on its way to a worker.
struct Handed {
    index: u64,
    origin: Origin,
    ts: Timestamp,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    missing: u32,
    payload: Payload,
    /// Index in the batch's tunnels; `None` for a segment captured bare.
    tunnel: Option<usize>,
}

#[derive(Clone, Copy)]
enum Payload {
    /// `start..end` of the batch's chunk number `chunk`.
    Chunk {
        chunk: usize,
        start: usize,
        end: usize,
    },
    /// `start..end` of the batch's own bytes.
    Batch { start: usize, end: usize },
}

#[derive(Default)]
struct Batch {
    segments: Vec<Handed>,
    /// The chunks the segments' payloads lie in (a batch spans one or two, usually).
    chunks: Vec<Chunk>,
    bytes: Vec<u8>,
    tunnels: Vec<Tunnel>,
}

impl Batch {
    fn clear(&mut self) {
        self.segments.clear();
        self.chunks.clear();
        self.bytes.clear();
        self.tunnels.clear();
    }

    /// The number of `chunk` in this batch.
    fn chunk(&mut self, chunk: &Chunk) -> usize {
        match self.chunks.iter().rposition(|c| Chunk::ptr_eq(c, chunk)) {
            Some(i) => i,
            None => {
                self.chunks.push(Chunk::clone(chunk));
                self.chunks.len() - 1
            }
        }
    }
}

enum Message {
    Batch(Batch),
    /// Key material met in the capture: every worker gets it before the packets after it.
    Secret(DecryptionSecret),
    /// The capture ended at this packet.
    End(EventMeta),
}

/// What an owner of connections (a worker or the reading thread) kept.
struct WorkerOutcome {
    part: LedgerPart,
    opened: u64,
    evicted: u64,
    anomalies: AnomalyCounts,
}

/// Analyses `capture` on `threads` threads: this one, which reads and owns a share of the
/// connections, and `threads - 1` workers.
pub(super) fn analyze(
    mut capture: Capture,
    limits: &Limits,
    keylog: &KeyLog,
    threads: usize,
    progress: &mut dyn FnMut(u64),
) -> Partial {
    let workers = threads.saturating_sub(1).max(1);
    let shares = Shares::new(workers);
    let (own_limits, worker_limits) = shares.table_limits(limits);
    std::thread::scope(|s| {
        let mut lanes = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for worker_limits in worker_limits {
            let (to_worker, from_reader) = mpsc::sync_channel::<Message>(IN_FLIGHT);
            let (to_reader, returned) = mpsc::channel::<Batch>();

            let worker = std::thread::Builder::new()
                .name(format!("misdirect-worker-{}", handles.len()))
                .spawn_scoped(s, move || {
                    work(from_reader, to_reader, &worker_limits, keylog)
                })
                // What `std::thread::spawn` does when the system has no thread left for us.
                .unwrap_or_else(|e| panic!("cannot start a worker thread: {e}"));
            handles.push(worker);
            lanes.push(Lane {
                to_worker,
                returned,
                batch: Batch::default(),
            });
        }
        let mut reader = Reader {
            decoder: Decoder::new(limits),
            own: Owned::new(&own_limits, keylog),
            shares,
            lanes,
            span: Span::new(),
        };
        reader.read(&mut capture, progress);
        let Reader {
            mut decoder,
            own,
            lanes,
            span,
            ..
        } = reader;
        for lane in lanes {
            let _ = lane.to_worker.send(Message::End(span.last));
        }
        decoder.finish();
        let mut run = RunStats {
            decode: decoder.stats,
            anomalies: decoder.anomalies,
            first_ts: span.first_ts,
            last_ts: span.last_ts(),
            ..RunStats::default()
        };
        let mut outcomes = vec![own.finish(span.last)];
        for h in handles {
            // A worker that panicked is a bug: let it surface as one.
            outcomes.push(match h.join() {
                Ok(o) => o,
                Err(panic) => std::panic::resume_unwind(panic),
            });
        }
        let mut parts = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            run.connections += o.opened;
            run.evicted += o.evicted;
            run.anomalies.merge(&o.anomalies);
            parts.push(o.part);
        }
        Partial {
            inputs: capture.summaries(),
            parts,
            run,
        }
    })
}

/// The reader's end of one worker's channels.
struct Lane {
    to_worker: mpsc::SyncSender<Message>,
    /// Batches the worker is done with, to be filled again.
    returned: mpsc::Receiver<Batch>,
    batch: Batch,
}

impl Lane {
    fn flush(&mut self) {
        if self.batch.segments.is_empty() {
            return;
        }
        let fresh = self.returned.try_recv().unwrap_or_default();
        let full = std::mem::replace(&mut self.batch, fresh);
        // A worker stops taking only when it is gone, and then its join reports why.
        let _ = self.to_worker.send(Message::Batch(full));
    }
}

/// Connections and what was made of them, owned by one thread.
struct Owned {
    flows: FlowTable,
    ledger: Ledger,
}

impl Owned {
    fn new(limits: &Limits, keylog: &KeyLog) -> Self {
        Owned {
            flows: FlowTable::new(limits),
            ledger: Ledger::new(keylog, limits),
        }
    }

    fn finish(mut self, last: EventMeta) -> WorkerOutcome {
        self.flows.finish(last, &mut self.ledger);
        WorkerOutcome {
            opened: self.flows.opened,
            evicted: self.flows.evicted,
            anomalies: std::mem::take(&mut self.flows.anomalies),
            part: self.ledger.into_part(),
        }
    }
}

struct Reader {
    decoder: Decoder,
    /// The connections this thread analyses itself: their segments stay on the core that
    /// read them, and are not described, queued and woken for.
    own: Owned,
    shares: Shares,
    lanes: Vec<Lane>,
    span: Span,
}

impl Reader {
    fn read(&mut self, capture: &mut Capture, progress: &mut dyn FnMut(u64)) {
        walk(capture, progress, &mut |item| match item {
            Item::Secret(secret) => {
                crate::flow::StreamSink::key_material(&mut self.own.ledger, &secret);
                for lane in &mut self.lanes {
                    lane.flush();
                    let _ = lane.to_worker.send(Message::Secret(secret.clone()));
                }
            }
            Item::Packet(pkt, chunk) => {
                self.span.see(&pkt);
                self.hand(&pkt, chunk);
            }
        });
        for lane in &mut self.lanes {
            lane.flush();
        }
    }

    /// Decodes a packet and analyses its TCP segment, or hands it to the worker of its
    /// connection.
    fn hand(&mut self, pkt: &RawPacket<'_>, chunk: &Chunk) {
        let Some(d) = self.decoder.decode(pkt) else {
            return;
        };
        let Transport::Tcp(seg) = d.transport else {
            return;
        };
        let Some(lane) = self.shares.lane(flow_hash(d.src, d.dst)) else {
            self.own.flows.process(&d, &seg, &mut self.own.ledger);
            return;
        };
        let Some(lane) = self.lanes.get_mut(lane) else {
            return;
        };
        let b = &mut lane.batch;
        // An empty payload (a pure ACK) needs no chunk kept alive.
        let in_chunk = (!seg.payload.is_empty())
            .then(|| place(chunk, seg.payload))
            .flatten();
        let payload = match in_chunk {
            Some((start, end)) => Payload::Chunk {
                chunk: b.chunk(chunk),
                start,
                end,
            },
            None => {
                let start = b.bytes.len();
                b.bytes.extend_from_slice(seg.payload);
                Payload::Batch {
                    start,
                    end: b.bytes.len(),
                }
            }
        };
        // Packets of one tunnel come in runs: a run shares the copy of its context.
        let tunnel = (!d.tunnel.is_empty()).then(|| match b.tunnels.last() {
            Some(last) if last == d.tunnel => b.tunnels.len() - 1,
            _ => {
                b.tunnels.push(d.tunnel.clone());
                b.tunnels.len() - 1
            }
        });
        b.segments.push(Handed {
            index: d.index,
            origin: d.origin,
            ts: d.ts,
            src: d.src,
            dst: d.dst,
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags,
            window: seg.window,
            missing: seg.missing,
            payload,
            tunnel,
        });
        if b.segments.len() >= BATCH || b.chunks.len() > BATCH_CHUNKS {
            lane.flush();
        }
    }
}

/// A worker: its connections' segments in capture order through its own flow table and
/// ledger.
fn work(
    from_reader: mpsc::Receiver<Message>,
    to_reader: mpsc::Sender<Batch>,
    limits: &Limits,
    keylog: &KeyLog,
) -> WorkerOutcome {
    let mut own = Owned::new(limits, keylog);
    let mut last = Span::new().last;
    for message in from_reader {
        match message {
            Message::Batch(mut batch) => {
                for h in &batch.segments {
                    let payload = match h.payload {
                        Payload::Chunk { chunk, start, end } => {
                            batch.chunks.get(chunk).and_then(|c| c.get(start..end))
                        }
                        Payload::Batch { start, end } => batch.bytes.get(start..end),
                    }
                    .unwrap_or_default();
                    let seg = TcpSegment {
                        seq: h.seq,
                        ack: h.ack,
                        flags: h.flags,
                        window: h.window,
                        payload,
                        missing: h.missing,
                    };
                    let pkt = Decapsulated {
                        inner: Decoded {
                            index: h.index,
                            origin: h.origin,
                            ts: h.ts,
                            src: h.src,
                            dst: h.dst,
                            transport: Transport::Tcp(seg),
                        },
                        tunnel: h.tunnel.and_then(|t| batch.tunnels.get(t)).unwrap_or(&BARE),
                    };
                    own.flows.process(&pkt, &seg, &mut own.ledger);
                }
                batch.clear();
                let _ = to_reader.send(batch);
            }
            Message::Secret(s) => crate::flow::StreamSink::key_material(&mut own.ledger, &s),
            Message::End(at) => last = at,
        }
    }
    own.finish(last)
}

/// Who owns which connections: the hash space (see [`flow_hash`]) cut into the reading
/// thread's share and equal shares for the workers.
#[derive(Clone, Copy)]
struct Shares {
    workers: usize,
    /// The reading thread's part of the connections: [`READER_WEIGHT`] over the weights.
    own_part: f64,
    /// Hashes below this are the reading thread's.
    own: u64,
    /// `workers × 2^96 / (the rest of the hash space)`, so that a multiplication finds a
    /// worker without a division per packet (of the high 32 bits of the hash past `own`,
    /// which keeps the product within 128 bits; the shares are equal to within one in 2^32).
    scale: u128,
}

impl Shares {
    fn new(workers: usize) -> Self {
        let own_part = READER_WEIGHT / (READER_WEIGHT + workers as f64);
        let own = (u64::MAX as f64 * own_part) as u64;
        let rest = u128::from(u64::MAX - own) + 1;
        Shares {
            workers,
            own_part,
            own,
            scale: ((workers as u128) << 96) / rest,
        }
    }

    /// The table-wide limits of the reading thread and of each worker: each limit divided
    /// in the shares' proportions and adding up to the whole, so that the owners reach
    /// theirs together, when one table would reach its own. Every owner may hold one, unless
    /// the limit is zero (then none may, as with one thread).
    fn table_limits(self, limits: &Limits) -> (Limits, Vec<Limits>) {
        let with = |of: &dyn Fn(usize) -> usize| {
            let share = |limit: usize| of(limit).max(usize::from(limit > 0));
            Limits {
                max_connections: share(limits.max_connections),
                max_ooo_bytes_total: share(limits.max_ooo_bytes_total),
                max_empty_connection_records: share(limits.max_empty_connection_records),
                max_tls_records_held: share(limits.max_tls_records_held),
                ..limits.clone()
            }
        };
        let own = |limit: usize| (limit as f64 * self.own_part) as usize;
        let worker = |i: usize| {
            with(&|limit| {
                let rest = limit.saturating_sub(own(limit));
                rest / self.workers + usize::from(i < rest % self.workers)
            })
        };
        (with(&own), (0..self.workers).map(worker).collect())
    }

    /// The worker lane of `hash`, or `None` when it is the reading thread's.
    fn lane(self, hash: u64) -> Option<usize> {
        let past = hash.checked_sub(self.own)? >> 32;
        Some(((u128::from(past) * self.scale) >> 64) as usize)
    }
}

/// The reading thread's share of the connections, in workers' shares. Reading and
/// decoding every packet keeps it busier than a worker; how much busier depends on what the
/// connections cost. Measured on the 1 GB mix with one worker (`docs/performance.md`):
/// without keys, where the reading thread is the bound, every share costs a little (221 ms
/// at 0.05, 228 ms at 0.25, 239 ms at 0.35); with every TLS connection decrypted, 0.25 was
/// 8% faster than 0.05. At 0.2: 221 ms and 306 ms.
const READER_WEIGHT: f64 = 0.2;

/// A hash of a connection's two endpoints that is the same in both directions. Not keyed:
/// an attacker who steers every connection to one thread costs the parallelism, and also
/// meets that thread's part of the table limit early (the limit is divided by the threads'
/// shares: the reading thread's is about a sixth with one worker), so connections are
/// evicted sooner than `max_connections` says. Each eviction is reported.
fn flow_hash(a: SocketAddr, b: SocketAddr) -> u64 {
    fn fold(s: SocketAddr) -> u64 {
        let ip = match s.ip() {
            IpAddr::V4(v4) => u64::from(u32::from(v4)),
            IpAddr::V6(v6) => {
                let v = u128::from(v6);
                (v as u64) ^ ((v >> 64) as u64)
            }
        };
        ip ^ (u64::from(s.port()) << 40)
    }
    // XOR makes it symmetric; splitmix64's finaliser spreads the bits.
    let mut x = fold(a) ^ fold(b);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_the_hash_space() {
        for workers in 1..=8 {
            let shares = Shares::new(workers);
            assert_eq!(shares.lane(0), None);
            assert_eq!(shares.lane(shares.own.saturating_sub(1)), None);
            assert_eq!(shares.lane(shares.own), Some(0));
            assert_eq!(shares.lane(u64::MAX), Some(workers - 1));
            // The workers' shares are equal: 4096 evenly spaced hashes split evenly, give or
            // take the ones at the borders.
            let mut counts = vec![0u64; workers];
            let step = (u64::MAX - shares.own) / 4096;
            for i in 0..4096 {
                counts[shares.lane(shares.own + i * step).unwrap()] += 1;
            }
            let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(max - min <= 2, "{workers} workers: {counts:?}");
        }
    }

    #[test]
    fn table_limits_follow_the_shares() {
        let limits = Limits::default();
        for workers in 1..=4 {
            let (own, each) = Shares::new(workers).table_limits(&limits);
            assert_eq!(each.len(), workers);
            let total = |f: fn(&Limits) -> usize| f(&own) + each.iter().map(f).sum::<usize>();
            assert_eq!(total(|l| l.max_connections), limits.max_connections);
            assert_eq!(total(|l| l.max_ooo_bytes_total), limits.max_ooo_bytes_total);
            let empty = total(|l| l.max_empty_connection_records);
            assert_eq!(empty, limits.max_empty_connection_records);
            let held = total(|l| l.max_tls_records_held);
            assert_eq!(held, limits.max_tls_records_held);
            assert!(each.iter().all(|w| own.max_connections < w.max_connections));
        }
        // Every owner can hold a connection, whatever the limit.
        let tiny = Limits {
            max_connections: 1,
            ..Limits::default()
        };
        let (own, each) = Shares::new(3).table_limits(&tiny);
        assert!(std::iter::once(&own)
            .chain(&each)
            .all(|l| l.max_connections == 1));
        // A limit of zero stays zero for every owner, as it is for one thread.
        let none = Limits {
            max_empty_connection_records: 0,
            ..Limits::default()
        };
        let (own, each) = Shares::new(3).table_limits(&none);
        assert!(std::iter::once(&own)
            .chain(&each)
            .all(|l| l.max_empty_connection_records == 0));
    }

    #[test]
    fn both_directions_go_to_one_worker() {
        let a: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let b: SocketAddr = "[2001:db8::2]:443".parse().unwrap();
        assert_eq!(flow_hash(a, b), flow_hash(b, a));
        let c: SocketAddr = "10.0.0.1:40001".parse().unwrap();
        assert_ne!(flow_hash(a, b), flow_hash(c, b));
    }
}
