#!/usr/bin/env bash
# misdirect against tshark on a synthesized capture (issue 7's benchmark).
#
#   benches/compare.sh [SIZE [TSHARK_SIZE]]
#
# SIZE (default 1G; K, M, G are powers of 1024) is the capture misdirect reads. tshark reads
# about 20-40 MB/s, so it may be given a smaller capture of the same traffic mix
# (TSHARK_SIZE, default SIZE); its throughput is then per MB of its own file and the ratio
# compares throughputs, not times. Captures go to $BENCH_DIR (default
# ${TMPDIR:-/tmp}/misdirect-bench) and are reused when present.
#
# Checks, and exits 1 when one fails:
#   - misdirect on the SIZE capture (with its key log) finds what the synthesizer says it
#     wrote: connections, TLS connections and their SNIs, requests, 421s; no anomaly;
#   - its report is byte-identical with one thread and with THREADS (default: all cores);
#   - misdirect and tshark agree on the TSHARK_SIZE capture: connections, SNIs, 421s.
# Then prints one row per run: seconds, MB/s (MB = 10^6 bytes), peak RSS, misdirect's
# throughput over tshark's in the same mode (without keys, with the key log), and THREADS
# threads over one.
#
# CONCURRENCY (default: the synthesizer's, 64) sets how many connections the SIZE capture
# keeps open at once; the TSHARK_SIZE capture keeps the default. Every connection runs to
# its end, so CONCURRENCY=100000 makes a capture of about 8 GB whatever SIZE is:
# `CONCURRENCY=100000 benches/compare.sh 1G 200M` measures memory at 100k open connections.
#
# FORMAT=pcapng runs everything on the same traffic written as pcapng (editcap -F pcapng,
# next to the pcap; the synthesizer writes pcap).
#
# Needs: cargo, tshark, jq, /usr/bin/time (GNU); editcap for FORMAT=pcapng.
set -euo pipefail

SIZE=${1:-1G}
TSHARK_SIZE=${2:-$SIZE}
SEED=${SEED:-1}
CONCURRENCY=${CONCURRENCY:-}
THREADS=${THREADS:-$(nproc)}
FORMAT=${FORMAT:-pcap}
[[ $FORMAT == pcap || $FORMAT == pcapng ]] || { echo "compare.sh: FORMAT is pcap or pcapng" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/misdirect-bench}
mkdir -p "$BENCH_DIR"

for tool in tshark jq /usr/bin/time $([[ $FORMAT == pcapng ]] && echo editcap); do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool is needed" >&2; exit 2; }
done

echo "== building (release)" >&2
(cd "$ROOT" && cargo build --release --quiet --bin misdirect --example synth)
MISDIRECT=$ROOT/target/release/misdirect
SYNTH=$ROOT/target/release/examples/synth

# synth SIZE [CONCURRENCY]: prints the capture's base path, synthesizing it unless present.
synth() {
    local base=$BENCH_DIR/synth-$1-seed$SEED${2:+-c$2}
    if [[ ! -s $base.json || ! -s $base.pcap || ! -s $base.keys ]]; then
        echo "== synthesizing $1 into $base.pcap" >&2
        "$SYNTH" --size "$1" --seed "$SEED" ${2:+--concurrency "$2"} \
            --out "$base.pcap" --keylog "$base.keys" >"$base.json.tmp"
        mv "$base.json.tmp" "$base.json"
    fi
    if [[ $FORMAT == pcapng && ( ! -s $base.pcapng || $base.pcapng -ot $base.pcap ) ]]; then
        echo "== writing $base.pcap as pcapng" >&2
        editcap -F pcapng "$base.pcap" "$base.pcapng.tmp"
        mv "$base.pcapng.tmp" "$base.pcapng"
    fi
    echo "$base"
}

BIG=$(synth "$SIZE" "$CONCURRENCY")
SMALL=$BIG
[[ $TSHARK_SIZE != "$SIZE" || -n $CONCURRENCY ]] && SMALL=$(synth "$TSHARK_SIZE")

fail=0
check() { # check WHAT EXPECTED ACTUAL
    if [[ $2 == "$3" ]]; then
        printf '  ok    %-34s %s\n' "$1" "$2" >&2
    else
        printf '  FAIL  %-34s expected %s, got %s\n' "$1" "$2" "$3" >&2
        fail=1
    fi
}

# timed NAME FILE CMD...: runs CMD under /usr/bin/time -v; appends a row to $ROWS.
ROWS=$BENCH_DIR/rows.$$
: >"$ROWS"
trap 'rm -f "$ROWS" "$BENCH_DIR"/time.$$ "$BENCH_DIR"/*.$$.json "$BENCH_DIR"/tshark.$$.tsv' EXIT
timed() {
    local name=$1 file=$2
    shift 2
    echo "== $name" >&2
    # The file read once first, so that every run reads it from the page cache (tshark's
    # gigabytes of memory push part of it out, and the next run read that from disk).
    cat "$file" >/dev/null
    # Wall time from the clock (GNU time's is in centiseconds), peak RSS from GNU time.
    local start end secs rss_kb bytes
    start=$(date +%s.%N)
    /usr/bin/time -v -o "$BENCH_DIR/time.$$" "$@"
    end=$(date +%s.%N)
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$BENCH_DIR/time.$$")
    bytes=$(stat -L -c %s "$file")
    echo "$name $bytes $secs $rss_kb" >>"$ROWS"
}

# misdirect's facts as "connections tls snis 421s requests", SNIs as "name=count,...".
misdirect_facts() { # REPORT.json
    jq -r '[.summary.tcp_connections, .summary.tls.connections,
            ([.connections[] | .tls.sni // empty] | group_by(.) | map("\(.[0])=\(length)") | join(",")),
            ([.connections[].requests[] | select(.status == 421)] | length),
            ([.connections[].requests[]] | length)] | @tsv' "$1"
}

echo "== checking misdirect against the synthesizer on $(basename "$BIG").$FORMAT" >&2
"$MISDIRECT" analyze -q -f json -o "$BENCH_DIR/keyed.$$.json" --keylog "$BIG.keys" "$BIG.$FORMAT"
IFS=$'\t' read -r conns tls snis n421 reqs < <(misdirect_facts "$BENCH_DIR/keyed.$$.json")
exp=$BIG.json
check "connections" "$(jq .connections "$exp")" "$conns"
check "TLS connections" "$(jq .tls_connections "$exp")" "$tls"
check "TLS decrypted" "$(jq .tls_connections "$exp")" "$(jq .summary.tls.decrypted "$BENCH_DIR/keyed.$$.json")"
check "SNIs" "$(jq -r '.snis | to_entries | map("\(.key)=\(.value)") | join(",")' "$exp")" "$snis"
check "requests" "$(jq .requests "$exp")" "$reqs"
check "421s" "$(jq .http_421 "$exp")" "$n421"
check "anomalies" "{}" "$(jq -c .anomalies "$BENCH_DIR/keyed.$$.json")"
"$MISDIRECT" analyze -q -f json -o "$BENCH_DIR/keyed1.$$.json" --threads 1 --keylog "$BIG.keys" "$BIG.$FORMAT"
"$MISDIRECT" analyze -q -f json -o "$BENCH_DIR/keyedN.$$.json" --threads "$THREADS" --keylog "$BIG.keys" "$BIG.$FORMAT"
check "report, 1 vs $THREADS threads" "identical" \
    "$(cmp -s "$BENCH_DIR/keyed1.$$.json" "$BENCH_DIR/keyedN.$$.json" && echo identical || echo different)"

echo "== checking misdirect against tshark on $(basename "$SMALL").$FORMAT" >&2
"$MISDIRECT" analyze -q -f json -o "$BENCH_DIR/small.$$.json" --keylog "$SMALL.keys" "$SMALL.$FORMAT"
IFS=$'\t' read -r m_conns _ m_snis m_421 _ < <(misdirect_facts "$BENCH_DIR/small.$$.json")
# h2c prior knowledge is on port 8080; out-of-order segments need tshark's OOO reassembly.
TSHARK_ARGS=(-n -o tcp.reassemble_out_of_order:TRUE -d tcp.port==8080,http2
    -T fields -e tcp.stream -e tls.handshake.extensions_server_name
    -e http2.headers.status -e http.response.code)
tshark -r "$SMALL.$FORMAT" -o "tls.keylog_file:$SMALL.keys" "${TSHARK_ARGS[@]}" 2>/dev/null \
    >"$BENCH_DIR/tshark.$$.tsv"
t_conns=$(cut -f1 "$BENCH_DIR/tshark.$$.tsv" | sort -u | grep -c .)
# One SNI per stream (a retransmitted ClientHello is not a second connection).
t_snis=$(awk -F'\t' '$2 != "" {print $1 "\t" $2}' "$BENCH_DIR/tshark.$$.tsv" | sort -u | cut -f2 |
    sort | uniq -c | awk '{print $2 "=" $1}' | paste -sd, -)
t_421=$(awk -F'\t' '{ n = split($3 "," $4, s, ","); for (i = 1; i <= n; i++) if (s[i] == "421") c++ }
    END { print c + 0 }' "$BENCH_DIR/tshark.$$.tsv")
check "connections (tshark)" "$t_conns" "$m_conns"
check "SNIs (tshark)" "$t_snis" "$m_snis"
check "421s (tshark, with keys)" "$t_421" "$m_421"

# The timed runs: misdirect on SIZE, tshark on TSHARK_SIZE, each without and with keys.
for t in 1 "$THREADS"; do
    timed "misdirect/$t" "$BIG.$FORMAT" \
        "$MISDIRECT" analyze -q -f json -o /dev/null --threads "$t" "$BIG.$FORMAT"
    timed "misdirect+keys/$t" "$BIG.$FORMAT" \
        "$MISDIRECT" analyze -q -f json -o /dev/null --threads "$t" --keylog "$BIG.keys" "$BIG.$FORMAT"
done
timed "tshark" "$SMALL.$FORMAT" \
    sh -c 'tshark -r "$0" "${@}" >/dev/null 2>&1' "$SMALL.$FORMAT" "${TSHARK_ARGS[@]}"
timed "tshark+keys" "$SMALL.$FORMAT" \
    sh -c 'tshark -r "$0" "${@}" >/dev/null 2>&1' "$SMALL.$FORMAT" -o "tls.keylog_file:$SMALL.keys" "${TSHARK_ARGS[@]}"

echo
echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "misdirect: $(basename "$BIG").$FORMAT; tshark: $(basename "$SMALL").$FORMAT (MB = 10^6 bytes)"
echo "misdirect/N: N threads"
awk '
    { name[NR] = $1; bytes[NR] = $2; secs[NR] = $3; rss[NR] = $4
      mbs[$1] = ($3 > 0) ? $2 / 1e6 / $3 : 0 }
    END {
        printf "%-18s %10s %9s %10s %13s %10s %10s\n", "run", "file MB", "seconds", "MB/s", "peak RSS MB", "x tshark", "x 1 thread"
        for (i = 1; i <= NR; i++) {
            n = name[i]; base = n; sub(/^misdirect/, "tshark", base); sub(/\/.*$/, "", base)
            one = n; sub(/\/.*$/, "/1", one)
            ratio = (n ~ /^misdirect/ && mbs[base] > 0) ? sprintf("%.1f", mbs[n] / mbs[base]) : "-"
            speedup = (n ~ /^misdirect/ && mbs[one] > 0) ? sprintf("%.2f", mbs[n] / mbs[one]) : "-"
            printf "%-18s %10.1f %9.3f %10.1f %13.1f %10s %10s\n", n, bytes[i] / 1e6, secs[i], mbs[n], rss[i] * 1024 / 1e6, ratio, speedup
        }
    }' "$ROWS"

if [[ $fail != 0 ]]; then
    echo "compare.sh: counts disagree (see FAIL above)" >&2
    exit 1
fi
