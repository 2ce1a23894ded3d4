//! IPv4 and IPv6 fragment reassembly with a bounded number of datagrams in flight.
//!
//! `etherparse::defrag::IpDefragBuf` joins the fragments of one datagram (each is bounded by
//! the 64 KiB IP length); its pool type is documented as not OOM-safe, so the pool is ours:
//! at most `max_datagrams` in reassembly, the oldest dropped when a new one needs room, and
//! any not completed within the timeout (capture time) dropped. Both are reported. Fragments
//! found inside a tunnel belong to a datagram of that tunnel only: the tunnel context is part
//! of the key, so two tenants' fragments with the same addresses and id never mix.

use super::tunnel::KeyPart;
use crate::anomaly::{Anomaly, AnomalyCounts};
use crate::{Limits, Timestamp};
use etherparse::defrag::IpDefragBuf;
use etherparse::{IpFragOffset, IpNumber};
use std::collections::HashMap;
use std::net::IpAddr;

/// Identifies the fragments of one datagram (RFC 791 §3.2, RFC 8200 §4.5), within the tunnel
/// context they were found in (empty, and not allocated, for fragments captured bare).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub protocol: u8,
    pub tunnel: Box<[KeyPart]>,
}

/// One fragment as read from its IP header.
#[derive(Clone, Debug)]
pub struct Fragment<'a> {
    pub key: FragKey,
    pub offset: IpFragOffset,
    pub more: bool,
    pub payload: &'a [u8],
}

struct InFlight {
    buf: IpDefragBuf,
    first_seen: Timestamp,
    /// Which datagram came first among those first seen at the same time: the map's order is
    /// random, and which one is dropped must not be.
    arrival: u64,
}

pub struct Defragmenter {
    active: HashMap<FragKey, InFlight, foldhash::fast::RandomState>,
    max_datagrams: usize,
    timeout_ns: i64,
    last_sweep: Timestamp,
    /// Buffers of finished datagrams, given back for the next ones.
    spare: Vec<Vec<u8>>,
    arrivals: u64,
    pub reassembled: u64,
}

impl Defragmenter {
    pub fn new(limits: &Limits) -> Self {
        Defragmenter {
            active: HashMap::default(),
            max_datagrams: limits.max_ip_fragment_datagrams.max(1),
            timeout_ns: limits.ip_fragment_timeout_ns,
            last_sweep: Timestamp::default(),
            spare: Vec::new(),
            arrivals: 0,
            reassembled: 0,
        }
    }

    /// Adds a fragment; returns the whole datagram's payload once its last hole is filled.
    /// The buffer is the caller's; [`Defragmenter::recycle`] gives it back when done.
    pub fn add(
        &mut self,
        frag: Fragment<'_>,
        ts: Timestamp,
        anomalies: &mut AnomalyCounts,
    ) -> Option<Vec<u8>> {
        self.expire(ts, anomalies);
        if !self.active.contains_key(&frag.key) && self.active.len() >= self.max_datagrams {
            let oldest = self
                .active
                .iter()
                .min_by_key(|(_, v)| (v.first_seen, v.arrival))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.drop_datagram(&k);
                anomalies.add(Anomaly::IpFragmentLimit);
            }
        }
        let spare = &mut self.spare;
        let arrivals = &mut self.arrivals;
        let entry = self
            .active
            .entry(frag.key.clone())
            .or_insert_with(|| InFlight {
                buf: IpDefragBuf::new(
                    IpNumber(frag.key.protocol),
                    spare.pop().unwrap_or_default(),
                    Vec::new(),
                ),
                first_seen: ts,
                arrival: {
                    *arrivals += 1;
                    *arrivals
                },
            });
        if entry.buf.add(frag.offset, frag.more, frag.payload).is_err() {
            anomalies.add(Anomaly::IpFragmentInvalid);
            self.drop_datagram(&frag.key);
            return None;
        }
        if !entry.buf.is_complete() {
            return None;
        }
        let done = self.active.remove(&frag.key)?;
        let (data, _) = done.buf.take_bufs();
        self.reassembled += 1;
        Some(data)
    }

    /// Takes back a buffer [`Defragmenter::add`] returned (a few are kept for reuse).
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() > 0 && self.spare.len() < 8 {
            buf.clear();
            self.spare.push(buf);
        }
    }

    /// Datagrams still incomplete (reported as timed out at the end of the capture).
    pub fn pending(&self) -> usize {
        self.active.len()
    }

    fn expire(&mut self, now: Timestamp, anomalies: &mut AnomalyCounts) {
        // Sweeping at most once per second of capture time keeps this off the per-packet path.
        // Capture clocks step both ways: a packet from the far future must not stop sweeps.
        if now.0.saturating_sub(self.last_sweep.0).saturating_abs() < Timestamp::NANOS_PER_SEC {
            return;
        }
        self.last_sweep = now;
        let timeout = self.timeout_ns;
        let before = self.active.len();
        self.active
            .retain(|_, v| now.0.saturating_sub(v.first_seen.0) <= timeout);
        anomalies.add_n(
            Anomaly::IpFragmentTimeout,
            (before - self.active.len()) as u64,
        );
    }

    fn drop_datagram(&mut self, key: &FragKey) {
        if let Some(v) = self.active.remove(key) {
            let (data, _) = v.buf.take_bufs();
            self.recycle(data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fragment(id: u32, last: bool) -> Fragment<'static> {
        Fragment {
            key: FragKey {
                src: [10, 0, 0, 1].into(),
                dst: [10, 0, 0, 2].into(),
                id,
                protocol: 6,
                tunnel: Box::new([]),
            },
            offset: IpFragOffset::try_new(if last { 1 } else { 0 }).unwrap(),
            more: !last,
            payload: &[7; 8],
        }
    }

    /// With the table full of datagrams first seen at the same time, the one that came first
    /// is dropped, whatever the map's order (a fresh random order in each decoder).
    #[test]
    fn drops_the_first_come_among_equals() {
        let limits = Limits {
            max_ip_fragment_datagrams: 2,
            ..Limits::default()
        };
        for _ in 0..32 {
            let mut d = Defragmenter::new(&limits);
            let mut anomalies = AnomalyCounts::default();
            let ts = Timestamp(0);
            for id in 1..=3 {
                assert!(d.add(fragment(id, false), ts, &mut anomalies).is_none());
            }
            assert_eq!(anomalies.get(Anomaly::IpFragmentLimit), 1);
            assert!(d.add(fragment(1, true), ts, &mut anomalies).is_none());
            assert_eq!(anomalies.get(Anomaly::IpFragmentLimit), 2);
            assert_eq!(
                d.add(fragment(3, true), ts, &mut anomalies)
                    .map(|v| v.len()),
                Some(16)
            );
        }
    }
}
