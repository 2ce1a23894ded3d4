//! `--format parquet`: the three tables written by the binary, read back with the parquet
//! crate's reader and checked against the JSON report and the NDJSON records of the same
//! capture (row counts, uids, values).
#![cfg(feature = "parquet")]

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_misdirect"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn sample(name: &str) -> String {
    format!("{}/samples/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory for one test's output (not created: misdirect creates it).
fn out_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("misdirect-parquet-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A table read back: its rows as JSON objects, its column names, its key-value metadata.
struct Table {
    rows: Vec<Map<String, Value>>,
    columns: Vec<String>,
    metadata: Vec<(String, Option<String>)>,
}

fn read_table(dir: &Path, name: &str) -> Table {
    let file = std::fs::File::open(dir.join(format!("{name}.parquet"))).unwrap();
    let reader = SerializedFileReader::new(file).unwrap();
    let meta = reader.metadata().file_metadata();
    let columns = meta
        .schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_owned())
        .collect();
    let metadata = meta
        .key_value_metadata()
        .map(|kv| {
            kv.iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect()
        })
        .unwrap_or_default();
    let num_rows = meta.num_rows();
    let rows: Vec<Map<String, Value>> = reader
        .into_iter()
        .map(|row| {
            row.unwrap()
                .get_column_iter()
                .map(|(name, f)| (name.clone(), json(f)))
                .collect()
        })
        .collect();
    assert_eq!(rows.len() as i64, num_rows, "{name}: rows vs footer");
    Table {
        rows,
        columns,
        metadata,
    }
}

/// A Parquet field as the JSON value the NDJSON records would hold.
fn json(f: &Field) -> Value {
    match f {
        Field::Null => Value::Null,
        Field::Bool(b) => Value::from(*b),
        Field::Long(n) => Value::from(*n),
        Field::Double(x) => Value::from(*x),
        Field::Str(s) => Value::from(s.as_str()),
        Field::ListInternal(l) => Value::Array(l.elements().iter().map(json).collect()),
        other => panic!("unexpected Parquet field {other:?}"),
    }
}

/// The NDJSON records of `args`, by record type.
fn ndjson(args: &[&str]) -> Map<String, Value> {
    let out = run(&[args, &["-f", "ndjson", "-q"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let mut by_type: Map<String, Value> = Map::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let record = v["record"].as_str().unwrap().to_owned();
        by_type
            .entry(record)
            .or_insert_with(|| Value::Array(vec![]))
            .as_array_mut()
            .unwrap()
            .push(v);
    }
    by_type
}

fn records<'a>(by_type: &'a Map<String, Value>, record: &str) -> &'a [Value] {
    by_type
        .get(record)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn column<'a>(t: &'a Table, name: &str) -> Vec<&'a Value> {
    t.rows.iter().map(|r| &r[name]).collect()
}

fn nanos(rfc3339: &Value) -> Value {
    match rfc3339.as_str() {
        None => Value::Null,
        Some(s) => {
            let t = humantime::parse_rfc3339(s).unwrap();
            let ns = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
            Value::from(i64::try_from(ns).unwrap())
        }
    }
}

/// Writes the tables of `capture` (with its key log) and checks them against the JSON report
/// and the NDJSON records; returns the tables for sample-specific checks.
fn check_against_json(capture: &str, keys: &str, test: &str) -> [Table; 3] {
    let (capture, keys) = (sample(capture), sample(keys));
    let args = ["analyze", capture.as_str(), "--keylog", keys.as_str()];
    let dir = out_dir(test);
    let out = run(&[
        &args[..],
        &["-f", "parquet", "-q", "-o", dir.to_str().unwrap()],
    ]
    .concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());

    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "connections.parquet",
            "findings.parquet",
            "requests.parquet"
        ],
        "exactly the three tables, no partial file left"
    );
    let [connections, requests, findings] =
        ["connections", "requests", "findings"].map(|t| read_table(&dir, t));
    for (t, name) in [
        (&connections, "connections"),
        (&requests, "requests"),
        (&findings, "findings"),
    ] {
        let meta = |k: &str| {
            t.metadata
                .iter()
                .find(|(key, _)| key == k)
                .and_then(|(_, v)| v.clone())
        };
        assert_eq!(meta("misdirect.table").as_deref(), Some(name));
        assert_eq!(
            meta("misdirect.schema_version").as_deref(),
            Some(misdirect::analysis::SCHEMA_VERSION)
        );
        for c in ["uid", "source_file", "source_packet"] {
            assert!(t.columns.iter().any(|n| n == c), "{name} has {c}");
        }
    }

    // Row counts: the JSON report's connections, requests (tunnelled ones included) and
    // findings.
    let out = run(&[&args[..], &["-f", "json", "-q"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let conns = report["connections"].as_array().unwrap();
    let total_requests: usize = conns
        .iter()
        .map(|c| {
            c["requests"].as_array().unwrap().len()
                + c["tunnel"]["requests"].as_array().map_or(0, Vec::len)
        })
        .sum();
    assert_eq!(connections.rows.len(), conns.len());
    assert_eq!(requests.rows.len(), total_requests);
    assert_eq!(
        findings.rows.len(),
        report["findings"].as_array().unwrap().len()
    );

    // The same rows as the NDJSON records, in the same order, with the same values.
    let nd = ndjson(&args);
    let same = |t: &Table, record: &str, fields: &[(&str, &str)]| {
        let recs = records(&nd, record);
        assert_eq!(t.rows.len(), recs.len(), "{record} rows");
        for (row, rec) in t.rows.iter().zip(recs) {
            for (col, field) in fields {
                let want = match *field {
                    "source.file" => rec["source"]["file"].clone(),
                    "source.packet" => rec["source"]["packet"].clone(),
                    "tls.sni" => rec["tls"]["sni"].clone(),
                    "retry.status" => rec["retry"]["status"].clone(),
                    "retry.connection" => rec["retry"]["connection"].clone(),
                    f if f.ends_with("_ns") => nanos(&rec[f.trim_end_matches("_ns")]),
                    f => rec[f].clone(),
                };
                assert_eq!(row[*col], want, "{record} {}: {col}", rec["uid"]);
            }
        }
    };
    let common = [
        ("uid", "uid"),
        ("source_file", "source.file"),
        ("source_packet", "source.packet"),
    ];
    same(&connections, "connection", &common);
    same(
        &connections,
        "connection",
        &[
            ("id", "id"),
            ("client", "client"),
            ("server", "server"),
            ("protocol", "protocol"),
            ("close", "close"),
            ("sni", "tls.sni"),
            ("first_seen_ns", "first_seen_ns"),
            ("last_seen_ns", "last_seen_ns"),
        ],
    );
    same(&requests, "request", &common);
    same(
        &requests,
        "request",
        &[
            ("connection_uid", "connection_uid"),
            ("connection", "connection"),
            ("index", "index"),
            ("in_tunnel", "in_tunnel"),
            ("stream_id", "stream_id"),
            ("method", "method"),
            ("authority", "authority"),
            ("path", "path"),
            ("status", "status"),
            ("request_time_ns", "request_time_ns"),
            ("response_time_ns", "response_time_ns"),
        ],
    );
    same(&findings, "finding", &common);
    same(
        &findings,
        "finding",
        &[
            ("connection_uid", "connection_uid"),
            ("kind", "kind"),
            ("connection", "connection"),
            ("request", "request"),
            ("sni", "sni"),
            ("authority", "authority"),
            ("status", "status"),
            ("causes", "causes"),
            ("server", "server"),
            ("explanation", "explanation"),
            ("retry_status", "retry.status"),
            ("retry_connection", "retry.connection"),
        ],
    );
    // A finding names its request by uid: a row of the requests table.
    for f in &findings.rows {
        if !f["request_uid"].is_null() {
            let r = requests
                .rows
                .iter()
                .find(|r| r["uid"] == f["request_uid"])
                .unwrap_or_else(|| panic!("request {} of finding {}", f["request_uid"], f["uid"]));
            assert_eq!(r["status"], f["status"]);
        }
    }
    [connections, requests, findings]
}

#[test]
fn chromium_coalescing_tables_match_the_report() {
    let [connections, requests, findings] = check_against_json(
        "chromium-coalesce-421.pcapng",
        "chromium-coalesce-421.keys",
        "chromium",
    );
    assert_eq!(connections.rows.len(), 3);
    assert_eq!(requests.rows.len(), 3);
    let f = &findings.rows[..];
    assert_eq!(f.len(), 1);
    assert_eq!(f[0]["kind"], "http_421");
    assert_eq!(f[0]["status"], 421);
    assert_eq!(f[0]["sni"], "a.example.test");
    assert_eq!(f[0]["authority"], "b.example.test:7443");
    assert_eq!(
        f[0]["causes"],
        serde_json::json!(["sni_mismatch", "connection_reuse"])
    );
    assert_eq!(f[0]["server"], "127.0.0.1:7443");
    assert_eq!(f[0]["retry_connection"], 3);
    assert_eq!(f[0]["retry_status"], 200);
    // The retry's connection by uid: connection 3's.
    assert_eq!(f[0]["retry_connection_uid"], connections.rows[2]["uid"]);
    assert_eq!(f[0]["request_uid"], requests.rows[1]["uid"]);
    assert_eq!(
        column(&requests, "status"),
        [&Value::from(200), &Value::from(421), &Value::from(200)]
    );
    assert!(connections
        .rows
        .iter()
        .all(|c| c["tls_version"] == "TLS 1.3"
            && c["decrypted"] == true
            && c["protocol"] == "http2"));
}

#[test]
fn reverse_proxy_tables_match_the_report() {
    let [connections, _requests, findings] = check_against_json(
        "reverse-proxy-421.pcapng",
        "reverse-proxy-421.keys",
        "proxy",
    );
    assert_eq!(connections.rows.len(), 3);
    let f = &findings.rows[..];
    assert_eq!(f.len(), 2);
    assert!(f
        .iter()
        .all(|f| f["kind"] == "http_421" && f["status"] == 421));
    // The client leg: relayed from the upstream leg, which the other finding is about.
    assert_eq!(
        f[0]["causes"],
        serde_json::json!(["upstream_sni_mismatch", "upstream_421"])
    );
    assert_eq!(f[0]["authority"], "a.example.test:8443");
    assert_eq!(f[0]["upstream_connection"], 2);
    assert_eq!(f[0]["upstream_sni"], "b.example.test");
    assert_eq!(f[0]["upstream_connection_uid"], f[1]["connection_uid"]);
    assert_eq!(f[1]["causes"], serde_json::json!(["sni_mismatch"]));
    assert_eq!(f[1]["sni"], "b.example.test");
    assert_eq!(f[1]["authority"], "a.example.test");
    assert_eq!(f[1]["server"], "127.0.0.1:9443");
    assert_eq!(f[1]["downstream_connection_uid"], f[0]["connection_uid"]);
}

#[test]
fn tunnelled_requests_are_rows_too() {
    let [connections, requests, _] =
        check_against_json("connect-tunnel.pcap", "connect-tunnel.keys", "tunnel");
    let tunnelled: Vec<_> = requests
        .rows
        .iter()
        .filter(|r| r["in_tunnel"] == true)
        .collect();
    assert!(!tunnelled.is_empty());
    for r in tunnelled {
        assert!(r["uid"].as_str().unwrap().contains("/t"), "{}", r["uid"]);
    }
    // HTTP/1 CONNECT to the proxy, then HTTP/2 over TLS inside the tunnel.
    let c = &connections.rows[0];
    assert_eq!(c["protocol"], "http1");
    assert!(c["tunnel_requests"].as_i64().unwrap() > 0);
    assert_eq!(c["tunnel_protocol"], "http2");
    assert_eq!(c["tunnel_sni"], "a.example.test");
}

#[test]
fn a_capture_without_findings_gives_an_empty_findings_table() {
    let dir = out_dir("empty");
    let nested = dir.join("a/b");
    let (capture, keys) = (sample("h2-tls13.pcap"), sample("h2-tls13.keys"));
    let out = run(&[
        "analyze",
        &capture,
        "--keylog",
        &keys,
        "-f",
        "parquet",
        "-o",
        nested.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let findings = read_table(&nested, "findings");
    assert!(findings.rows.is_empty());
    assert!(findings.columns.iter().any(|c| c == "causes"));
    assert!(!read_table(&nested, "connections").rows.is_empty());
    // Written again: the files are replaced.
    let out = run(&[
        "analyze",
        &capture,
        "-f",
        "parquet",
        "-o",
        nested.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn parquet_needs_an_output_directory() {
    let capture = sample("chromium-coalesce-421.pcapng");
    let out = run(&["analyze", &capture, "-f", "parquet"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("misdirect: "), "{err}");
    assert!(err.contains("-o DIR"), "{err}");

    // A file where the directory should be.
    let dir = out_dir("file");
    std::fs::write(&dir, b"not a directory").unwrap();
    let out = run(&[
        "analyze",
        &capture,
        "-f",
        "parquet",
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(dir.to_str().unwrap()), "{err}");
    let _ = std::fs::remove_file(&dir);
}

/// The three tables replace an earlier run's together: when one cannot be written, the
/// directory keeps the earlier run's, and no hidden partial file stays behind.
#[test]
fn a_failed_write_leaves_the_earlier_tables() {
    let dir = out_dir("replace");
    let d = dir.to_str().unwrap();
    let first = run(&["analyze", &sample("ftp-421.pcap"), "-f", "parquet", "-o", d]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let tables = ["connections", "requests", "findings"];
    let before: Vec<Vec<u8>> = tables
        .iter()
        .map(|t| std::fs::read(dir.join(format!("{t}.parquet"))).unwrap())
        .collect();
    // The last table's hidden name taken by a directory: it cannot be written.
    std::fs::create_dir(dir.join(".findings.parquet.partial")).unwrap();
    let capture = sample("chromium-coalesce-421.pcapng");
    let second = run(&["analyze", &capture, "-f", "parquet", "-o", d]);
    assert_eq!(second.status.code(), Some(2));
    assert!(
        stderr(&second).contains("findings.parquet"),
        "{}",
        stderr(&second)
    );
    for (t, bytes) in tables.iter().zip(&before) {
        let now = std::fs::read(dir.join(format!("{t}.parquet"))).unwrap();
        assert!(now == *bytes, "{t}.parquet was replaced");
    }
    for t in ["connections", "requests"] {
        assert!(!dir.join(format!(".{t}.parquet.partial")).exists(), "{t}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
