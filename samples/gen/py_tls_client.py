#!/usr/bin/env python3
"""HTTP/1.1 over TLS with Python's ssl module driven through MemoryBIOs, so
this script (not the ssl module) decides how the ClientHello reaches the wire.

usage: py_tls_client.py HOST PORT SNI CAFILE KEYLOG MODE PATH [options]

MODE
  plain          the ClientHello record as one send()
  split-header   the ClientHello record cut after 3 bytes (inside the 5-byte
                 record header): two TCP segments (TCP_NODELAY + a pause)
  split-records:K
                 the ClientHello handshake message re-framed into TWO TLS
                 records of type 22, the first carrying its first K bytes,
                 each record in its own TCP segment
options
  --tls12                 cap the version at TLS 1.2
  --ciphers STRING        TLS 1.2 cipher list (SSLContext.set_ciphers)

The key log is written by the ssl module (SSLContext.keylog_filename).
One request, GET PATH with Host: SNI and Connection: close; prints the status
line and how the ClientHello was sent.
"""
import socket
import ssl
import sys
import time


def main():
    host, port, sni, cafile, keylog, mode, path = sys.argv[1:8]
    opts = sys.argv[8:]
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.keylog_filename = keylog
    ctx.set_alpn_protocols(["http/1.1"])
    if "--tls12" in opts:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if "--ciphers" in opts:
        ctx.set_ciphers(opts[opts.index("--ciphers") + 1])

    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname=sni)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    # exactly one handshake record holding exactly one ClientHello
    assert hello[0] == 22 and int.from_bytes(hello[3:5], "big") == len(hello) - 5, "not one record"
    hs = hello[5:]
    assert hs[0] == 1 and int.from_bytes(hs[1:4], "big") == len(hs) - 4, "not one ClientHello"

    def pause():
        time.sleep(0.1)

    if mode == "plain":
        pieces = [hello]
        how = f"ClientHello record of {len(hello)} bytes in one send"
    elif mode == "split-header":
        pieces = [hello[:3], hello[3:]]
        how = f"ClientHello record of {len(hello)} bytes sent as 3 + {len(hello) - 3}"
    elif mode.startswith("split-records:"):
        k = int(mode.split(":", 1)[1])
        assert 0 < k < len(hs)
        ver = hello[1:3]
        rec1 = bytes([22]) + ver + k.to_bytes(2, "big") + hs[:k]
        rec2 = bytes([22]) + ver + (len(hs) - k).to_bytes(2, "big") + hs[k:]
        pieces = [rec1, rec2]
        how = (f"ClientHello message of {len(hs)} bytes re-framed into two records: "
               f"{len(rec1)} bytes (header + {k}) and {len(rec2)} bytes (header + {len(hs) - k})")
    else:
        sys.exit(f"unknown mode {mode}")
    for i, p in enumerate(pieces):
        if i:
            pause()
        sock.sendall(p)

    def flush():
        data = out.read()
        if data:
            sock.sendall(data)

    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            flush()
            data = sock.recv(65536)
            if not data:
                sys.exit("server closed the connection during the handshake")
            inc.write(data)
    flush()

    req = f"GET {path} HTTP/1.1\r\nHost: {sni}\r\nUser-Agent: misdirect-py-ssl\r\nConnection: close\r\n\r\n"
    tls.write(req.encode())
    flush()
    resp = b""
    while True:
        try:
            chunk = tls.read(65536)
            if not chunk:
                break
            resp += chunk
            continue
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            break
        data = sock.recv(65536)
        if not data:
            break
        inc.write(data)
    try:
        tls.unwrap()           # our close_notify
    except (ssl.SSLWantReadError, ssl.SSLError):
        pass
    flush()
    sock.close()
    status = resp.split(b"\r\n", 1)[0].decode(errors="replace")
    print(f"  python ssl {tls.version()} {tls.cipher()[0]}: {how}; {status}")
    if not status.startswith("HTTP/1.1 200"):
        sys.exit("unexpected response")


if __name__ == "__main__":
    main()
