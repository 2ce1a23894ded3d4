//! One report from several pieces: the shards of one capture, or the partitions of many.
//!
//! Contract:
//! - [`Report::assemble`] takes the ledgers of the workers that shared one capture (each kept
//!   the connections its shard owns) and gives the report one worker would have written:
//!   connections numbered in first-packet order, then diagnosed together.
//! - [`Report::merge`] joins the reports of independent partitions (`docs/scale-out.md`) in
//!   the order given: each partition is diagnosed on its own, its connection ids are moved
//!   past the previous partitions', and counts add up.

use super::diagnose::{self, Finding};
use super::totals::FindingTotals;
use super::{settle_dialects, ConnectionRecord, Report, Summary, TlsSummary, Tool};
use crate::anomaly::AnomalyCounts;
use crate::capture::InputSummary;
use crate::flow::ConnId;
use crate::pipeline::RunStats;
use crate::proto::tls::keylog::KeyLogStats;

/// What one worker's ledger kept of a capture.
pub struct LedgerPart {
    pub(super) connections: Vec<ConnectionRecord>,
    pub(super) anomalies: AnomalyCounts,
    pub(super) keylog: KeyLogStats,
}

impl Report {
    /// The report of one capture from the parts its workers kept. `run` holds the workers'
    /// run totals added up; every part read the same key logs, so the first one's key-log
    /// counts stand for all.
    pub fn assemble(inputs: Vec<InputSummary>, parts: Vec<LedgerPart>, mut run: RunStats) -> Self {
        let keylog = parts.first().map(|p| p.keylog.clone()).unwrap_or_default();
        let several = parts.len() > 1;
        let mut connections = Vec::new();
        for p in parts {
            run.anomalies.merge(&p.anomalies);
            connections.extend(p.connections);
        }
        if several {
            // Each worker numbered its own connections; one worker numbers them in
            // first-packet order, and a packet opens at most one connection.
            connections.sort_unstable_by_key(|c| c.first_packet);
            for (n, c) in (1..).zip(connections.iter_mut()) {
                c.id = ConnId(n);
            }
        } else {
            connections.sort_unstable_by_key(|c| c.id);
        }
        settle_dialects(&mut connections);
        diagnose::mark_first_party(&mut connections);
        let findings = diagnose::diagnose(&connections);
        let mut tls = TlsSummary {
            keylog,
            ..TlsSummary::default()
        };
        for t in connections.iter().filter_map(|c| c.tls.as_ref()) {
            tls.connections += 1;
            tls.with_keys +=
                u64::from(t.decryption != "no_keys" && t.decryption != "not_applicable");
            tls.decrypted += u64::from(t.decrypted);
        }
        Report {
            schema_version: super::SCHEMA_VERSION,
            tool: Tool {
                name: env!("CARGO_PKG_NAME"),
                version: env!("CARGO_PKG_VERSION"),
            },
            inputs,
            summary: Summary {
                first_seen: run.first_ts,
                last_seen: run.last_ts,
                packets: run.decode,
                tcp_connections: run.connections,
                evicted_connections: run.evicted,
                tls,
                findings: FindingTotals::count(&connections, &findings),
                capture: None,
            },
            anomalies: run.anomalies,
            connections,
            findings,
        }
    }

    /// Joins partition reports, in order. `keylog` is what the key-log files alone count:
    /// every partition read them, so they are counted once, plus what each partition's own
    /// pcapng secrets added.
    pub fn merge(reports: Vec<Report>, keylog: &KeyLogStats) -> Option<Report> {
        let mut reports = reports.into_iter();
        let mut merged = reports.next()?;
        for r in reports {
            let ids = merged.connections.len() as u64;
            let inputs = u32::try_from(merged.inputs.len()).unwrap_or(u32::MAX);
            merged.inputs.extend(r.inputs);
            let s = &mut merged.summary;
            s.first_seen = match (s.first_seen, r.summary.first_seen) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            s.last_seen = s.last_seen.max(r.summary.last_seen);
            s.packets.add(&r.summary.packets);
            s.tcp_connections += r.summary.tcp_connections;
            s.evicted_connections += r.summary.evicted_connections;
            s.tls.connections += r.summary.tls.connections;
            s.tls.with_keys += r.summary.tls.with_keys;
            s.tls.decrypted += r.summary.tls.decrypted;
            add_keylog(&mut s.tls.keylog, &r.summary.tls.keylog, keylog);
            merged.anomalies.merge(&r.anomalies);
            merged
                .connections
                .extend(r.connections.into_iter().map(|mut c| {
                    c.id = ConnId(c.id.0 + ids);
                    c.source.input = c.source.input.saturating_add(inputs);
                    c
                }));
            merged
                .findings
                .extend(r.findings.into_iter().map(|f| shift(f, ids)));
        }
        merged.summary.findings = FindingTotals::count(&merged.connections, &merged.findings);
        Some(merged)
    }
}

/// `f` with every connection id it names moved up by `by`.
fn shift(mut f: Finding, by: u64) -> Finding {
    let up = |id: &mut ConnId| id.0 += by;
    up(&mut f.connection);
    f.evidence.same_server_connections.iter_mut().for_each(up);
    if let Some(r) = &mut f.retry {
        up(&mut r.connection);
    }
    if let Some(u) = &mut f.upstream {
        up(&mut u.connection);
    }
    if let Some(d) = &mut f.downstream {
        up(&mut d.connection);
    }
    f
}

/// Adds the key-log lines `part` read beyond `base` (the key-log files every part read) to
/// `total`.
fn add_keylog(total: &mut KeyLogStats, part: &KeyLogStats, base: &KeyLogStats) {
    let more = |t: &mut u64, p: u64, b: u64| *t += p.saturating_sub(b);
    more(&mut total.lines, part.lines, base.lines);
    more(&mut total.entries, part.entries, base.entries);
    more(&mut total.comments, part.comments, base.comments);
    more(&mut total.blank, part.blank, base.blank);
    more(&mut total.malformed, part.malformed, base.malformed);
    more(
        &mut total.unknown_labels,
        part.unknown_labels,
        base.unknown_labels,
    );
    more(&mut total.duplicates, part.duplicates, base.duplicates);
}
