//! NDJSON: one JSON object per line, for log pipelines and distributed engines.
//!
//! Contract: the first line is the `summary` record (schema version, tool, inputs, totals,
//! anomalies), then per connection in id order a `connection` record (its facts, without
//! its requests) followed by one `request` record per request, then one `finding` record
//! per finding. Every record carries `record` (its type); request records carry
//! `connection` and `index` (the request's position on its connection), so each line stands
//! alone.
//!
//! Records of many runs can be concatenated (`docs/scale-out.md`): connection, request and
//! finding records carry `uid`, unique across runs, and `source`, the capture file and the
//! packet number there of the connection's first packet. A connection's uid is its input's
//! fingerprint (a hash of the file's name and first bytes) and that packet number; a
//! request's and a finding's add their place on the connection. Request and finding
//! records name their connection's uid in `connection_uid`.

use crate::analysis::Report;
use serde::Serialize;
use serde_json::{json, Value};
use std::io;

pub fn write(report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
    line(
        out,
        json!({
            "record": "summary",
            "schema_version": report.schema_version,
            "tool": report.tool,
            "inputs": report.inputs,
            "summary": report.summary,
            "anomalies": report.anomalies,
        }),
    )?;
    let provenance: Vec<Provenance> = report
        .connections
        .iter()
        .map(|c| Provenance::of(report, c))
        .collect();
    for (c, p) in report.connections.iter().zip(&provenance) {
        let mut v = tagged("connection", c)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("requests");
            if let Some(t) = o.get_mut("tunnel").and_then(Value::as_object_mut) {
                t.remove("requests");
            }
            o.insert("uid".into(), json!(p.uid));
            o.insert("source".into(), p.source.clone());
        }
        line(out, v)?;
        let tunnelled = c
            .tunnel
            .iter()
            .flat_map(|t| t.requests.iter().map(|e| (true, e)));
        let own = c.requests.iter().map(|e| (false, e));
        let (mut own_index, mut tunnel_index) = (0usize, 0usize);
        for (in_tunnel, e) in own.chain(tunnelled) {
            let i = if in_tunnel {
                &mut tunnel_index
            } else {
                &mut own_index
            };
            let mut v = tagged("request", e)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("connection".into(), json!(c.id));
                o.insert("index".into(), json!(*i));
                o.insert("in_tunnel".into(), json!(in_tunnel));
                let place = if in_tunnel { "t" } else { "r" };
                o.insert("uid".into(), json!(format!("{}/{place}{i}", p.uid)));
                o.insert("connection_uid".into(), json!(p.uid));
                o.insert("source".into(), p.source.clone());
            }
            *i += 1;
            line(out, v)?;
        }
    }
    // Findings come in connection order: the n-th of a connection is `f<n>` on it.
    let mut nth = (None, 0usize);
    for f in &report.findings {
        let mut v = tagged("finding", f)?;
        nth = match nth {
            (Some(c), n) if c == f.connection => (Some(c), n + 1),
            _ => (Some(f.connection), 0),
        };
        let conn = report
            .connections
            .binary_search_by_key(&f.connection, |c| c.id)
            .ok();
        if let (Some(o), Some(i)) = (v.as_object_mut(), conn) {
            if let (Some(c), Some(p)) = (report.connections.get(i), provenance.get(i)) {
                o.insert("uid".into(), json!(format!("{}/f{}", p.uid, nth.1)));
                o.insert("connection_uid".into(), json!(p.uid));
                o.insert("source".into(), p.source.clone());
                o.insert("client".into(), json!(c.client.to_string()));
                o.insert("server".into(), json!(c.server.to_string()));
            }
        }
        line(out, v)?;
    }
    Ok(())
}

/// Where a connection comes from, named so that it stays unique across runs.
struct Provenance {
    uid: String,
    source: Value,
}

impl Provenance {
    fn of(report: &Report, c: &crate::analysis::ConnectionRecord) -> Self {
        let input = report.inputs.get(c.source.input as usize);
        let fingerprint = input.map_or("", |i| i.fingerprint.as_str());
        Provenance {
            uid: format!("{fingerprint}-{}", c.source.packet),
            source: json!({
                "file": input.map(|i| i.name.as_str()),
                "packet": c.source.packet,
            }),
        }
    }
}

/// `value` as an object with a `record` member naming its type.
fn tagged<T: Serialize>(record: &str, value: &T) -> io::Result<Value> {
    let mut map = serde_json::Map::new();
    map.insert("record".into(), json!(record));
    if let Value::Object(o) = serde_json::to_value(value).map_err(io::Error::from)? {
        map.extend(o);
    }
    Ok(Value::Object(map))
}

fn line(out: &mut dyn io::Write, v: Value) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &v).map_err(io::Error::from)?;
    out.write_all(b"\n")
}
