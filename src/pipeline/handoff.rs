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

use super::shard::{flow_hash, Batch, Owned, Replayed, Shares, WorkerOutcome};
use super::{walk, Item, RunStats, Span};
use crate::analysis::Partial;
use crate::capture::{Capture, Chunk, DecryptionSecret, RawPacket};
use crate::flow::EventMeta;
use crate::proto::tls::keylog::KeyLog;
use crate::wire::{Decoder, Transport};
use crate::Limits;
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

enum Message {
    Batch(Batch),
    /// Key material met in the capture: every worker gets it before the packets after it.
    Secret(DecryptionSecret),
    /// The capture ended at this packet.
    End(EventMeta),
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
    let shares = Shares::new(workers, READER_WEIGHT);
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
        if self.batch.len() == 0 {
            return;
        }
        let fresh = self.returned.try_recv().unwrap_or_default();
        let full = std::mem::replace(&mut self.batch, fresh);
        // A worker stops taking only when it is gone, and then its join reports why.
        let _ = self.to_worker.send(Message::Batch(full));
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
            self.own.process(&d, &seg);
            return;
        };
        let Some(lane) = self.lanes.get_mut(lane) else {
            return;
        };
        let b = &mut lane.batch;
        b.push(&d, &seg, chunk);
        if b.len() >= BATCH || b.chunks() > BATCH_CHUNKS {
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
                batch.replay(0, &mut |r| {
                    if let Replayed::Segment(d, seg) = r {
                        own.process(&d, &seg);
                    }
                });
                batch.clear();
                let _ = to_reader.send(batch);
            }
            Message::Secret(s) => crate::flow::StreamSink::key_material(&mut own.ledger, &s),
            Message::End(at) => last = at,
        }
    }
    own.finish(last)
}

/// The reading thread's share of the connections, in workers' shares. Reading and
/// decoding every packet keeps it busier than a worker; how much busier depends on what the
/// connections cost. Measured on the 1 GB mix with one worker (`docs/performance.md`):
/// without keys, where the reading thread is the bound, every share costs a little (221 ms
/// at 0.05, 228 ms at 0.25, 239 ms at 0.35); with every TLS connection decrypted, 0.25 was
/// 8% faster than 0.05. At 0.2: 221 ms and 306 ms.
const READER_WEIGHT: f64 = 0.2;
