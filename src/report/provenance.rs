//! Provenance: the uids and sources that name connections, requests and findings across
//! runs, shared by the NDJSON records and the Parquet tables so both carry the same values.
//!
//! Contract (`docs/report-schema.md`): a connection's uid is `FINGERPRINT-PACKET`, the
//! fingerprint of the input holding its first packet and that packet's number there; a
//! request's is the connection's plus `/r<index>` (`/t<index>` inside a CONNECT tunnel); a
//! finding's is the connection's plus `/f<rank>`, its rank among its connection's findings.

use crate::analysis::diagnose::{Finding, FoundOn};
use crate::analysis::ConnectionRecord;
use crate::capture::{InputSummary, Origin};
use crate::proto::http::Exchange;

/// Where a connection comes from, named so that it stays unique across runs.
pub(crate) struct Provenance {
    pub uid: String,
    /// The capture file holding the connection's first packet; `None` only for a report
    /// whose inputs do not list it.
    pub file: Option<String>,
    /// That packet's number in the file.
    pub packet: u64,
}

impl Provenance {
    /// The provenance of the connection whose first packet is at `source`.
    pub fn of(inputs: &[InputSummary], source: Origin) -> Self {
        let input = inputs.get(source.input as usize);
        let fingerprint = input.map_or("", |i| i.fingerprint.as_str());
        Provenance {
            uid: format!("{fingerprint}-{}", source.packet),
            file: input.map(|i| i.name.clone()),
            packet: source.packet,
        }
    }

    /// The uid of the request at `index` on this connection (or in its tunnel).
    pub fn request_uid(&self, in_tunnel: bool, index: usize) -> String {
        let place = if in_tunnel { "t" } else { "r" };
        format!("{}/{place}{index}", self.uid)
    }

    /// The uid of the connection's finding of rank `rank`.
    pub fn finding_uid(&self, rank: usize) -> String {
        format!("{}/f{rank}", self.uid)
    }
}

/// A request as the records list it: `(in_tunnel, index, exchange)`, the connection's own
/// requests first, then those of its CONNECT tunnel, each numbered from 0.
pub(crate) fn requests(
    c: &ConnectionRecord,
) -> impl Iterator<Item = (bool, usize, &Exchange)> + '_ {
    let own = c.requests.iter().enumerate().map(|(i, e)| (false, i, e));
    let tunnelled = c
        .tunnel
        .iter()
        .flat_map(|t| t.requests.iter().enumerate().map(|(i, e)| (true, i, e)));
    own.chain(tunnelled)
}

/// Each finding with the provenance and addresses of its connection (as the finding names
/// them; absent only for a finding made by hand) and its rank among its connection's
/// findings. Findings come in connection order: the n-th of a connection has rank n.
pub(crate) fn findings_at<'a>(
    inputs: &'a [InputSummary],
    findings: &'a [Finding],
) -> impl Iterator<Item = (&'a Finding, Option<(Provenance, FoundOn)>, usize)> + 'a {
    ranked(findings).map(|(f, rank)| {
        (
            f,
            f.at.map(|at| (Provenance::of(inputs, at.source), at)),
            rank,
        )
    })
}

/// Each finding with its rank among its connection's findings.
fn ranked(findings: &[Finding]) -> impl Iterator<Item = (&Finding, usize)> {
    let mut nth = (None, 0usize);
    findings.iter().map(move |f| {
        nth = match nth {
            (Some(c), n) if c == f.connection => (Some(c), n + 1),
            _ => (Some(f.connection), 0),
        };
        (f, nth.1)
    })
}
