//! Findings counted for the summary: what a fleet-wide job adds up across runs.
//!
//! Contract: [`FindingTotals::count`] is a function of the report's findings only, and
//! every map is sorted by key, so totals from separate runs (one per
//! capture partition, `docs/scale-out.md`) add up, key by key, to the totals of one run
//! over all of them.

use super::diagnose::{Finding, Kind};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FindingTotals {
    pub total: u64,
    /// Findings by kind name (`http_421`, `smtp_421`, ...).
    pub by_kind: BTreeMap<&'static str, u64>,
    /// HTTP 421s only.
    pub http_421: Http421Totals,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Http421Totals {
    /// By cause name; a 421 with several causes counts once under each.
    pub by_cause: BTreeMap<&'static str, u64>,
    /// By the server address (`ip:port`) of the connection that carried the 421.
    pub by_server: BTreeMap<String, u64>,
    /// By the request's authority as sent; `""` when the request named none.
    pub by_authority: BTreeMap<String, u64>,
}

impl FindingTotals {
    pub fn count(findings: &[Finding]) -> Self {
        let mut t = FindingTotals::default();
        for f in findings {
            t.total += 1;
            *t.by_kind.entry(f.kind.name()).or_default() += 1;
            if f.kind != Kind::Http421 {
                continue;
            }
            let h = &mut t.http_421;
            for c in &f.causes {
                *h.by_cause.entry(c.name()).or_default() += 1;
            }
            // An HTTP finding names the server of its connection.
            if let Some(server) = &f.evidence.server {
                *h.by_server.entry(server.clone()).or_default() += 1;
            }
            let authority = f.authority.clone().unwrap_or_default();
            *h.by_authority.entry(authority).or_default() += 1;
        }
        t
    }
}
