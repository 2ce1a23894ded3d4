#!/usr/bin/env python3
"""misdirect as the map step of Apache Spark.

    spark-submit [SPARK OPTIONS] misdirect_spark.py --misdirect BIN [--keylog F ...]
                 [--output OUT_DIR] INPUT...
    python3 misdirect_spark.py [--master local[2]] --misdirect BIN ... INPUT...

The driver asks `misdirect partitions INPUT...` how the inputs split into independent
partitions (a file, or a subdirectory of rotated files of one link), runs one Spark task per
partition, and each task runs `misdirect analyze -q -f ndjson --threads 1 FILES...`. The
driver prints the totals of the findings as one JSON object, the last line of stdout (and
into --totals FILE), in exactly the shape of `summary.findings` in `misdirect analyze -f json`
of the same inputs:

    {"total": N, "by_kind": {...}, "http_421": {"by_cause": {...}, "by_server": {...},
     "by_authority": {...}}}

With --output, every connection, request, finding and per-partition summary record is also
written, as misdirect printed it, to OUT_DIR/table=connections|requests|findings|summaries/
(NDJSON text files; load them with spark.read.json("OUT_DIR/table=findings")).

Files named by --misdirect and --keylog are looked up on each node as: a path that exists
there, else a file of that name shipped with `spark-submit --files`, else (the binary only) a
program on PATH. Capture files must be readable at the same path by the driver and every
executor (a shared mount). See docs/scale-out.md.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

# Tables of --output, by the NDJSON `record` field.
TABLES = {
    "connection": "connections",
    "request": "requests",
    "finding": "findings",
    "summary": "summaries",
}


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="misdirect_spark.py",
        description="Run misdirect on every partition of the inputs as Spark tasks and "
        "print the totals of the findings as JSON.",
    )
    p.add_argument(
        "--misdirect",
        default="misdirect",
        help="the misdirect binary: a path present on every node, or the name of a file "
        "shipped with spark-submit --files, or a program on PATH (default: misdirect)",
    )
    p.add_argument(
        "--keylog",
        action="append",
        default=[],
        metavar="FILE",
        help="TLS key log given to every task (repeatable); a path present on every node or "
        "the name of a file shipped with --files",
    )
    p.add_argument(
        "--output",
        metavar="OUT_DIR",
        help="also write the records to OUT_DIR/table=<connections|requests|findings|"
        "summaries>/ as NDJSON (any Hadoop URI; must not exist)",
    )
    p.add_argument(
        "--totals",
        metavar="FILE",
        help="also write the totals to FILE (on the driver)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help="--threads of each misdirect analyze (default 1: one task, one core; raise it "
        "together with spark.task.cpus)",
    )
    p.add_argument(
        "--analyze-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for every misdirect analyze, e.g. --analyze-arg=--vxlan-port=8472 "
        "(repeatable)",
    )
    p.add_argument(
        "--master",
        help="Spark master when run with python3 (default local[2]); under spark-submit, "
        "use its --master",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="capture files and directories")
    return p.parse_args(argv)


def locate(name, program=False):
    """The local path of a file named on the command line, on the node this runs on."""
    if os.path.exists(name):
        return os.path.abspath(name)
    try:
        from pyspark import SparkFiles

        shipped = SparkFiles.get(os.path.basename(name))
        if os.path.exists(shipped):
            if program and not os.access(shipped, os.X_OK):
                os.chmod(shipped, os.stat(shipped).st_mode | 0o755)
            return shipped
    except Exception:  # no SparkContext or no SparkFiles root on this node
        pass
    if program:
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError(
        f"{name}: not found on {os.uname().nodename} (neither a path there nor a file "
        "shipped with spark-submit --files" + (", nor on PATH)" if program else ")")
    )


def partitions(binary, inputs):
    """`misdirect partitions INPUT...`: one list of files per line."""
    out = subprocess.run(
        [binary, "partitions", *inputs], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        sys.exit(f"misdirect partitions failed (exit {out.returncode}): {out.stderr.strip()}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def analyze_task(binary_name, keylogs, threads, extra, tables):
    """A function for mapPartitions: runs misdirect analyze on each partition's files and
    yields (table, line) for the NDJSON records whose table is wanted."""

    def run(partition_files):
        binary = locate(binary_name, program=True)
        keys = [a for k in keylogs for a in ("--keylog", locate(k))]
        for files in partition_files:
            cmd = [binary, "analyze", "-q", "-f", "ndjson", "--threads", str(threads)]
            cmd += keys + list(extra) + ["--", *files]
            with tempfile.TemporaryFile() as err:
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
                for raw in proc.stdout:
                    line = raw.decode("utf-8").rstrip("\n")
                    if not line:
                        continue
                    table = TABLES.get(json.loads(line).get("record"))
                    if table in tables:
                        yield table, line
                proc.stdout.close()
                code = proc.wait()
                if code != 0:
                    # No --fail-on is passed, so only 0 is success (1 would mean --fail-on).
                    err.seek(0)
                    stderr = err.read().decode("utf-8", "replace").strip()
                    raise RuntimeError(
                        f"misdirect analyze exited {code} on {files}: {stderr}"
                    )

    return run


def finding_counts(line):
    """The (section, key) pairs one finding record adds 1 to."""
    f = json.loads(line)
    kind = f["kind"]
    yield ("total", "")
    yield ("by_kind", kind)
    if kind == "http_421":
        for cause in sorted(set(f["causes"])):
            yield ("by_cause", cause)
        yield ("by_server", f["server"])
        yield ("by_authority", f["authority"] or "")


def totals(findings_lines):
    """`summary.findings` from an RDD of finding records (NDJSON lines)."""
    counts = (
        findings_lines.flatMap(finding_counts)
        .map(lambda key: (key, 1))
        .reduceByKey(lambda a, b: a + b)
        .collect()
    )
    out = {
        "total": 0,
        "by_kind": {},
        "http_421": {"by_cause": {}, "by_server": {}, "by_authority": {}},
    }
    for (section, key), n in counts:
        if section == "total":
            out["total"] = n
        elif section == "by_kind":
            out["by_kind"][key] = n
        else:
            out["http_421"][section][key] = n
    return out


def spark_session(args):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("misdirect")
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        # Run with python3, not spark-submit: a lean local Spark unless told otherwise
        # (under spark-submit its --master and --conf decide).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = (
            builder.master(args.master or "local[2]")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.default.parallelism", "2")
        )
    elif args.master:
        sys.exit("--master is for python3 runs; under spark-submit use its --master")
    spark = builder.getOrCreate()
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        spark.sparkContext.setLogLevel("WARN")
    return spark


def absolute_if_present(name):
    return os.path.abspath(name) if os.path.exists(name) else name


def hadoop_exists(spark, path):
    jvm = spark.sparkContext._jvm
    p = jvm.org.apache.hadoop.fs.Path(path)
    return p.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(p)


def main(argv):
    args = parse_args(argv)
    spark = spark_session(args)
    sc = spark.sparkContext
    try:
        # Paths the driver sees are made absolute, so that executors (whose working
        # directory differs on a cluster) find them on a shared mount; other names are looked
        # up on each node (--files, PATH).
        binary = absolute_if_present(args.misdirect)
        keylogs = [absolute_if_present(k) for k in args.keylog]
        inputs = [os.path.abspath(i) for i in args.inputs]
        parts = partitions(locate(binary, program=True), inputs)
        rdd = sc.parallelize(parts, max(1, len(parts)))
        if args.output is None:
            run = analyze_task(binary, keylogs, args.threads, args.analyze_arg, {"findings"})
            result = totals(rdd.mapPartitions(run).map(lambda t: t[1]))
        else:
            tables = set(TABLES.values())
            run = analyze_task(binary, keylogs, args.threads, args.analyze_arg, tables)
            # One pass of misdirect writes every record; the (few) findings are read back.
            records = spark.createDataFrame(rdd.mapPartitions(run), "table string, line string")
            records.write.partitionBy("table").text(args.output)
            path = args.output.rstrip("/") + "/table=findings"
            if hadoop_exists(spark, path):
                result = totals(spark.read.text(path).rdd.map(lambda r: r.value))
            else:
                result = totals(sc.emptyRDD())
        text = json.dumps(result, sort_keys=True)
        if args.totals:
            with open(args.totals, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        # Last, on its own line: spark-submit mixes the driver's stderr into its stdout.
        print(text, flush=True)
    finally:
        spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
