//! One report from several pieces: the threads of one capture, or the partitions of many.
//!
//! Contract:
//! - A [`Partial`] is what the analysis of one capture kept, before its connections are
//!   numbered: the ledgers of the threads that shared it (each kept the connections it
//!   owns) and their run totals.
//! - [`Report::assemble`] numbers a partial's connections in first-packet order from a given
//!   id (the order one thread would have given them), then diagnoses them together;
//!   [`Listing::assemble`] does the same for a report of either kind, a list of records or
//!   records spilled to a temporary file ([`Spilled`]), read back in that order.
//! - [`Report::merge`] joins the reports of independent partitions (`docs/scale-out.md`),
//!   assembled with ids that follow each other: each partition was diagnosed on its own,
//!   and counts add up.

use super::spill::{Runs, Spill, SpillError, Spilled};
use super::totals::FindingTotals;
use super::window::Window;
use super::{ready, ConnectionRecord, Dialects, Records, Report, Summary, TlsSummary, Tool};
use crate::anomaly::{Anomaly, AnomalyCounts};
use crate::capture::InputSummary;
use crate::flow::ConnId;
use crate::pipeline::RunStats;
use crate::proto::tls::keylog::KeyLogStats;
use std::sync::Arc;

/// What one thread's ledger kept of a capture.
pub struct LedgerPart {
    pub(super) connections: Records,
    /// The records, when they were spilled instead of kept in `connections`.
    pub(super) spill: Option<Spill>,
    pub(super) dialects: Dialects,
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
        let count = |p: &LedgerPart| {
            p.connections.len() as u64 + p.spill.as_ref().map_or(0, Spill::records)
        };
        self.parts.iter().map(count).sum()
    }

    /// Takes the parts' records and counts apart: the anomalies joined into the run's, the
    /// dialects joined.
    fn split(self) -> (Head, Vec<Records>, Vec<Spill>) {
        let Partial {
            inputs,
            parts,
            mut run,
        } = self;
        // Every part read the same key logs, so the first one's key-log counts stand for
        // all.
        let keylog = parts.first().map(|p| p.keylog.clone()).unwrap_or_default();
        let mut dialects = Dialects::default();
        let mut lists = Vec::new();
        let mut spills = Vec::new();
        for p in parts {
            run.anomalies.merge(&p.anomalies);
            dialects.join(p.dialects);
            lists.push(p.connections);
            spills.extend(p.spill);
        }
        let head = Head {
            inputs,
            run,
            keylog,
            dialects: Arc::new(dialects),
        };
        (head, lists, spills)
    }
}

/// How a report keeps its connections: a list, or records spilled to a temporary file.
pub trait Listing: Sized {
    /// Whether the ledgers spill their records for it (`Limits::spill_records`).
    const SPILLS: bool;

    /// The report of one capture, its connections numbered from `first_id` in first-packet
    /// order (the order one thread would have given them) and diagnosed together.
    fn assemble(partial: Partial, first_id: u64) -> Result<Report<Self>, SpillError>;

    /// Appends the next partition's connections, whose inputs follow `inputs_before`
    /// others in the report.
    fn append(&mut self, other: Self, inputs_before: u32);
}

impl Listing for Records {
    const SPILLS: bool = false;

    fn assemble(partial: Partial, first_id: u64) -> Result<Report<Self>, SpillError> {
        Ok(Report::assemble(partial, first_id))
    }

    fn append(&mut self, other: Self, inputs_before: u32) {
        self.extend(other.into_iter().map(|mut c| {
            c.source.input = c.source.input.saturating_add(inputs_before);
            c
        }));
    }
}

impl Report {
    /// The report of one capture, its connections in a list numbered from `first_id`.
    pub fn assemble(partial: Partial, first_id: u64) -> Self {
        let (head, lists, spills) = partial.split();
        // The records are boxed, so joining the lists moves pointers only.
        let mut connections = Records::with_capacity(lists.iter().map(Vec::len).sum());
        connections.extend(lists.into_iter().flatten());
        // Ledgers spill only for a report of `Spilled` connections (`Listing::SPILLS`):
        // were one to spill for this one, its records are read back while they can be.
        debug_assert!(spills.is_empty(), "a list of records from spilled ledgers");
        let spilled = Runs::of(spills).and_then(|runs| runs.merge());
        connections.extend(spilled.into_iter().flatten().map_while(Result::ok));
        // A packet opens at most one connection, so the order is total.
        connections.sort_unstable_by_key(|c| c.first_packet);
        for (n, c) in (first_id..).zip(connections.iter_mut()) {
            ready(c, ConnId(n), &head.dialects);
        }
        let mut kept = Records::with_capacity(connections.len());
        let records = connections
            .into_iter()
            .map(Ok::<_, std::convert::Infallible>);
        let Ok(found) = Found::of(records, false, &mut |c| kept.push(c));
        // Records leave the window as lookups are done with them, not in id order.
        kept.sort_unstable_by_key(|c| c.id);
        head.report(kept, found)
    }
}

impl Listing for Spilled {
    const SPILLS: bool = true;

    /// Reads the spilled records back once, for the diagnosis; the renderers read them
    /// again as they write them.
    fn assemble(partial: Partial, first_id: u64) -> Result<Report<Self>, SpillError> {
        assemble_spilled(partial, first_id)
    }

    fn append(&mut self, other: Self, inputs_before: u32) {
        Spilled::append(self, other, inputs_before);
    }
}

fn assemble_spilled(partial: Partial, first_id: u64) -> Result<Report<Spilled>, SpillError> {
    let (head, lists, mut spills) = partial.split();
    // A ledger that kept its records: spilled here, so all are read back one way.
    let mut kept = Spill::new();
    for c in lists.iter().flatten() {
        kept.put(c);
    }
    spills.push(kept);
    let runs = Runs::of(spills)?;
    let records = (first_id..).zip(runs.merge()?).map(|(n, r)| {
        r.map(|mut c| {
            ready(&mut c, ConnId(n), &head.dialects);
            c
        })
    });
    let found = Found::of(records, true, &mut drop)?;
    let connections = Spilled::new(runs, first_id, found.count, head.dialects.clone());
    Ok(head.report(connections, found))
}

/// What a report says besides its connections and findings.
struct Head {
    inputs: Vec<InputSummary>,
    run: RunStats,
    keylog: KeyLogStats,
    dialects: Arc<Dialects>,
}

/// What the diagnosis of a capture's records found, and the counts made on the way.
struct Found {
    findings: Vec<super::diagnose::Finding>,
    /// Records that started too far before the one ahead of them (`Window`).
    late: u64,
    tls: TlsSummary,
    count: u64,
}

impl Found {
    /// Diagnoses `records` (in id order, ready); each goes to `gone` when the diagnosis is
    /// done with it; when `slim` (the report does not keep them), as soon as it is
    /// diagnosed, the window keeping only what other findings look up (`diagnose::Slim`).
    fn of<E>(
        records: impl Iterator<Item = Result<Box<ConnectionRecord>, E>>,
        slim: bool,
        gone: &mut dyn FnMut(Box<ConnectionRecord>),
    ) -> Result<Found, E> {
        let mut window: Window<Box<ConnectionRecord>> = Window::new();
        if slim {
            window = window.slimming();
        }
        let mut tls = TlsSummary::default();
        let mut count = 0;
        for c in records {
            let c = c?;
            count += 1;
            if let Some(t) = &c.tls {
                tls.connections += 1;
                tls.with_keys += u64::from(!matches!(&*t.decryption, "no_keys" | "not_applicable"));
                tls.decrypted += u64::from(t.decrypted);
            }
            window.push(c, gone);
        }
        let (findings, late) = window.finish(gone);
        Ok(Found {
            findings,
            late,
            tls,
            count,
        })
    }
}

impl Head {
    fn report<C>(self, connections: C, found: Found) -> Report<C> {
        let Head {
            inputs,
            mut run,
            keylog,
            ..
        } = self;
        run.anomalies.add_n(Anomaly::TimeDisorder, found.late);
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
                tls: TlsSummary {
                    keylog,
                    ..found.tls
                },
                findings: FindingTotals::count(&found.findings),
                capture: None,
            },
            anomalies: run.anomalies,
            connections,
            findings: found.findings,
        }
    }
}

impl<C: Listing> Report<C> {
    /// Joins partition reports, in order, assembled with ids that follow each other.
    /// `keylog` is what the key-log files alone count: every partition read them, so they
    /// are counted once, plus what each partition's own pcapng secrets added.
    pub fn merge(reports: Vec<Report<C>>, keylog: &KeyLogStats) -> Option<Report<C>> {
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
            merged.connections.append(r.connections, inputs);
            merged.findings.extend(r.findings.into_iter().map(|mut f| {
                if let Some(at) = &mut f.at {
                    at.source.input = at.source.input.saturating_add(inputs);
                }
                f
            }));
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
