//! Issue 10, misdirect as the map step of a distributed engine: the Spark job of
//! `contrib/spark/misdirect_spark.py` over a directory of sample captures gives exactly the
//! totals of one `misdirect analyze` of the same directory, and NDJSON of several runs
//! concatenated has no id collisions (docs/scale-out.md).
//!
//! The Spark test needs `pyspark` importable by `python3` (or `$MISDIRECT_PYTHON`) and Java;
//! without them it says it skipped, unless `MISDIRECT_REQUIRE_SPARK` is set (CI), which turns a
//! missing pyspark into a failure.

mod common;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_misdirect");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory, removed when dropped (also when the test fails).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("misdirect-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Python that has pyspark, and the `spark-submit` shipped in its pyspark package.
struct Spark {
    python: PathBuf,
    submit: PathBuf,
}

fn spark() -> Option<Spark> {
    let python = std::env::var("MISDIRECT_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args([
            "-c",
            "import os, sys, pyspark; print(sys.executable); \
             print(os.path.join(os.path.dirname(pyspark.__file__), 'bin', 'spark-submit'))",
        ])
        .output();
    let java = std::env::var_os("JAVA_HOME").is_some()
        || Command::new("java")
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success());
    let found = match probe {
        Ok(o) if o.status.success() && java => {
            let text = String::from_utf8(o.stdout).unwrap();
            let mut lines = text.lines();
            Some(Spark {
                python: lines.next().unwrap().into(),
                submit: lines.next().unwrap().into(),
            })
        }
        _ => None,
    };
    if found.is_none() {
        assert!(
            std::env::var_os("MISDIRECT_REQUIRE_SPARK").is_none(),
            "pyspark and Java are required (MISDIRECT_REQUIRE_SPARK is set) but `{python} -c \
             'import pyspark'` fails or there is no java"
        );
        eprintln!(
            "SKIPPED: the Spark job needs pyspark for {python} (pip install pyspark) and Java; \
             CI installs them"
        );
    }
    found
}

/// Runs a command to its end, killing it after `limit` (a stuck JVM must not hang the suite).
fn run_with_deadline(cmd: &mut Command, limit: Duration) -> Output {
    let scratch = std::env::temp_dir().join(format!("misdirect-spark-log-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let (out_path, err_path) = (scratch.join("stdout"), scratch.join("stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after {limit:?}; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    };
    let _ = std::fs::remove_dir_all(&scratch);
    out
}

/// `--keylog K` for every key log of the samples.
fn keylog_args() -> Vec<String> {
    let mut keys: Vec<PathBuf> = std::fs::read_dir(common::samples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "keys"))
        .collect();
    keys.sort();
    assert!(!keys.is_empty());
    keys.iter()
        .flat_map(|k| ["--keylog".to_string(), k.display().to_string()])
        .collect()
}

fn misdirect(args: &[String]) -> Output {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "misdirect {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Splits a classic pcap file into `n` files of consecutive packets, as a capture tool
/// rotating its output would.
fn split_pcap(bytes: &[u8], n: usize) -> Vec<Vec<u8>> {
    let (header, mut rest) = bytes.split_at(24);
    let little = match header[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("not a pcap file"),
    };
    let mut records = Vec::new();
    while !rest.is_empty() {
        let len: [u8; 4] = rest[8..12].try_into().unwrap();
        let caplen = if little {
            u32::from_le_bytes(len)
        } else {
            u32::from_be_bytes(len)
        } as usize;
        let (record, tail) = rest.split_at(16 + caplen);
        records.push(record);
        rest = tail;
    }
    assert!(records.len() >= n);
    records
        .chunks(records.len().div_ceil(n))
        .map(|chunk| {
            let mut file = header.to_vec();
            chunk.iter().for_each(|r| file.extend_from_slice(r));
            file
        })
        .collect()
}

/// The Spark job and one `misdirect analyze` of the same directory agree on every total.
///
/// The directory holds every sample three times: `copy0_*` and `copy1_*` directly inside
/// (one partition each), `copy2_<sample>/` subdirectories (a one-file group each), and
/// `rotated/`: a 421 sample cut into three rotated files, named against their time order and
/// one a level deeper, which must be one partition and be seen whole.
#[test]
fn spark_job_totals_equal_a_single_run() {
    let Some(spark) = spark() else { return };
    let scratch = Scratch::new("spark");
    let captures = scratch.0.join("captures");
    std::fs::create_dir_all(&captures).unwrap();
    let samples = common::sample_captures();
    for file in &samples {
        let name = file.file_name().unwrap().to_str().unwrap();
        std::fs::copy(file, captures.join(format!("copy0_{name}"))).unwrap();
        std::fs::copy(file, captures.join(format!("copy1_{name}"))).unwrap();
        let group = captures.join(format!("copy2_{name}.d"));
        std::fs::create_dir_all(&group).unwrap();
        std::fs::copy(file, group.join(name)).unwrap();
    }
    let apache = common::samples_dir().join("apache-421-sni-mismatch.pcap");
    let rotated = captures.join("rotated");
    std::fs::create_dir_all(rotated.join("deeper")).unwrap();
    let pieces = split_pcap(&std::fs::read(&apache).unwrap(), 3);
    let piece_paths = [
        rotated.join("c.pcap"),
        rotated.join("b.pcap"),
        rotated.join("deeper/a.pcap"),
    ];
    for (path, bytes) in piece_paths.iter().zip(&pieces) {
        std::fs::write(path, bytes).unwrap();
    }
    let keylogs = keylog_args();

    // The partitioning rule: a file directly inside the directory is a partition, and a
    // subdirectory is one, however deep its files.
    let listed = misdirect(&["partitions".into(), captures.display().to_string()]);
    let partitions: Vec<Vec<String>> = String::from_utf8(listed.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(partitions.len(), 3 * samples.len() + 1, "{partitions:?}");
    let rotated_group: Vec<&Vec<String>> = partitions
        .iter()
        .filter(|p| p.iter().any(|f| f.contains("/rotated/")))
        .collect();
    assert_eq!(rotated_group.len(), 1, "{partitions:?}");
    assert_eq!(rotated_group[0].len(), 3, "{partitions:?}");

    // The rotated files, read as one group, are the whole capture again.
    let report = |inputs: &[String]| -> Value {
        let mut args: Vec<String> = ["analyze", "-q", "-f", "json"].map(String::from).into();
        args.extend(keylogs.iter().cloned());
        args.extend(inputs.iter().cloned());
        serde_json::from_slice(&misdirect(&args).stdout).unwrap()
    };
    let whole = report(&[apache.display().to_string()]);
    let group = report(rotated_group[0]);
    assert_eq!(
        group["summary"]["findings"], whole["summary"]["findings"],
        "the rotated group should read as the capture it was cut from"
    );
    assert_eq!(group["connections"].as_array().unwrap().len(), 2);

    // One process over the whole directory.
    let started = Instant::now();
    let single = report(&[captures.display().to_string()]);
    let single_time = started.elapsed();
    let expected = &single["summary"]["findings"];

    // The Spark job, as on a cluster: the binary shipped with --files and named bare.
    let out_dir = scratch.0.join("out");
    let totals_file = scratch.0.join("totals.json");
    let started = Instant::now();
    let mut cmd = Command::new(&spark.submit);
    cmd.env("PYSPARK_PYTHON", &spark.python)
        .env("PYSPARK_DRIVER_PYTHON", &spark.python)
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .args(["--master", "local[2]"])
        .args(["--conf", "spark.ui.enabled=false"])
        .args(["--conf", "spark.ui.showConsoleProgress=false"])
        .args(["--conf", "spark.log.level=WARN"])
        .args(["--conf", "spark.default.parallelism=2"])
        .args(["--conf", "spark.sql.shuffle.partitions=2"])
        .arg("--files")
        .arg(BIN)
        .arg(repo().join("contrib/spark/misdirect_spark.py"))
        .args(["--misdirect", "misdirect"])
        .args(&keylogs)
        .arg("--output")
        .arg(&out_dir)
        .arg("--totals")
        .arg(&totals_file)
        .arg(&captures);
    let job = run_with_deadline(&mut cmd, Duration::from_secs(300));
    let spark_time = started.elapsed();
    assert!(
        job.status.success(),
        "the Spark job failed ({}):\n{}\n{}",
        job.status,
        String::from_utf8_lossy(&job.stdout),
        String::from_utf8_lossy(&job.stderr)
    );
    let totals: Value =
        serde_json::from_str(&std::fs::read_to_string(&totals_file).unwrap()).unwrap();
    let last_line = String::from_utf8_lossy(&job.stdout)
        .lines()
        .last()
        .map(str::to_string)
        .unwrap_or_default();
    assert_eq!(
        serde_json::from_str::<Value>(&last_line).ok().as_ref(),
        Some(&totals),
        "the totals are the last line of stdout"
    );
    eprintln!(
        "{} partitions, {} connections; single run {single_time:.2?}, Spark job \
         {spark_time:.2?}; totals {totals}",
        partitions.len(),
        single["summary"]["tcp_connections"]
    );
    assert_eq!(
        &totals, expected,
        "Spark job vs misdirect analyze of the directory"
    );

    // Not trivially equal: 421s of each copy, for several causes, on several servers.
    let http = totals["by_kind"]["http_421"].as_u64().unwrap_or(0);
    assert!(http >= 3 * 5, "{totals}");
    assert!(
        totals["total"].as_u64().unwrap() > http,
        "FTP/SMTP 421s too: {totals}"
    );
    assert!(totals["http_421"]["by_cause"].as_object().unwrap().len() >= 3);
    assert!(totals["http_421"]["by_server"].as_object().unwrap().len() >= 2);
    assert!(
        totals["http_421"]["by_authority"]
            .as_object()
            .unwrap()
            .len()
            >= 2
    );
    let by_cause_sum: u64 = totals["http_421"]["by_cause"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(by_cause_sum >= http);

    // --output: every finding record once, loadable as NDJSON, with distinct uids.
    let mut findings = Vec::new();
    let mut tables = BTreeSet::new();
    for entry in std::fs::read_dir(&out_dir).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_dir() {
            continue;
        }
        let table = entry.file_name().to_str().unwrap().to_string();
        tables.insert(table.clone());
        if table != "table=findings" {
            continue;
        }
        for part in std::fs::read_dir(entry.path()).unwrap() {
            let part = part.unwrap().path();
            if part.extension().is_some_and(|e| e == "txt") {
                let text = std::fs::read_to_string(&part).unwrap();
                findings.extend(
                    text.lines()
                        .map(|l| serde_json::from_str::<Value>(l).unwrap()),
                );
            }
        }
    }
    let want: BTreeSet<String> = ["connections", "findings", "requests", "summaries"]
        .iter()
        .map(|t| format!("table={t}"))
        .collect();
    assert_eq!(tables, want);
    assert_eq!(findings.len() as u64, totals["total"].as_u64().unwrap());
    let uids: BTreeSet<&str> = findings
        .iter()
        .map(|f| f["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids.len(), findings.len(), "finding uids collide");
}

/// NDJSON of two runs, one per copy of the same captures, concatenated: no `uid` appears
/// twice, every record says where it came from, and findings point at connections present.
#[test]
fn ndjson_of_several_runs_concatenates_without_id_collisions() {
    let scratch = Scratch::new("ndjson-merge");
    let samples = [
        "apache-421-sni-mismatch.pcap",
        "chromium-coalesce-421.pcapng",
        "reverse-proxy-421.pcapng",
        "http1-keepalive-reuse.pcap",
    ];
    let mut lines = Vec::new();
    let mut copies = BTreeSet::new();
    for copy in 0..2 {
        let dir = scratch.0.join(format!("run{copy}"));
        std::fs::create_dir_all(&dir).unwrap();
        for name in samples {
            let to = dir.join(format!("copy{copy}_{name}"));
            std::fs::copy(common::samples_dir().join(name), &to).unwrap();
            copies.insert(to.display().to_string());
        }
        let mut args: Vec<String> = ["analyze", "-q", "-f", "ndjson"].map(String::from).into();
        args.extend(keylog_args());
        args.push(dir.display().to_string());
        let out = misdirect(&args);
        lines.extend(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(String::from),
        );
    }

    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut per_kind: BTreeMap<String, usize> = BTreeMap::new();
    let mut finding_connections = Vec::new();
    for line in &lines {
        let r: Value = serde_json::from_str(line).unwrap();
        let kind = r["record"].as_str().unwrap().to_string();
        if !matches!(kind.as_str(), "connection" | "request" | "finding") {
            continue;
        }
        *per_kind.entry(kind.clone()).or_default() += 1;
        let uid = r["uid"]
            .as_str()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| panic!("{kind} record without a uid: {line}"));
        if let Some(first) = seen.insert(uid.to_string(), line.clone()) {
            panic!("uid {uid} appears twice:\n{first}\n{line}");
        }
        let file = r["source"]["file"]
            .as_str()
            .unwrap_or_else(|| panic!("{kind} record without source.file: {line}"));
        assert!(
            copies
                .iter()
                .any(|c| c.ends_with(file) || file.ends_with(c.as_str())),
            "source.file {file} is none of the inputs {copies:?}"
        );
        assert!(r["source"]["packet"].is_u64(), "{line}");
        if kind == "finding" {
            let conn = r["connection_uid"].as_str().unwrap().to_string();
            finding_connections.push(conn);
        }
    }
    for conn in &finding_connections {
        let owner: Value = serde_json::from_str(&seen[conn]).unwrap();
        assert_eq!(owner["record"], "connection", "connection_uid {conn}");
    }
    // Both runs contributed connections, requests and 421 findings.
    assert!(per_kind["finding"] >= 2 * 4, "{per_kind:?}");
    assert!(per_kind["request"] > per_kind["finding"], "{per_kind:?}");
    assert!(per_kind["connection"] >= 2 * 10, "{per_kind:?}");
}
