//! Parquet: the report as three flat tables, `connections`, `requests` and `findings`, for
//! engines that prefer columns (Spark, DuckDB, pandas, ...).
//!
//! Contract (`docs/report-schema.md`, "Parquet"): one file per table in a directory, rows in
//! report order (the NDJSON records'), one column per fact with a fixed schema (strings,
//! int64, bool, double, lists of strings; times as int64 nanoseconds since the epoch, UTC,
//! named `*_ns`), the NDJSON names and values where both have a field, and the same `uid`,
//! `connection_uid` and source. Each table is described once, in `*_columns`: a column's
//! name, its type and how to read it off a row.

use super::provenance::{self, Provenance};
use super::Connections;
use crate::analysis::diagnose::{Finding, FoundOn};
use crate::analysis::{ConnectionRecord, Report};
use crate::flow::ConnId;
use crate::proto::http::Exchange;
use crate::proto::tls::session::TlsInfo;
use crate::Timestamp;
use parquet::basic::{Compression, LogicalType, Repetition, Type as Physical, ZstdLevel};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::ByteArray;
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use serde::Serialize;
use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// Rows per row group: bounds the memory one column of a group takes while written.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Rows (a connection and each of its requests counting one) of the connections held in
/// memory at a time for the `connections` and `requests` tables, read back one at a time
/// when the records are spilled: each group is a row group of each table.
const GROUP_ROWS: usize = 8 * 1024;

/// Writes the three tables into `dir`. They replace an earlier run's together, once all
/// three are written: a failure to write one leaves the directory as it was, never one
/// run's connections beside another's findings (their uids would not join). Only a rename
/// that fails after another succeeded (three renames in one directory are not one atomic
/// step) could still mix them; the error then names the table.
pub fn write<C: Connections>(report: &Report<C>, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot create directory {}: {e}", dir.display()),
        )
    })?;
    let mut tables = Tables {
        dir,
        written: Vec::new(),
    };
    if let Err(e) = write_tables(report, &mut tables) {
        for (partial, _) in &tables.written {
            let _ = std::fs::remove_file(partial);
        }
        return Err(e);
    }
    for (partial, path) in &tables.written {
        std::fs::rename(partial, path).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
        })?;
    }
    Ok(())
}

/// Where the tables go, and those written so far (under a hidden name, and their own).
struct Tables<'a> {
    dir: &'a Path,
    written: Vec<(std::path::PathBuf, std::path::PathBuf)>,
}

fn write_tables<C: Connections>(report: &Report<C>, tables: &mut Tables<'_>) -> io::Result<()> {
    let meta = Meta::of(report);
    // The uids of the connections findings name besides their own (retry, upstream,
    // downstream), taken as the connections go by.
    let mut uids: HashMap<ConnId, String> = report
        .findings
        .iter()
        .flat_map(|f| {
            let retry = f.retry.as_ref().map(|r| r.connection);
            let upstream = f.upstream.as_ref().map(|u| u.connection);
            let downstream = f.downstream.as_ref().map(|d| d.connection);
            [retry, upstream, downstream]
        })
        .flatten()
        .map(|id| (id, String::new()))
        .collect();

    let provenances = |group: &[&ConnectionRecord]| -> Vec<Provenance> {
        group
            .iter()
            .map(|c| Provenance::of(&report.inputs, c.source))
            .collect()
    };
    let columns = connection_columns();
    let mut table = tables.open(&meta, "connections", &columns)?;
    report.connections.each_group(GROUP_ROWS, &mut |group| {
        let provenances = provenances(group);
        for (c, p) in group.iter().zip(&provenances) {
            if let Some(uid) = uids.get_mut(&c.id) {
                uid.clone_from(&p.uid);
            }
        }
        let rows: Vec<ConnRow> = group
            .iter()
            .zip(&provenances)
            .map(|(c, p)| ConnRow { c, p })
            .collect();
        table.rows(&connection_columns(), &rows)
    })?;
    tables.close(table)?;

    let mut table = tables.open(&meta, "requests", &request_columns())?;
    report.connections.each_group(GROUP_ROWS, &mut |group| {
        let provenances = provenances(group);
        let rows: Vec<RequestRow> = group
            .iter()
            .zip(&provenances)
            .flat_map(|(c, p)| {
                provenance::requests(c).map(move |(in_tunnel, index, e)| RequestRow {
                    c,
                    p,
                    in_tunnel,
                    index,
                    e,
                })
            })
            .collect();
        table.rows(&request_columns(), &rows)
    })?;
    tables.close(table)?;

    let uid_of = |id| uids.get(&id).map(String::as_str).filter(|u| !u.is_empty());
    let findings: Vec<FindingRow> = provenance::findings_at(&report.inputs, &report.findings)
        .map(|(f, at, rank)| {
            let (p, at) = at.unzip();
            FindingRow {
                f,
                uid: p.as_ref().map(|p| p.finding_uid(rank)),
                request_uid: p
                    .as_ref()
                    .zip(f.request)
                    .map(|(p, i)| p.request_uid(f.in_tunnel, i)),
                at,
                p,
                retry_uid: f.retry.as_ref().and_then(|r| uid_of(r.connection)),
                upstream_uid: f.upstream.as_ref().and_then(|u| uid_of(u.connection)),
                downstream_uid: f.downstream.as_ref().and_then(|d| uid_of(d.connection)),
            }
        })
        .collect();
    let columns = finding_columns();
    let mut table = tables.open(&meta, "findings", &columns)?;
    table.rows(&columns, &findings)?;
    tables.close(table)
}

/// A row of `connections`.
struct ConnRow<'a> {
    c: &'a ConnectionRecord,
    p: &'a Provenance,
}

impl ConnRow<'_> {
    fn tls(&self) -> Option<&TlsInfo> {
        self.c.tls.as_deref()
    }
}

/// A row of `requests`: an exchange of a connection (or of its CONNECT tunnel).
struct RequestRow<'a> {
    c: &'a ConnectionRecord,
    p: &'a Provenance,
    in_tunnel: bool,
    index: usize,
    e: &'a Exchange,
}

/// A row of `findings`, with the uids of the connections it names.
struct FindingRow<'a> {
    f: &'a Finding,
    /// Its connection's addresses and provenance.
    at: Option<FoundOn>,
    p: Option<Provenance>,
    uid: Option<String>,
    request_uid: Option<String>,
    retry_uid: Option<&'a str>,
    upstream_uid: Option<&'a str>,
    downstream_uid: Option<&'a str>,
}

fn connection_columns<'a>() -> Vec<Col<ConnRow<'a>>> {
    use Get::*;
    type R<'a> = ConnRow<'a>;
    let mut cols = vec![
        req("uid", Str(|r: &R| Some(r.p.uid.clone()))),
        opt("source_file", Str(|r: &R| r.p.file.clone())),
        req("source_packet", Int(|r: &R| int(r.p.packet))),
        req("id", Int(|r: &R| int(r.c.id.0))),
        req("client", Str(|r: &R| Some(r.c.client.to_string()))),
        req("server", Str(|r: &R| Some(r.c.server.to_string()))),
        list(
            "encapsulation",
            Strs(|r: &R| {
                let kinds = r.c.encapsulation.iter().map(|l| l.kind().to_owned());
                kinds.collect()
            }),
        ),
        req("orientation", Str(|r: &R| name(&r.c.orientation))),
        req("mid_stream", Bool(|r: &R| Some(r.c.mid_stream))),
        req("first_seen_ns", Int(|r: &R| Some(r.c.first_seen.0))),
        req("last_seen_ns", Int(|r: &R| Some(r.c.last_seen.0))),
        req("first_packet", Int(|r: &R| int(r.c.first_packet))),
        req("last_packet", Int(|r: &R| int(r.c.last_packet))),
        req("close", Str(|r: &R| name(&r.c.close))),
        req("protocol", Str(|r: &R| name(&r.c.protocol))),
    ];
    cols.extend(direction_columns());
    cols.extend([
        req("tls", Bool(|r: &R| Some(r.c.tls.is_some()))),
        opt("sni", Str(|r: &R| owned(&r.tls()?.sni))),
        opt(
            "alpn",
            Str(|r: &R| Some(r.tls()?.alpn.as_deref()?.to_string())),
        ),
        opt(
            "tls_version",
            Str(|r: &R| Some(r.tls()?.version?.to_string())),
        ),
        opt("cipher", Str(|r: &R| Some(r.tls()?.cipher?.to_string()))),
        opt("ech", Bool(|r: &R| Some(r.tls()?.ech))),
        opt("resumed", Bool(|r: &R| Some(r.tls()?.resumed))),
        list(
            "server_names",
            Strs(|r: &R| r.tls().map(|t| t.server_names.to_vec()).unwrap_or_default()),
        ),
        opt(
            "decryption",
            Str(|r: &R| Some(r.tls()?.decryption.to_string())),
        ),
        opt("decrypted", Bool(|r: &R| Some(r.tls()?.decrypted))),
        req("requests", Int(|r: &R| count(r.c.requests.len()))),
        req(
            "tunnel_requests",
            Int(|r: &R| count(r.c.tunnel.as_ref().map_or(0, |t| t.requests.len()))),
        ),
        req("requests_dropped", Int(|r: &R| int(r.c.requests_dropped))),
        opt(
            "tunnel_protocol",
            Str(|r: &R| name(&r.c.tunnel.as_ref()?.protocol)),
        ),
        opt(
            "tunnel_sni",
            Str(|r: &R| owned(&r.c.tunnel.as_ref()?.tls.as_ref()?.sni)),
        ),
    ]);
    cols
}

/// Per direction: `client_to_server_packets`, ..., `server_to_client_gap_bytes`.
fn direction_columns<'a>() -> Vec<Col<ConnRow<'a>>> {
    use Get::Int;
    type R<'a> = ConnRow<'a>;
    vec![
        req(
            "client_to_server_packets",
            Int(|r: &R| int(r.c.client_to_server.packets)),
        ),
        req(
            "client_to_server_payload_bytes",
            Int(|r: &R| int(r.c.client_to_server.payload_bytes)),
        ),
        req(
            "client_to_server_gaps",
            Int(|r: &R| int(r.c.client_to_server.gaps)),
        ),
        req(
            "client_to_server_gap_bytes",
            Int(|r: &R| int(r.c.client_to_server.gap_bytes)),
        ),
        req(
            "server_to_client_packets",
            Int(|r: &R| int(r.c.server_to_client.packets)),
        ),
        req(
            "server_to_client_payload_bytes",
            Int(|r: &R| int(r.c.server_to_client.payload_bytes)),
        ),
        req(
            "server_to_client_gaps",
            Int(|r: &R| int(r.c.server_to_client.gaps)),
        ),
        req(
            "server_to_client_gap_bytes",
            Int(|r: &R| int(r.c.server_to_client.gap_bytes)),
        ),
    ]
}

fn request_columns<'a>() -> Vec<Col<RequestRow<'a>>> {
    use Get::*;
    type R<'a> = RequestRow<'a>;
    vec![
        req(
            "uid",
            Str(|r: &R| Some(r.p.request_uid(r.in_tunnel, r.index))),
        ),
        req("connection_uid", Str(|r: &R| Some(r.p.uid.clone()))),
        opt("source_file", Str(|r: &R| r.p.file.clone())),
        req("source_packet", Int(|r: &R| int(r.p.packet))),
        req("connection", Int(|r: &R| int(r.c.id.0))),
        req("index", Int(|r: &R| count(r.index))),
        req("in_tunnel", Bool(|r: &R| Some(r.in_tunnel))),
        opt("stream_id", Int(|r: &R| Some(r.e.stream_id?.get().into()))),
        opt("version", Str(|r: &R| name(&r.e.version?))),
        req("request_seen", Bool(|r: &R| Some(r.e.request_seen))),
        opt("request_time_ns", Int(|r: &R| time(r.e.request_time))),
        opt("method", Str(|r: &R| owned(&r.e.method))),
        opt("scheme", Str(|r: &R| owned(&r.e.scheme))),
        opt("authority", Str(|r: &R| owned(&r.e.authority))),
        opt("host", Str(|r: &R| owned(&r.e.host))),
        opt("path", Str(|r: &R| owned(&r.e.path))),
        opt("forwarded", Str(|r: &R| owned(&r.e.rare().forwarded))),
        opt(
            "x_forwarded_host",
            Str(|r: &R| owned(&r.e.rare().x_forwarded_host)),
        ),
        opt("via", Str(|r: &R| owned(&r.e.rare().via))),
        req(
            "unknown_fields",
            Int(|r: &R| Some(r.e.unknown_fields.into())),
        ),
        opt("status", Int(|r: &R| Some(r.e.status?.into()))),
        opt("reason", Str(|r: &R| owned(&r.e.reason))),
        opt("response_time_ns", Int(|r: &R| time(r.e.response_time))),
        opt("server", Str(|r: &R| owned(&r.e.server))),
        opt("content_length", Int(|r: &R| int(r.e.content_length?))),
        req(
            "response_unknown_fields",
            Int(|r: &R| Some(r.e.response_unknown_fields.into())),
        ),
        req("pushed", Bool(|r: &R| Some(r.e.pushed))),
        opt(
            "reset_by",
            Str(|r: &R| name(&r.e.rare().reset.as_ref()?.by)),
        ),
        opt(
            "reset_error",
            Str(|r: &R| Some(r.e.rare().reset.as_ref()?.error.clone())),
        ),
        opt("upgraded_to", Str(|r: &R| owned(&r.e.rare().upgraded_to))),
        req("pairing", Str(|r: &R| name(&r.e.pairing))),
        opt("first_party", Bool(|r: &R| r.e.first_party)),
    ]
}

fn finding_columns<'a>() -> Vec<Col<FindingRow<'a>>> {
    use Get::*;
    type R<'a> = FindingRow<'a>;
    vec![
        opt("uid", Str(|r: &R| r.uid.clone())),
        opt(
            "connection_uid",
            Str(|r: &R| Some(r.p.as_ref()?.uid.clone())),
        ),
        opt("source_file", Str(|r: &R| r.p.as_ref()?.file.clone())),
        opt("source_packet", Int(|r: &R| int(r.p.as_ref()?.packet))),
        req("kind", Str(|r: &R| Some(r.f.kind.name().to_owned()))),
        req("connection", Int(|r: &R| int(r.f.connection.0))),
        opt("request", Int(|r: &R| count(r.f.request?))),
        opt("request_uid", Str(|r: &R| r.request_uid.clone())),
        req("in_tunnel", Bool(|r: &R| Some(r.f.in_tunnel))),
        opt("stream_id", Int(|r: &R| Some(r.f.stream_id?.into()))),
        opt("time_ns", Int(|r: &R| time(r.f.time))),
        opt("method", Str(|r: &R| r.f.method.clone())),
        opt("path", Str(|r: &R| r.f.path.clone())),
        opt("sni", Str(|r: &R| r.f.sni.clone())),
        opt("authority", Str(|r: &R| r.f.authority.clone())),
        opt("status", Int(|r: &R| Some(r.f.status?.into()))),
        list(
            "causes",
            Strs(|r: &R| r.f.causes.iter().map(|c| c.name().to_owned()).collect()),
        ),
        opt("client", Str(|r: &R| Some(r.at?.client.to_string()))),
        opt("server", Str(|r: &R| Some(r.at?.server.to_string()))),
        req("tls", Bool(|r: &R| Some(r.f.evidence.tls))),
        opt(
            "alpn",
            Str(|r: &R| Some(r.f.evidence.alpn.as_deref()?.to_string())),
        ),
        opt(
            "first_authority",
            Str(|r: &R| r.f.evidence.first_authority.clone()),
        ),
        list(
            "earlier_authorities",
            Strs(|r: &R| r.f.evidence.earlier_authorities.clone()),
        ),
        opt("host_header", Str(|r: &R| r.f.evidence.host_header.clone())),
        list(
            "certificate_names",
            Strs(|r: &R| r.f.evidence.certificate_names.clone()),
        ),
        opt(
            "certificate_covers_authority",
            Bool(|r: &R| r.f.evidence.certificate_covers_authority),
        ),
        opt("in_origin_set", Bool(|r: &R| r.f.evidence.in_origin_set)),
        opt(
            "retry_connection",
            Int(|r: &R| int(r.f.retry.as_ref()?.connection.0)),
        ),
        opt(
            "retry_connection_uid",
            Str(|r: &R| r.retry_uid.map(str::to_owned)),
        ),
        opt(
            "retry_request",
            Int(|r: &R| count(r.f.retry.as_ref()?.request)),
        ),
        opt(
            "retry_status",
            Int(|r: &R| Some(r.f.retry.as_ref()?.status?.into())),
        ),
        opt("retry_sni", Str(|r: &R| r.f.retry.as_ref()?.sni.clone())),
        opt(
            "retry_after_ms",
            Float(|r: &R| Some(r.f.retry.as_ref()?.after_ms)),
        ),
        opt(
            "upstream_connection",
            Int(|r: &R| int(r.f.upstream.as_ref()?.connection.0)),
        ),
        opt(
            "upstream_connection_uid",
            Str(|r: &R| r.upstream_uid.map(str::to_owned)),
        ),
        opt(
            "upstream_request",
            Int(|r: &R| count(r.f.upstream.as_ref()?.request)),
        ),
        opt(
            "upstream_sni",
            Str(|r: &R| r.f.upstream.as_ref()?.sni.clone()),
        ),
        opt(
            "upstream_authority",
            Str(|r: &R| r.f.upstream.as_ref()?.authority.clone()),
        ),
        opt(
            "upstream_status",
            Int(|r: &R| Some(r.f.upstream.as_ref()?.status?.into())),
        ),
        opt(
            "downstream_connection",
            Int(|r: &R| int(r.f.downstream.as_ref()?.connection.0)),
        ),
        opt(
            "downstream_connection_uid",
            Str(|r: &R| r.downstream_uid.map(str::to_owned)),
        ),
        opt(
            "downstream_stream_id",
            Int(|r: &R| Some(r.f.downstream.as_ref()?.stream_id?.into())),
        ),
        opt("reply", Str(|r: &R| r.f.reply.clone())),
        req("explanation", Str(|r: &R| Some(r.f.explanation.clone()))),
    ]
}

/// A column: its name, whether it may be null, and how to read its value off a row.
struct Col<R> {
    name: &'static str,
    required: bool,
    get: Get<R>,
}

/// A column's type, with the function giving its value for a row (`None`: null).
enum Get<R> {
    /// UTF-8 string.
    Str(fn(&R) -> Option<String>),
    /// int64; times (`*_ns`) are nanoseconds since 1970-01-01T00:00:00Z, not Parquet
    /// TIMESTAMP(NANOS), which Spark refuses to read.
    Int(fn(&R) -> Option<i64>),
    Bool(fn(&R) -> Option<bool>),
    Float(fn(&R) -> Option<f64>),
    /// A list of strings (never null; empty when there are none).
    Strs(fn(&R) -> Vec<String>),
}

fn req<R>(name: &'static str, get: Get<R>) -> Col<R> {
    Col {
        name,
        required: true,
        get,
    }
}

fn opt<R>(name: &'static str, get: Get<R>) -> Col<R> {
    Col {
        name,
        required: false,
        get,
    }
}

/// A list column: never null (an empty list when there is nothing).
fn list<R>(name: &'static str, get: Get<R>) -> Col<R> {
    req(name, get)
}

impl<R> Col<R> {
    /// The column's schema field.
    fn field(&self) -> Result<Arc<Type>, ParquetError> {
        let repetition = if self.required {
            Repetition::REQUIRED
        } else {
            Repetition::OPTIONAL
        };
        let primitive = |name: &str, physical, logical| {
            Type::primitive_type_builder(name, physical)
                .with_repetition(repetition)
                .with_logical_type(logical)
                .build()
        };
        let field = match self.get {
            Get::Str(_) => primitive(self.name, Physical::BYTE_ARRAY, Some(LogicalType::String))?,
            Get::Int(_) => primitive(self.name, Physical::INT64, None)?,
            Get::Bool(_) => primitive(self.name, Physical::BOOLEAN, None)?,
            Get::Float(_) => primitive(self.name, Physical::DOUBLE, None)?,
            // The standard three-level list: `<name> (LIST) { repeated list { element } }`.
            Get::Strs(_) => {
                let element = Type::primitive_type_builder("element", Physical::BYTE_ARRAY)
                    .with_repetition(Repetition::REQUIRED)
                    .with_logical_type(Some(LogicalType::String))
                    .build()?;
                let repeated = Type::group_type_builder("list")
                    .with_repetition(Repetition::REPEATED)
                    .with_fields(vec![Arc::new(element)])
                    .build()?;
                Type::group_type_builder(self.name)
                    .with_repetition(Repetition::REQUIRED)
                    .with_logical_type(Some(LogicalType::List))
                    .with_fields(vec![Arc::new(repeated)])
                    .build()?
            }
        };
        Ok(Arc::new(field))
    }

    /// Writes this column of `rows` into `writer`, the writer of this column's chunk.
    fn write(&self, writer: &mut ColumnWriter<'_>, rows: &[R]) -> Result<(), ParquetError> {
        match (&self.get, writer) {
            (Get::Str(f), ColumnWriter::ByteArrayColumnWriter(w)) => {
                let (values, defs) = self.levels(rows, f, |s| ByteArray::from(s.into_bytes()))?;
                w.write_batch(&values, defs.as_deref(), None)?;
            }
            (Get::Int(f), ColumnWriter::Int64ColumnWriter(w)) => {
                let (values, defs) = self.levels(rows, f, |n| n)?;
                w.write_batch(&values, defs.as_deref(), None)?;
            }
            (Get::Bool(f), ColumnWriter::BoolColumnWriter(w)) => {
                let (values, defs) = self.levels(rows, f, |b| b)?;
                w.write_batch(&values, defs.as_deref(), None)?;
            }
            (Get::Float(f), ColumnWriter::DoubleColumnWriter(w)) => {
                let (values, defs) = self.levels(rows, f, |x| x)?;
                w.write_batch(&values, defs.as_deref(), None)?;
            }
            // Definition level 0: an empty list, 1: an element; repetition level 0 starts a
            // row's list, 1 continues it.
            (Get::Strs(f), ColumnWriter::ByteArrayColumnWriter(w)) => {
                let (mut values, mut defs, mut reps) = (Vec::new(), Vec::new(), Vec::new());
                for row in rows {
                    let items = f(row);
                    if items.is_empty() {
                        defs.push(0);
                        reps.push(0);
                    }
                    for (i, s) in items.into_iter().enumerate() {
                        defs.push(1);
                        reps.push(i16::from(i > 0));
                        values.push(ByteArray::from(s.into_bytes()));
                    }
                }
                w.write_batch(&values, Some(&defs), Some(&reps))?;
            }
            _ => {
                return Err(ParquetError::General(format!(
                    "column {}: writer of another type",
                    self.name
                )))
            }
        }
        Ok(())
    }

    /// The non-null values of a scalar column and, when it is optional, its definition
    /// levels (1: a value, 0: null).
    fn levels<T, V>(
        &self,
        rows: &[R],
        get: &fn(&R) -> Option<T>,
        value: impl Fn(T) -> V,
    ) -> Result<(Vec<V>, Option<Vec<i16>>), ParquetError> {
        let mut values = Vec::with_capacity(rows.len());
        let mut defs = Vec::with_capacity(if self.required { 0 } else { rows.len() });
        for row in rows {
            match get(row) {
                Some(v) => {
                    values.push(value(v));
                    defs.push(1);
                }
                None if self.required => {
                    return Err(ParquetError::General(format!(
                        "column {}: null in a required column",
                        self.name
                    )))
                }
                None => defs.push(0),
            }
        }
        Ok((values, (!self.required).then_some(defs)))
    }
}

/// What every table's file says of the report it comes from.
struct Meta {
    schema_version: &'static str,
    version: &'static str,
}

impl Meta {
    fn of<C>(report: &Report<C>) -> Self {
        Meta {
            schema_version: report.schema_version,
            version: report.tool.version,
        }
    }
}

/// One table being written, under a hidden name until [`write`] renames it.
struct Table {
    writer: SerializedFileWriter<std::fs::File>,
    path: std::path::PathBuf,
}

impl Tables<'_> {
    /// Starts the table `name`, its file under a hidden name until [`write`] renames it to
    /// `dir/<name>.parquet` (or removes it, when a table fails).
    fn open<R>(&mut self, meta: &Meta, name: &str, columns: &[Col<R>]) -> io::Result<Table> {
        let path = self.dir.join(format!("{name}.parquet"));
        let partial = self.dir.join(format!(".{name}.parquet.partial"));
        self.written.push((partial.clone(), path.clone()));
        let writer = new_file(meta, &partial, name, columns).map_err(|e| named(e, &path))?;
        Ok(Table { writer, path })
    }

    fn close(&mut self, table: Table) -> io::Result<()> {
        table
            .writer
            .into_inner()
            .map_err(|e| named(e.into(), &table.path))?;
        Ok(())
    }
}

impl Table {
    /// Writes `rows` as row groups of [`ROW_GROUP_ROWS`] at most.
    fn rows<R>(&mut self, columns: &[Col<R>], rows: &[R]) -> io::Result<()> {
        let written = (|| -> io::Result<()> {
            for group in rows.chunks(ROW_GROUP_ROWS) {
                let mut group_writer = self.writer.next_row_group()?;
                for column in columns {
                    let Some(mut column_writer) = group_writer.next_column()? else {
                        return Err(io::Error::other("fewer columns in the schema than written"));
                    };
                    column.write(column_writer.untyped(), group)?;
                    column_writer.close()?;
                }
                group_writer.close()?;
            }
            Ok(())
        })();
        written.map_err(|e| named(e, &self.path))
    }
}

/// `e`, naming the table's file.
fn named(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
}

fn new_file<R>(
    meta: &Meta,
    path: &Path,
    name: &str,
    columns: &[Col<R>],
) -> io::Result<SerializedFileWriter<std::fs::File>> {
    let fields = columns
        .iter()
        .map(Col::field)
        .collect::<Result<Vec<_>, _>>()?;
    let schema = Type::group_type_builder("schema")
        .with_fields(fields)
        .build()?;
    let metadata = [
        ("misdirect.table", name),
        ("misdirect.schema_version", meta.schema_version),
        ("misdirect.version", meta.version),
    ];
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_key_value_metadata(Some(
            metadata
                .iter()
                .map(|(k, v)| KeyValue::new((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ))
        .build();
    let file = std::fs::File::create(path)?;
    Ok(SerializedFileWriter::new(
        file,
        Arc::new(schema),
        Arc::new(properties),
    )?)
}

/// A count as int64 (saturating: no count comes near).
fn int(n: u64) -> Option<i64> {
    Some(i64::try_from(n).unwrap_or(i64::MAX))
}

fn count(n: usize) -> Option<i64> {
    int(n as u64)
}

/// An exchange's text field.
fn owned<T: std::ops::Deref<Target = str>>(text: &Option<T>) -> Option<String> {
    text.as_deref().map(str::to_string)
}

fn time(t: Option<Timestamp>) -> Option<i64> {
    t.map(|t| t.0)
}

/// The name of a unit enum as the JSON report spells it (`reset_by_client`, `HTTP/2`, ...).
fn name<T: Serialize>(value: &T) -> Option<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Some(s),
        _ => None,
    }
}
