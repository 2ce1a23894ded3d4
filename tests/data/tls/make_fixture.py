#!/usr/bin/env python3
"""Turn one TLS connection of a capture plus its NSS key log into a text fixture.

Usage: make_fixture.py CAPTURE KEYLOG PORT STREAM OUT [NOTE]

Everything expected comes from tshark (Wireshark 4.0), an independent TLS
implementation, never from misdirect:
  * ciphertext records: `tshark -z follow,tcp,raw,STREAM`, split at record headers here;
  * plaintexts: the "Decrypted TLS" data sources of `tshark -x`, in frame order per
    direction (one per decrypted record);
  * TLS 1.3 inner content types: `tls.record.content_type` of the decrypted records;
  * key block and write keys/IVs/MAC keys: tshark's TLS debug log (`-o tls.debug_file`).
The generator only checks that these line up one to one and writes them out.
"""
import os, re, subprocess, sys, tempfile

cap, keylog, port, stream, out = sys.argv[1:6]
note = sys.argv[6] if len(sys.argv) > 6 else ""
source = os.path.basename(cap)
# Work on a capture holding only this connection, so that tshark's debug log (read below for
# the keys) cannot mix in another connection's keys.
one = tempfile.NamedTemporaryFile(delete=False, suffix=".pcapng").name
subprocess.run(["tshark", "-r", cap, "-Y", f"tcp.stream=={stream}", "-w", one], check=True,
               capture_output=True)
cap, stream = one, "0"
base = ["tshark", "-r", cap, "-o", f"tls.keylog_file:{keylog}", "-d", f"tcp.port=={port},tls"]
flt = ["-Y", f"tcp.stream=={stream}"]


def run(args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


# --- ciphertext: the reassembled bytes of each direction ------------------------------
fol = run(["tshark", "-r", cap, "-q", "-z", f"follow,tcp,raw,{stream}"])
node0 = re.search(r"Node 0: (\S+)", fol).group(1)
data = {"c": b"", "s": b""}
body = fol.split("Node 1:", 1)[1].split("\n", 1)[1]
for line in body.splitlines():
    if line.startswith("===") or not line.strip():
        continue
    d = "s" if line.startswith("\t") else "c"
    data[d] += bytes.fromhex(line.strip())
if node0.endswith(":" + port):  # node 0 is the server: swap
    data = {"c": data["s"], "s": data["c"]}


def records(b):
    out, i = [], 0
    while i + 5 <= len(b):
        t, v, n = b[i], int.from_bytes(b[i + 1:i + 3], "big"), int.from_bytes(b[i + 3:i + 5], "big")
        assert i + 5 + n <= len(b), "truncated record at end of stream"
        out.append((t, v, b[i + 5:i + 5 + n]))
        i += 5 + n
    assert i == len(b), "trailing bytes"
    return out


recs = {d: records(data[d]) for d in "cs"}
ch, sh = recs["c"][0][2], recs["s"][0][2]
assert ch[0] == 1 and sh[0] == 2
client_random, server_random = ch[6:38], sh[6:38]
sid_len = sh[38]
suite = int.from_bytes(sh[39 + sid_len:41 + sid_len], "big")
# ServerHello extensions: encrypt_then_mac (22) and supported_versions (43).
p = 41 + sid_len + 1
ext_end = p + 2 + int.from_bytes(sh[p:p + 2], "big")
p += 2
etm, tls13 = False, False
while p < ext_end:
    et, el = int.from_bytes(sh[p:p + 2], "big"), int.from_bytes(sh[p + 2:p + 4], "big")
    if et == 22:
        etm = True
    if et == 43 and sh[p + 4:p + 6] == b"\x03\x04":
        tls13 = True
    p += 4 + el

# --- plaintexts: tshark's "Decrypted TLS" data sources --------------------------------
xs = run(base + flt + ["-P", "-x", "-o", 'gui.column.format:"No","%m","SP","%uS"'])
plains = {"c": [], "s": []}
cur_dir, cur_src, buf = None, None, None


def flush():
    global buf
    if cur_src == "Decrypted TLS" and buf is not None:
        plains[cur_dir].append(bytes(buf))
    buf = None


for line in xs.splitlines():
    m = re.match(r"^\s*\d+ (\d+)$", line)
    if m:
        flush()
        cur_dir = "s" if m.group(1) == port else "c"
        cur_src, buf = "Frame", bytearray()
        continue
    m = re.match(r"^(.+) \((\d+) bytes\):$", line)
    if m:
        flush()
        cur_src, buf = m.group(1), bytearray()
        continue
    m = re.match(r"^[0-9a-f]{4,}  ((?:[0-9a-f]{2} ){1,16})", line)
    if m and buf is not None:
        buf += bytes.fromhex(m.group(1).replace(" ", ""))
flush()

# --- inner content types, per direction in record order -------------------------------
ct = run(base + flt + ["-T", "fields", "-e", "tcp.srcport", "-e", "tls.record.content_type",
                        "-e", "tls.record.opaque_type"])
types = {"c": [], "s": []}
for line in ct.splitlines():
    f = line.split("\t")
    if len(f) < 2 or not f[1]:
        continue
    types["s" if f[0] == port else "c"] += [int(x) for x in f[1].split(",")]

# --- keys from tshark's debug log -----------------------------------------------------
dbgf = tempfile.NamedTemporaryFile(delete=False, suffix=".txt").name
run(base + ["-o", f"tls.debug_file:{dbgf}"])
dbg = open(dbgf).read().splitlines()
os.unlink(dbgf)


def hexdump_at(i):
    b = bytearray()
    for l in dbg[i + 1:]:
        if not l.startswith("| "):
            break
        b += bytes.fromhex(l[2:50].replace(" ", ""))
    return bytes(b)


keysets = {"c": [], "s": []}  # list of dicts per direction, in generation order
key_block = None
crand_seen = False
for i, l in enumerate(dbg):
    m = re.match(r"^(Client|Server) (Write Key|Write key|Write IV|MAC key)\[(\d+)\]:$", l)
    if m:
        d = "c" if m.group(1) == "Client" else "s"
        kind = {"Write Key": "key", "Write key": "key", "Write IV": "iv", "MAC key": "mac"}[m.group(2)]
        v = hexdump_at(i)
        assert len(v) == int(m.group(3))
        if not keysets[d] or kind in keysets[d][-1]:
            keysets[d].append({})
        keysets[d][-1][kind] = v
    if l.startswith("key expansion[") and key_block is None:
        key_block = hexdump_at(i)
# tshark may derive the same keys twice (two passes): drop consecutive duplicates
for d in "cs":
    ded = []
    for k in keysets[d]:
        if not ded or ded[-1] != k:
            ded.append(k)
    keysets[d] = ded

# --- line everything up ----------------------------------------------------------------
lines = []
lines.append(f"# generated by tests/data/tls/make_fixture.py from {source} "
             f"tcp.stream {sys.argv[4]}; expected values from tshark, see README.md")
if note:
    lines.append(f"# {note}")
lines.append(f"suite {suite:04x}")
lines.append(f"protocol {'tls13' if tls13 else 'tls12'}")
lines.append(f"etm {int(etm)}")
lines.append(f"client_random {client_random.hex()}")
lines.append(f"server_random {server_random.hex()}")
for l in open(keylog):
    f = l.split()
    if len(f) == 3 and f[1] == client_random.hex():
        lines.append(f"keylog {l.strip()}")
if key_block is not None and not tls13:
    lines.append(f"key_block {key_block.hex()}")

for d in "cs":
    encrypted = []
    started = False
    for (t, v, frag) in recs[d]:
        if tls13:
            enc = t == 23
        else:
            enc = started
            if t == 20:
                started = True
        if enc:
            encrypted.append((t, v, frag))
    tl = types[d]
    assert len(tl) == len(recs[d]), (d, len(tl), len(recs[d]))
    inner = [tl[i] for i, (t, v, f) in enumerate(recs[d]) if (t == 23 if tls13 else i >= len(recs[d]) - len(encrypted))]
    assert len(plains[d]) == len(encrypted), (d, len(plains[d]), len(encrypted))
    # epochs: TLS 1.3 handshake keys until this side's Finished, then app0, app1 after each KeyUpdate
    epoch = 0
    hsbuf = b""
    n_epochs = len(keysets[d])
    for (t, v, frag), pt, it in zip(encrypted, plains[d], inner):
        name = (["hs"] + [f"app{i}" for i in range(n_epochs)])[epoch] if tls13 else "app0"
        if not tls13:
            assert it == t
        lines.append(f"rec {d} {name} {t} {v:04x} {it} {frag.hex()} {pt.hex()}")
        if tls13 and it == 22:
            hsbuf += pt
            while len(hsbuf) >= 4 and len(hsbuf) >= 4 + int.from_bytes(hsbuf[1:4], "big"):
                mt, n = hsbuf[0], int.from_bytes(hsbuf[1:4], "big")
                if mt in (20, 24):  # Finished or KeyUpdate: next record uses the next keys
                    epoch += 1
                hsbuf = hsbuf[4 + n:]
    names = (["hs"] + [f"app{i}" for i in range(n_epochs - 1)]) if tls13 else ["app0"]
    for name, ks in zip(names, keysets[d]):
        parts = " ".join(f"{k} {ks[k].hex()}" for k in ("key", "iv", "mac") if k in ks)
        lines.append(f"keys {d} {name} {parts}")

os.unlink(one)
open(out, "w").write("\n".join(lines) + "\n")
print(out, sum(1 for l in lines if l.startswith("rec")), "records,", os.path.getsize(out), "bytes")
