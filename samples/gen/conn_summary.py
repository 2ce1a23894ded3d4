#!/usr/bin/env python3
"""Per-TCP-connection summary of a capture, joined with an Apache access log.

Usage: conn_summary.py CAPTURE PORT ACCESS_LOG [--oneline]

The access log must use the format written by generate.sh
(client=ADDR:PORT sni=... host=... proto=... "REQUEST" status=N ...).
Connections are numbered like tshark's tcp.stream; SNI comes from the
ClientHello in the capture, so connections without requests are listed too.
"""
import re
import subprocess
import sys

cap, port, logf = sys.argv[1], sys.argv[2], sys.argv[3]
oneline = "--oneline" in sys.argv

out = subprocess.run(
    ["tshark", "-r", cap, "-d", f"tcp.port=={port},tls",
     "-Y", "tcp.flags.syn==1 && tcp.flags.ack==0 || tls.handshake.type==1",
     "-T", "fields", "-e", "tcp.stream", "-e", "tcp.srcport",
     "-e", "tls.handshake.extensions_server_name"],
    capture_output=True, text=True, check=True).stdout
conns = {}
for line in out.splitlines():
    stream, sport, sni = (line.split("\t") + ["", "", ""])[:3]
    c = conns.setdefault(int(stream), {"port": sport, "sni": "", "reqs": []})
    if sni:
        c["sni"] = sni

pat = re.compile(r'client=\S+:(\d+) sni=(\S+) .*host=(\S+) proto=(\S+) "(\S+) (\S+) [^"]*" status=(\d+)')
by_port = {c["port"]: c for c in conns.values()}
for line in open(logf):
    m = pat.search(line)
    if m and m.group(1) in by_port:
        by_port[m.group(1)]["reqs"].append(
            f"{m.group(5)} {m.group(6)} authority={m.group(3)} {m.group(4)} -> {m.group(7)}")

parts = []
for n in sorted(conns):
    c = conns[n]
    reqs = "; ".join(c["reqs"]) if c["reqs"] else "no HTTP request in the access log"
    parts.append(f"conn {n} (SNI {c['sni'] or '-'}): {reqs}")
print((" | " if oneline else "\n").join(parts))
