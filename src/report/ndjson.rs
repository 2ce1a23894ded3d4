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

use super::provenance::{self, Provenance};
use super::Connections;
use crate::analysis::Report;
use serde::Serialize;
use serde_json::{json, Value};
use std::io;

pub fn write<C: Connections>(report: &Report<C>, out: &mut dyn io::Write) -> io::Result<()> {
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
    report.connections.each(&mut |c| {
        let p = &Provenance::of(&report.inputs, c.source);
        let mut v = tagged("connection", c)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("requests");
            if let Some(t) = o.get_mut("tunnel").and_then(Value::as_object_mut) {
                t.remove("requests");
            }
            o.insert("uid".into(), json!(p.uid));
            o.insert("source".into(), source(p));
        }
        line(out, v)?;
        for (in_tunnel, i, e) in provenance::requests(c) {
            let mut v = tagged("request", e)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("connection".into(), json!(c.id));
                o.insert("index".into(), json!(i));
                o.insert("in_tunnel".into(), json!(in_tunnel));
                o.insert("uid".into(), json!(p.request_uid(in_tunnel, i)));
                o.insert("connection_uid".into(), json!(p.uid));
                o.insert("source".into(), source(p));
            }
            line(out, v)?;
        }
        Ok(())
    })?;
    for (f, at, rank) in provenance::findings_at(&report.inputs, &report.findings) {
        let mut v = tagged("finding", f)?;
        if let (Some(o), Some((p, at))) = (v.as_object_mut(), at) {
            o.insert("uid".into(), json!(p.finding_uid(rank)));
            o.insert("connection_uid".into(), json!(p.uid));
            o.insert("source".into(), source(&p));
            o.insert("client".into(), json!(at.client.to_string()));
            o.insert("server".into(), json!(at.server.to_string()));
        }
        line(out, v)?;
    }
    Ok(())
}

/// A record's `source`: the capture file of its connection's first packet and its number.
fn source(p: &Provenance) -> Value {
    json!({ "file": p.file, "packet": p.packet })
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
