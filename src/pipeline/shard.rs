//! What the multi-threaded designs ([`super::handoff`], [`super::split`]) share: who owns
//! which connection ([`Shares`], by [`flow_hash`]), an owner's flow table and ledger
//! ([`Owned`]), and the batches in which decoded segments travel to their owner ([`Batch`]).
//!
//! A segment travels as its header fields and where its payload lies in a chunk of input
//! (chunks are reference-counted, [`crate::capture::Chunk`]), so payloads are not copied;
//! only those the decoder rebuilt (IP fragments, inner packets of some tunnels) or that lie
//! outside every chunk travel in the batch's own bytes.

use crate::analysis::{Ledger, LedgerPart};
use crate::anomaly::AnomalyCounts;
use crate::capture::{place, Chunk, LinkType, Origin, RawPacket};
use crate::flow::{EventMeta, FlowTable};
use crate::proto::tls::keylog::KeyLog;
use crate::wire::tunnel::{Tunnel, BARE};
use crate::wire::{Decapsulated, Decoded, TcpFlags, TcpSegment, Transport};
use crate::{Limits, Timestamp};
use std::net::{IpAddr, SocketAddr};

/// A decoded TCP segment on its way to its owner.
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

/// A packet left undecoded (an IP fragment, [`crate::wire::Decoder::decode_or_defer`]), for
/// every owner to decode with a decoder that sees all of them.
struct Raw {
    index: u64,
    ts: Timestamp,
    link: LinkType,
    orig_len: u32,
    data: Payload,
    /// The number of segments of the batch before it.
    after: usize,
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

/// Segments (and deferred packets) for one owner, in capture order.
#[derive(Default)]
pub(super) struct Batch {
    segments: Vec<Handed>,
    raws: Vec<Raw>,
    /// The chunks the payloads lie in (a batch spans one or two, usually).
    chunks: Vec<Chunk>,
    bytes: Vec<u8>,
    tunnels: Vec<Tunnel>,
}

/// What [`Batch::replay`] gives, in capture order.
pub(super) enum Replayed<'a> {
    Segment(Decapsulated<'a>, TcpSegment<'a>),
    Deferred(RawPacket<'a>),
}

impl Batch {
    pub(super) fn clear(&mut self) {
        self.segments.clear();
        self.raws.clear();
        self.chunks.clear();
        self.bytes.clear();
        self.tunnels.clear();
    }

    pub(super) fn len(&self) -> usize {
        self.segments.len() + self.raws.len()
    }

    /// How many chunks the batch keeps alive.
    pub(super) fn chunks(&self) -> usize {
        self.chunks.len()
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

    /// Where `bytes` will be found: in `chunk` when they lie there, else copied.
    fn payload(&mut self, bytes: &[u8], chunk: &Chunk) -> Payload {
        // Empty bytes (a pure ACK) need no chunk kept alive.
        let in_chunk = (!bytes.is_empty()).then(|| place(chunk, bytes)).flatten();
        match in_chunk {
            Some((start, end)) => Payload::Chunk {
                chunk: self.chunk(chunk),
                start,
                end,
            },
            None => {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(bytes);
                Payload::Batch {
                    start,
                    end: self.bytes.len(),
                }
            }
        }
    }

    fn bytes_of(&self, p: Payload) -> &[u8] {
        match p {
            Payload::Chunk { chunk, start, end } => {
                self.chunks.get(chunk).and_then(|c| c.get(start..end))
            }
            Payload::Batch { start, end } => self.bytes.get(start..end),
        }
        .unwrap_or_default()
    }

    /// Adds a decoded segment, read from `chunk`.
    pub(super) fn push(&mut self, d: &Decapsulated<'_>, seg: &TcpSegment<'_>, chunk: &Chunk) {
        let payload = self.payload(seg.payload, chunk);
        // Packets of one tunnel come in runs: a run shares the copy of its context.
        let tunnel = (!d.tunnel.is_empty()).then(|| match self.tunnels.last() {
            Some(last) if last == d.tunnel => self.tunnels.len() - 1,
            _ => {
                self.tunnels.push(d.tunnel.clone());
                self.tunnels.len() - 1
            }
        });
        self.segments.push(Handed {
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
    }

    /// Adds a packet left undecoded, read from `chunk`.
    pub(super) fn push_raw(&mut self, pkt: &RawPacket<'_>, chunk: &Chunk) {
        let data = self.payload(pkt.data, chunk);
        self.raws.push(Raw {
            index: pkt.index,
            ts: pkt.ts,
            link: pkt.link,
            orig_len: pkt.orig_len,
            data,
            after: self.segments.len(),
        });
    }

    /// Gives back everything in capture order, packet numbers (which count from 1 in the
    /// input, and are its order in a one-input capture) moved on by `base`.
    pub(super) fn replay(&self, base: u64, each: &mut dyn FnMut(Replayed<'_>)) {
        let mut raws = self.raws.iter().peekable();
        let mut raws_before = |n: usize, each: &mut dyn FnMut(Replayed<'_>)| {
            while let Some(r) = raws.next_if(|r| r.after <= n) {
                let index = r.index + base;
                each(Replayed::Deferred(RawPacket {
                    index,
                    origin: Origin {
                        input: 0,
                        packet: index,
                    },
                    ts: r.ts,
                    link: r.link,
                    data: self.bytes_of(r.data),
                    orig_len: r.orig_len,
                }));
            }
        };
        for (n, h) in self.segments.iter().enumerate() {
            raws_before(n, each);
            let seg = TcpSegment {
                seq: h.seq,
                ack: h.ack,
                flags: h.flags,
                window: h.window,
                payload: self.bytes_of(h.payload),
                missing: h.missing,
            };
            let origin = Origin {
                input: h.origin.input,
                packet: h.origin.packet + base,
            };
            let pkt = Decapsulated {
                inner: Decoded {
                    index: h.index + base,
                    origin,
                    ts: h.ts,
                    src: h.src,
                    dst: h.dst,
                    transport: Transport::Tcp(seg),
                },
                tunnel: h.tunnel.and_then(|t| self.tunnels.get(t)).unwrap_or(&BARE),
            };
            each(Replayed::Segment(pkt, seg));
        }
        raws_before(usize::MAX, each);
    }
}

/// What an owner of connections kept.
pub(super) struct WorkerOutcome {
    pub part: LedgerPart,
    pub opened: u64,
    pub evicted: u64,
    pub anomalies: AnomalyCounts,
}

/// Connections and what was made of them, owned by one thread.
pub(super) struct Owned {
    pub flows: FlowTable,
    pub ledger: Ledger,
}

impl Owned {
    pub(super) fn new(limits: &Limits, keylog: &KeyLog) -> Self {
        Owned {
            flows: FlowTable::new(limits),
            ledger: Ledger::new(keylog, limits),
        }
    }

    pub(super) fn process(&mut self, d: &Decapsulated<'_>, seg: &TcpSegment<'_>) {
        self.flows.process(d, seg, &mut self.ledger);
    }

    pub(super) fn finish(mut self, last: EventMeta) -> WorkerOutcome {
        self.flows.finish(last, &mut self.ledger);
        WorkerOutcome {
            opened: self.flows.opened,
            evicted: self.flows.evicted,
            anomalies: std::mem::take(&mut self.flows.anomalies),
            part: self.ledger.into_part(),
        }
    }
}

/// Who owns which connections: the hash space (see [`flow_hash`]) cut into a first share
/// (the reading thread's in [`super::handoff`]) and equal shares for the others.
#[derive(Clone, Copy)]
pub(super) struct Shares {
    workers: usize,
    /// The first owner's part of the connections: its weight over the weights (the others
    /// weigh 1 each).
    own_part: f64,
    /// Hashes below this are the first owner's.
    own: u64,
    /// `workers × 2^96 / (the rest of the hash space)`, so that a multiplication finds a
    /// worker without a division per packet (of the high 32 bits of the hash past `own`,
    /// which keeps the product within 128 bits; the shares are equal to within one in 2^32).
    scale: u128,
}

impl Shares {
    /// A first owner of weight `first` and `workers` others of weight 1.
    pub(super) fn new(workers: usize, first: f64) -> Self {
        let own_part = first / (first + workers as f64);
        let own = (u64::MAX as f64 * own_part) as u64;
        let rest = u128::from(u64::MAX - own) + 1;
        Shares {
            workers,
            own_part,
            own,
            scale: ((workers as u128) << 96) / rest,
        }
    }

    /// The table-wide limits of the first owner and of each other: each limit divided in
    /// the shares' proportions and adding up to the whole, so that the owners reach theirs
    /// together, when one table would reach its own. Every owner may hold one, unless the
    /// limit is zero (then none may, as with one thread).
    pub(super) fn table_limits(self, limits: &Limits) -> (Limits, Vec<Limits>) {
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

    /// The worker of `hash` (its lane), or `None` when it is the first owner's.
    pub(super) fn lane(self, hash: u64) -> Option<usize> {
        if self.workers == 0 {
            return None;
        }
        let past = hash.checked_sub(self.own)? >> 32;
        Some(((u128::from(past) * self.scale) >> 64) as usize)
    }
}

/// A hash of a connection's two endpoints that is the same in both directions. Not keyed:
/// an attacker who steers every connection to one thread costs the parallelism, and also
/// meets that thread's part of the table limit early (the limit is divided by the threads'
/// shares), so connections are evicted sooner than `max_connections` says. Each eviction is
/// reported.
pub(super) fn flow_hash(a: SocketAddr, b: SocketAddr) -> u64 {
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
            let shares = Shares::new(workers, 0.2);
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

    /// With no workers, the first owner has every hash, up to the last.
    #[test]
    fn one_owner_has_every_hash() {
        let shares = Shares::new(0, 1.0);
        for hash in [0, 1 << 63, u64::MAX - 1, u64::MAX] {
            assert_eq!(shares.lane(hash), None);
        }
    }

    #[test]
    fn table_limits_follow_the_shares() {
        let limits = Limits::default();
        for workers in 1..=4 {
            let (own, each) = Shares::new(workers, 0.2).table_limits(&limits);
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
        let (own, each) = Shares::new(3, 0.2).table_limits(&tiny);
        assert!(std::iter::once(&own)
            .chain(&each)
            .all(|l| l.max_connections == 1));
        // A limit of zero stays zero for every owner, as it is for one thread.
        let none = Limits {
            max_empty_connection_records: 0,
            ..Limits::default()
        };
        let (own, each) = Shares::new(3, 0.2).table_limits(&none);
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
