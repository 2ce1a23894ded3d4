//! NDJSON: one JSON object per line, for log pipelines.
//!
//! Contract: the first line is the `summary` record (schema version, tool, inputs, totals,
//! anomalies), then per connection in id order a `connection` record (its facts, without
//! its requests) followed by one `request` record per request, then one `finding` record
//! per finding. Every record carries `record` (its type); request records carry
//! `connection` and `index` (the request's position on its connection), so each line stands
//! alone.

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
    for c in &report.connections {
        let mut v = tagged("connection", c)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("requests");
            if let Some(t) = o.get_mut("tunnel").and_then(Value::as_object_mut) {
                t.remove("requests");
            }
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
            }
            *i += 1;
            line(out, v)?;
        }
    }
    for f in &report.findings {
        line(out, tagged("finding", f)?)?;
    }
    Ok(())
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
