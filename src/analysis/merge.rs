//! One report from several pieces: the threads of one capture, or the partitions of many.
//!
//! Contract:
//! - A [`Partial`] is what the analysis of one capture kept, before its connections are
//!   numbered: the ledgers of the threads that shared it (each kept the connections it
//!   owns) and their run totals.
//! - [`Report::assemble`] numbers a partial's connections in first-packet order from a given
//!   id (the order one thread would have given them), then diagnoses them together.
//! - [`Report::merge`] joins the reports of independent partitions (`docs/scale-out.md`),
//!   assembled with ids that follow each other: each partition was diagnosed on its own,
//!   and counts add up.

use super::diagnose;
use super::totals::FindingTotals;
use super::window::Window;
use super::{settle_dialects, Records, Report, Summary, TlsSummary, Tool};
use crate::anomaly::{Anomaly, AnomalyCounts};
use crate::capture::InputSummary;
use crate::flow::ConnId;
use crate::pipeline::RunStats;
use crate::proto::tls::keylog::KeyLogStats;

/// What one thread's ledger kept of a capture.
pub struct LedgerPart {
    pub(super) connections: Records,
    pub(super) anomalies: AnomalyCounts,
    pub(super) keylog: KeyLogStats,
}

/// One capture analysed, its connections not numbered yet.
pub struct Partial {
    pub inputs: Vec<InputSummary>,
    pub parts: Vec<LedgerPart>,
    /// The threads' run totals, added up.
    pub run: RunStats,
}

impl Partial {
    /// Connections the partial holds (the ids [`Report::assemble`] gives out).
    pub fn connections(&self) -> u64 {
        self.parts.iter().map(|p| p.connections.len() as u64).sum()
    }
}

impl Report {
    /// The report of one capture, its connections numbered from `first_id`. Every part read
    /// the same key logs, so the first one's key-log counts stand for all.
    pub fn assemble(partial: Partial, first_id: u64) -> Self {
        let Partial {
            inputs,
            parts,
            mut run,
        } = partial;
        let keylog = parts.first().map(|p| p.keylog.clone()).unwrap_or_default();
        // The records are boxed, so joining the lists moves pointers only.
        let total: usize = parts.iter().map(|p| p.connections.len()).sum();
        let mut connections = Records::with_capacity(total);
        for p in parts {
            run.anomalies.merge(&p.anomalies);
            connections.extend(p.connections);
        }
        // First-packet order is the order one thread numbers connections in, and a packet
        // opens at most one connection, so the order is total.
        connections.sort_unstable_by_key(|c| c.first_packet);
        for (n, c) in (first_id..).zip(connections.iter_mut()) {
            c.id = ConnId(n);
        }
        settle_dialects(&mut connections);
        diagnose::mark_first_party(&mut connections);
        let mut window = Window::new();
        let mut diagnosed = Records::with_capacity(connections.len());
        for c in connections {
            window.push(c, &mut |c| diagnosed.push(c));
        }
        let (findings, late) = window.finish(&mut |c| diagnosed.push(c));
        run.anomalies.add_n(Anomaly::TimeDisorder, late);
        // Records leave the window as lookups are done with them, not in id order.
        diagnosed.sort_unstable_by_key(|c| c.id);
        let connections = diagnosed;
        let mut tls = TlsSummary {
            keylog,
            ..TlsSummary::default()
        };
        for t in connections.iter().filter_map(|c| c.tls.as_ref()) {
            tls.connections += 1;
            tls.with_keys += u64::from(!matches!(&*t.decryption, "no_keys" | "not_applicable"));
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
                // Each connection left unlisted is one of these.
                unlisted_connections: run.anomalies.get(Anomaly::ConnectionRecordLimit),
                tls,
                findings: FindingTotals::count(&findings),
                capture: None,
            },
            anomalies: run.anomalies,
            connections,
            findings,
        }
    }

    /// Joins partition reports, in order, assembled with ids that follow each other.
    /// `keylog` is what the key-log files alone count: every partition read them, so they
    /// are counted once, plus what each partition's own pcapng secrets added.
    pub fn merge(reports: Vec<Report>, keylog: &KeyLogStats) -> Option<Report> {
        let mut reports = reports.into_iter();
        let mut merged = reports.next()?;
        for r in reports {
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
            s.unlisted_connections += r.summary.unlisted_connections;
            s.tls.connections += r.summary.tls.connections;
            s.tls.with_keys += r.summary.tls.with_keys;
            s.tls.decrypted += r.summary.tls.decrypted;
            add_keylog(&mut s.tls.keylog, &r.summary.tls.keylog, keylog);
            merged.anomalies.merge(&r.anomalies);
            merged
                .connections
                .extend(r.connections.into_iter().map(|mut c| {
                    c.source.input = c.source.input.saturating_add(inputs);
                    c
                }));
            merged.findings.extend(r.findings);
        }
        merged.summary.findings = FindingTotals::count(&merged.findings);
        Some(merged)
    }
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
