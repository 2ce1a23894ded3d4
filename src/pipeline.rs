//! The driver: capture → decode → flow table → a [`StreamSink`], one packet at a time.
//!
//! Kept apart from the layers so each stays sans-IO and testable; the CLI, the tests and the
//! benchmarks all run captures through [`run`].

use crate::anomaly::AnomalyCounts;
use crate::capture::{Capture, RawPacket};
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

/// Decoding and reassembly for one packet stream, whatever its source (files or an
/// interface): feed it packets in order, then finish.
pub struct Pipeline {
    decoder: Decoder,
    flows: FlowTable,
    first_ts: Option<Timestamp>,
    last: EventMeta,
}

impl Pipeline {
    pub fn new(limits: &Limits) -> Self {
        Pipeline {
            decoder: Decoder::new(limits),
            flows: FlowTable::new(limits),
            first_ts: None,
            last: EventMeta {
                ts: Timestamp::default(),
                packet: 0,
            },
        }
    }

    /// Takes the next packet of the stream.
    pub fn packet(&mut self, pkt: &RawPacket<'_>, sink: &mut dyn StreamSink) {
        self.first_ts.get_or_insert(pkt.ts);
        self.last = EventMeta {
            ts: self.last.ts.max(pkt.ts),
            packet: pkt.index,
        };
        if let Some(decoded) = self.decoder.decode(pkt) {
            if let Transport::Tcp(seg) = &decoded.transport {
                self.flows.process(&decoded, seg, sink);
            }
        }
    }

    /// Ends the stream: open connections are closed in id order.
    pub fn finish(mut self, sink: &mut dyn StreamSink) -> RunStats {
        self.decoder.finish();
        self.flows.finish(self.last, sink);
        let mut anomalies = self.decoder.anomalies;
        anomalies.merge(&self.flows.anomalies);
        RunStats {
            decode: self.decoder.stats,
            anomalies,
            connections: self.flows.opened,
            evicted: self.flows.evicted,
            first_ts: self.first_ts,
            last_ts: self.first_ts.map(|_| self.last.ts),
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
    while capture.advance() {
        for secret in capture.take_secrets() {
            sink.key_material(&secret);
        }
        let Some(pkt) = capture.current() else { break };
        let index = pkt.index;
        pipeline.packet(&pkt, sink);
        if index % 16_384 == 0 {
            progress(capture.bytes_read());
        }
    }
    progress(capture.bytes_read());
    pipeline.finish(sink)
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
