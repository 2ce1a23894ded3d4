//! The driver: capture → decode → flow table → a [`StreamSink`], one packet at a time.
//!
//! Kept apart from the layers so each stays sans-IO and testable; the CLI, the tests and the
//! benchmarks all run captures through [`run`].

use crate::anomaly::AnomalyCounts;
use crate::capture::Capture;
use crate::flow::{EventMeta, FlowTable, StreamSink};
use crate::wire::{DecodeStats, Decoder, Transport};
use crate::{Limits, Timestamp};

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

/// Feeds every packet of `capture` through decoding and reassembly into `sink`.
/// `progress` is called now and then with the input bytes consumed so far.
pub fn run(
    capture: &mut Capture,
    limits: &Limits,
    sink: &mut dyn StreamSink,
    progress: &mut dyn FnMut(u64),
) -> RunStats {
    let mut decoder = Decoder::new(limits);
    let mut flows = FlowTable::new(limits);
    let mut stats = RunStats::default();
    let mut last = EventMeta {
        ts: Timestamp::default(),
        packet: 0,
    };
    while capture.advance() {
        for secret in capture.take_secrets() {
            sink.key_material(&secret);
        }
        let Some(pkt) = capture.current() else { break };
        stats.first_ts.get_or_insert(pkt.ts);
        last = EventMeta {
            ts: last.ts.max(pkt.ts),
            packet: pkt.index,
        };
        let index = pkt.index;
        if let Some(decoded) = decoder.decode(&pkt) {
            if let Transport::Tcp(seg) = &decoded.transport {
                flows.process(&decoded, seg, sink);
            }
        }
        if index % 16_384 == 0 {
            progress(capture.bytes_read());
        }
    }
    progress(capture.bytes_read());
    decoder.finish();
    flows.finish(last, sink);
    stats.last_ts = stats.first_ts.map(|_| last.ts);
    stats.decode = decoder.stats;
    stats.anomalies = decoder.anomalies;
    stats.anomalies.merge(&flows.anomalies);
    stats.connections = flows.opened;
    stats.evicted = flows.evicted;
    stats
}

/// Runs a whole capture through the standard pipeline and returns its report.
pub fn analyze(
    mut capture: Capture,
    limits: &Limits,
    keylog: crate::proto::tls::keylog::KeyLog,
    progress: &mut dyn FnMut(u64),
) -> crate::analysis::Report {
    let mut ledger = crate::analysis::Ledger::new(keylog, limits);
    let stats = run(&mut capture, limits, &mut ledger, progress);
    ledger.into_report(capture.summaries(), stats)
}
