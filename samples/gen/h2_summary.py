#!/usr/bin/env python3
"""Per-connection list of HTTP/2 requests and responses, as tshark decodes them.

Usage: h2_summary.py CAPTURE PORT [--tls KEYLOG] [--oneline]

PORT is dissected as HTTP/2 (cleartext) or, with --tls, as TLS decrypted
with KEYLOG (tshark also decrypts TLS inside a CONNECT tunnel to PORT when
it dissects the proxy's port as HTTP, e.g. 3128, one of its default HTTP
ports).  Every HEADERS frame is matched with the :method/:path (client)
or :status (server) that tshark decoded for it; a pseudo-header tshark could
not decode (HPACK state unknown, e.g. a capture that starts mid-connection)
shows as "?".  Output, one connection per line (tshark's tcp.stream):
  conn 0: s1 GET a.example.test:8080 /hello.txt -> 200, s3 ... -> ?
"""
import json
import subprocess
import sys

cap, port = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
cmd = ["tshark", "-r", cap]
if "--tls" in args:
    cmd += ["-d", f"tcp.port=={port},tls", "-o", "tls.keylog_file:" + args[args.index("--tls") + 1]]
else:
    cmd += ["-d", f"tcp.port=={port},http2"]
fields = ["tcp.stream", "tcp.srcport", "http2.streamid", "http2.type", "http2.headers.method",
          "http2.headers.authority", "http2.headers.path", "http2.headers.status"]
cmd += ["-Y", "http2.type == 1", "-T", "json"] + [x for f in fields for x in ("-e", f)]
pkts = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout or "[]")

# the server's port per connection: the sender of the SYN-ACK (PORT when the
# handshake is not in the capture); a connection through a CONNECT tunnel
# has the proxy's port there, not PORT
server_port = {}
synack = subprocess.run(["tshark", "-r", cap, "-Y", "tcp.flags.syn == 1 && tcp.flags.ack == 1",
                         "-T", "fields", "-e", "tcp.stream", "-e", "tcp.srcport"],
                        capture_output=True, text=True, check=True).stdout
for line in synack.splitlines():
    stream, sport = line.split("\t")
    server_port[int(stream)] = sport

conns = {}
for p in pkts:
    lay = p["_source"]["layers"]
    conn = int(lay["tcp.stream"][0])
    from_client = lay["tcp.srcport"][0] != server_port.get(conn, port)
    sids = [s for s, t in zip(lay.get("http2.streamid", []), lay.get("http2.type", [])) if t == "1"]
    streams = conns.setdefault(conn, {})
    if from_client:
        methods = lay.get("http2.headers.method", [])
        auths = lay.get("http2.headers.authority", [])
        paths = lay.get("http2.headers.path", [])
        # a field tshark could not decode in some HEADERS frame of this
        # packet leaves its list short: show it as "?" for all of them
        def pick(vals, i):
            return vals[i] if len(vals) == len(sids) else "?"
        for i, sid in enumerate(sids):
            req = f"{pick(methods, i)} {pick(auths, i)} {pick(paths, i)}"
            streams.setdefault(int(sid), ["", ""])[0] = req
    else:
        statuses = lay.get("http2.headers.status", [])
        ok = len(statuses) == len(sids)
        for i, sid in enumerate(sids):
            streams.setdefault(int(sid), ["", ""])[1] = statuses[i] if ok else "?"

lines = []
for conn in sorted(conns):
    items = [f"s{sid} {req or '(request not captured)'} -> {status or '(no response)'}"
             for sid, (req, status) in sorted(conns[conn].items())]
    lines.append(f"conn {conn}: " + ", ".join(items))
print(("; " if "--oneline" in args else "\n").join(lines))
