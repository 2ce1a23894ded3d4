#!/usr/bin/env python3
"""Regenerates the handshake-message fixtures in this directory from samples/.

Run from anywhere:  python3 tests/data/tls-hello/extract.py   (needs tshark and openssl)

Writes, per fixture, `<name>.hex`: one handshake message *body* (after the 4-byte type +
length header) as lowercase hex, 64 digits per line; and `expected.json`: what tshark (and,
for certificates, openssl) reports for the same message, which the Rust tests compare with.

Bodies: cleartext messages are cut out of the raw TCP stream (`tshark -q -z
follow,tcp,raw,N`) by walking TLS records and reassembling handshake messages across records
and segments; TLS 1.3 EncryptedExtensions/Certificate come from the "Decrypted TLS" hex
blocks tshark prints with `-x` when given the sample's key log.
Expectations: `tshark -T pdml` of the same connection (with the key log when there is one),
the N-th `tls.handshake` element of the wanted type in the wanted direction.
"""
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = os.path.normpath(os.path.join(HERE, "..", "..", "..", "samples"))
PORTS = (8443, 9443, 7443, 4433)  # the samples' TLS ports (see samples/README.md)

# (fixture, capture, tcp.stream, direction c/s, handshake type, occurrence, server port,
#  continue past ChangeCipherSpec: only for TLS 1.3, where the HRR's second ClientHello
#  follows the client's middlebox-compatibility CCS; in TLS 1.2 encrypted records follow it)
CLEARTEXT = [
    ("chromium-client-hello", "chromium-coalesce-421.pcapng", 0, "c", 1, 0, 7443, False),
    ("curl-tls12-client-hello", "http1-tls12.pcap", 0, "c", 1, 0, 8443, False),
    ("curl-tls13-client-hello", "http1-tls13.pcap", 0, "c", 1, 0, 8443, False),
    ("apache-tls12-server-hello", "http1-tls12.pcap", 0, "s", 2, 0, 8443, False),
    ("apache-tls12-certificate", "http1-tls12.pcap", 0, "s", 11, 0, 8443, False),
    ("nginx-tls12-h2-server-hello", "h2-tls12.pcap", 0, "s", 2, 0, 8443, False),
    ("nginx-tls13-server-hello", "http1-tls13.pcap", 0, "s", 2, 0, 8443, False),
    ("apache-tls13-server-hello", "chromium-coalesce-421.pcapng", 0, "s", 2, 0, 7443, False),
    ("openssl-no-sni-client-hello", "tls-sni-variants.pcap", 0, "c", 1, 0, 4433, False),
    ("openssl-ip-literal-client-hello", "tls-sni-variants.pcap", 1, "c", 1, 0, 4433, False),
    ("openssl-mixed-case-client-hello", "tls-sni-variants.pcap", 3, "c", 1, 0, 4433, False),
    ("openssl-trailing-dot-client-hello", "tls-sni-variants.pcap", 4, "c", 1, 0, 4433, False),
    ("openssl-hrr-server-hello", "tls13-hrr.pcap", 0, "s", 2, 0, 7443, False),
    ("openssl-hrr-second-client-hello", "tls13-hrr.pcap", 0, "c", 1, 1, 7443, True),
    ("openssl-psk-client-hello", "tls13-psk-resumption.pcap", 1, "c", 1, 0, 9443, False),
    ("openssl-psk-server-hello", "tls13-psk-resumption.pcap", 1, "s", 2, 0, 9443, False),
    ("openssl-tls12-ticket-client-hello", "tls12-resumed-ticket.pcap", 1, "c", 1, 0, 4433, False),
    ("openssl-tls12-resumed-client-hello", "tls12-resumed.pcap", 1, "c", 1, 0, 4433, False),
    ("openssl-tls12-resumed-server-hello", "tls12-resumed.pcap", 1, "s", 2, 0, 4433, False),
]
# (fixture prefix, capture, key log, server port, tcp.stream): EncryptedExtensions + Certificate
DECRYPTED = [
    ("nginx-tls13", "http1-tls13.pcap", "http1-tls13.keys", 8443, 0),
    ("apache-tls13", "chromium-coalesce-421.pcapng", "chromium-coalesce-421.keys", 7443, 0),
]


def tshark(*args):
    decode = [a for p in PORTS for a in ("-d", f"tcp.port=={p},tls")]
    return subprocess.run(["tshark", *decode, *args], check=True, capture_output=True,
                          text=True).stdout


def follow_raw(pcap, stream):
    """Client and server byte streams of one TCP connection, in order."""
    out = tshark("-r", pcap, "-q", "-z", f"follow,tcp,raw,{stream}")
    client, server, started = bytearray(), bytearray(), False
    for line in out.splitlines():
        if line.startswith("Node 1:"):
            started = True
        elif started and line.strip() and not line.startswith("====="):
            (server if line.startswith("\t") else client).extend(bytes.fromhex(line.strip()))
    return bytes(client), bytes(server)


def cleartext_handshake(stream, through_ccs):
    """Fragments of the leading handshake records (RFC 8446 §5.1, type 22), concatenated."""
    out, pos = bytearray(), 0
    while pos + 5 <= len(stream):
        ctype, length = stream[pos], int.from_bytes(stream[pos + 3:pos + 5], "big")
        if ctype == 22:
            out += stream[pos + 5:pos + 5 + length]
        elif not (ctype == 20 and through_ccs):
            break
        pos += 5 + length
    return bytes(out)


def split_messages(hs, stop_after_finished=False):
    """[(type, body)] from concatenated handshake bytes (RFC 8446 §4: u8 type, u24 length)."""
    msgs, pos = [], 0
    while pos + 4 <= len(hs):
        mtype, length = hs[pos], int.from_bytes(hs[pos + 1:pos + 4], "big")
        body = hs[pos + 4:pos + 4 + length]
        if len(body) != length:
            break
        msgs.append((mtype, body))
        pos += 4 + length
        if stop_after_finished and mtype == 20:
            break
    return msgs


def decrypted_server_handshake(pcap, keys, port, stream):
    """Decrypted server records up to the server's Finished (RFC 8446 §4.4.4)."""
    out = tshark("-r", pcap, "-o", f"tls.keylog_file:{keys}",
                 "-Y", f"tcp.stream=={stream} && tcp.srcport=={port}", "-x")
    data, in_block = bytearray(), False
    for line in out.splitlines():
        if line.startswith("Decrypted TLS"):
            in_block = True
            continue
        m = re.match(r"^[0-9a-f]{4}  ((?:[0-9a-f]{2} ?)+)", line) if in_block else None
        if m:
            data += bytes.fromhex(m.group(1).replace(" ", ""))
        else:
            in_block = False
    return split_messages(bytes(data), stop_after_finished=True)


def nth(msgs, mtype, n):
    found = [body for t, body in msgs if t == mtype]
    if len(found) <= n:
        sys.exit(f"handshake type {mtype} #{n} not found")
    return found[n]


def write_hex(name, body):
    h = body.hex()
    with open(os.path.join(HERE, name + ".hex"), "w") as f:
        f.write("\n".join(h[i:i + 64] for i in range(0, len(h), 64)) + "\n")
    print(f"{name}.hex: {len(body)} bytes")


# ---- expectations from tshark's dissection ----

def tshark_handshake(pcap, keys, stream, direction, port, mtype, n):
    """The n-th <field name="tls.handshake"> of type mtype sent in `direction`."""
    args = ["-r", pcap, "-Y", f"tcp.stream=={stream} && tls.handshake", "-T", "pdml"]
    if keys:
        args[:0] = ["-o", f"tls.keylog_file:{keys}"]
    root = ET.fromstring(tshark(*args))
    found = []
    for packet in root.iter("packet"):
        src = next(f.get("show") for f in packet.iter("field") if f.get("name") == "tcp.srcport")
        if (int(src) == port) != (direction == "s"):
            continue
        for hs in packet.iter("field"):
            if hs.get("name") != "tls.handshake":
                continue
            t = next((f.get("show") for f in hs.iter("field")
                      if f.get("name") == "tls.handshake.type"), None)
            if t is not None and int(t) == mtype:
                found.append(hs)
    if len(found) <= n:
        sys.exit(f"tshark: handshake type {mtype} #{n} not found in {pcap}")
    return found[n]


def shows(hs, name):
    return [f.get("show") for f in hs.iter("field") if f.get("name") == name]


def ints(hs, name):
    return [int(v, 0) for v in shows(hs, name)]


def one(values):
    return values[0] if values else None


def hello_expectations(hs):
    e = {
        "tshark_label": hs.get("showname"),
        "version": one(ints(hs, "tls.handshake.version")),
        "random": one([f.get("value") for f in hs.iter("field")
                       if f.get("name") == "tls.handshake.random"]),
        "session_id_length": one(ints(hs, "tls.handshake.session_id_length")),
        "session_id": one([f.get("value") for f in hs.iter("field")
                           if f.get("name") == "tls.handshake.session_id"]) or "",
        "cipher_suites": ints(hs, "tls.handshake.ciphersuite"),
        "extensions": list(zip(ints(hs, "tls.handshake.extension.type"),
                               ints(hs, "tls.handshake.extension.len"))),
        "server_name": shows(hs, "tls.handshake.extensions_server_name"),
        "alpn": shows(hs, "tls.handshake.extensions_alpn_str"),
        "supported_versions": ints(hs, "tls.handshake.extensions.supported_version"),
        "key_share_groups": ints(hs, "tls.handshake.extensions_key_share_group")
        + ints(hs, "tls.handshake.extensions_key_share_selected_group"),
        "supported_groups": ints(hs, "tls.handshake.extensions_supported_group"),
    }
    return e


def ech_by_hand(body):
    """tshark 4.0 does not dissect ECH (0xfe0d): walk the ClientHello here (RFC 9849 §5)."""
    p = 2 + 32
    p += 1 + body[p]
    p += 2 + int.from_bytes(body[p:p + 2], "big")
    p += 1 + body[p]
    end = p + 2 + int.from_bytes(body[p:p + 2], "big")
    p += 2
    while p < end:
        t, n = int.from_bytes(body[p:p + 2], "big"), int.from_bytes(body[p + 2:p + 4], "big")
        d = body[p + 4:p + 4 + n]
        p += 4 + n
        if t != 0xfe0d:
            continue
        if d[0] == 1:
            return {"outer": False, "kdf_id": None, "aead_id": None, "config_id": None,
                    "enc_len": 0, "payload_len": 0}
        enc = int.from_bytes(d[6:8], "big")
        return {"outer": True, "kdf_id": int.from_bytes(d[1:3], "big"),
                "aead_id": int.from_bytes(d[3:5], "big"), "config_id": d[5], "enc_len": enc,
                "payload_len": int.from_bytes(d[8 + enc:10 + enc], "big")}
    return None


def leaf_der(body, tls13):
    """The first certificate of a Certificate body (RFC 5246 §7.4.2 / RFC 8446 §4.4.2)."""
    p = 1 + body[0] if tls13 else 0
    p += 3
    n = int.from_bytes(body[p:p + 3], "big")
    return body[p + 3:p + 3 + n]


def openssl_names(der):
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject", "-issuer",
                          "-dates", "-ext", "subjectAltName", "-nameopt", "RFC2253"],
                         input=der, capture_output=True, check=True).stdout.decode()
    fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line
                  and line.split("=", 1)[0] in ("subject", "issuer", "notBefore", "notAfter"))
    sans = [s.strip() for line in out.splitlines() if ":" in line and
            line.strip().startswith(("DNS:", "IP Address:")) for s in line.split(",")]

    def rfc3339(s):
        t = datetime.datetime.strptime(s, "%b %d %H:%M:%S %Y GMT")
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    return {
        "openssl_output": out.splitlines(),
        "subject": fields["subject"],
        "issuer": fields["issuer"],
        # Our test names have no escaped commas, so splitting RFC 2253 on "," is exact.
        "subject_cn": [a[3:] for a in fields["subject"].split(",") if a.startswith("CN=")],
        "san_dns": [s[4:] for s in sans if s.startswith("DNS:")],
        "san_ip": [s[11:] for s in sans if s.startswith("IP Address:")],
        "not_before": rfc3339(fields["notBefore"]),
        "not_after": rfc3339(fields["notAfter"]),
    }


def main():
    s = lambda f: os.path.join(SAMPLES, f)
    expected = {}
    hrr_random = hashlib.sha256(b"HelloRetryRequest").hexdigest()
    for name, pcap, stream, direction, mtype, n, port, through_ccs in CLEARTEXT:
        client, server = follow_raw(s(pcap), stream)
        raw = client if direction == "c" else server
        body = nth(split_messages(cleartext_handshake(raw, through_ccs)), mtype, n)
        write_hex(name, body)
        hs = tshark_handshake(s(pcap), None, stream, direction, port, mtype, n)
        e = {"source": f"samples/{pcap} tcp.stream {stream}", "type": mtype}
        e.update(hello_expectations(hs))
        if mtype == 1:
            e["ech"] = ech_by_hand(body)
        if mtype == 2:
            e["hello_retry_request"] = e["random"] == hrr_random
        if mtype == 11:
            e["tshark_dns_names"] = shows(hs, "x509ce.dNSName")
            e["chain_len"] = len(shows(hs, "tls.handshake.certificate"))
            e.update(openssl_names(leaf_der(body, tls13=False)))
        expected[name] = e
    for prefix, pcap, keys, port, stream in DECRYPTED:
        msgs = decrypted_server_handshake(s(pcap), s(keys), port, stream)
        for mtype, suffix in ((8, "encrypted-extensions"), (11, "certificate")):
            name = f"{prefix}-{suffix}"
            body = nth(msgs, mtype, 0)
            write_hex(name, body)
            hs = tshark_handshake(s(pcap), s(keys), stream, "s", port, mtype, 0)
            e = {"source": f"samples/{pcap} tcp.stream {stream} decrypted with {keys}",
                 "type": mtype}
            if mtype == 8:
                e["extensions"] = list(zip(ints(hs, "tls.handshake.extension.type"),
                                           ints(hs, "tls.handshake.extension.len")))
                e["alpn"] = shows(hs, "tls.handshake.extensions_alpn_str")
            else:
                e["tshark_dns_names"] = shows(hs, "x509ce.dNSName")
                e["chain_len"] = len(shows(hs, "tls.handshake.certificate"))
                e.update(openssl_names(leaf_der(body, tls13=True)))
            expected[name] = e
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"expected.json: {len(expected)} fixtures")


if __name__ == "__main__":
    main()
