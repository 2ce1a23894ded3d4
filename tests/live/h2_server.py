#!/usr/bin/python3
"""A TLS HTTP/2 server for misdirect's live-capture test (Debian's python3-h2).

It binds a connection to its SNI the way Apache does: a request whose :authority names
another host than the TLS SNI gets 421 Misdirected Request, any other gets 200.
Usage: h2_server.py CERT KEY PORT  (prints "ready" once listening; serves until killed)
"""
import socket
import ssl
import sys
import threading

import h2.config
import h2.connection
import h2.events


def serve(conn, sni):
    h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    h2c.initiate_connection()
    conn.sendall(h2c.data_to_send())
    while True:
        data = conn.recv(65535)
        if not data:
            return
        for ev in h2c.receive_data(data):
            if isinstance(ev, h2.events.RequestReceived):
                headers = dict((k.decode() if isinstance(k, bytes) else k,
                                v.decode() if isinstance(v, bytes) else v) for k, v in ev.headers)
                host = headers.get(":authority", "").rsplit(":", 1)[0].lower()
                status, body = ("200", b"hello\n") if host == sni else ("421", b"misdirected\n")
                h2c.send_headers(ev.stream_id, [(":status", status),
                                                ("content-length", str(len(body))),
                                                ("server", "misdirect-test-h2")])
                h2c.send_data(ev.stream_id, body, end_stream=True)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                conn.sendall(h2c.data_to_send())
                return
        conn.sendall(h2c.data_to_send())


def main():
    cert, key, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2"])

    def remember_sni(tls_sock, name, _ctx):
        tls_sock.misdirect_sni = (name or "").lower()

    ctx.sni_callback = remember_sni
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(8)
    print("ready", flush=True)
    while True:
        raw, _ = sock.accept()

        def handle(raw=raw):
            try:
                conn = ctx.wrap_socket(raw, server_side=True)
                serve(conn, getattr(conn, "misdirect_sni", ""))
            except (ssl.SSLError, OSError):
                pass
            finally:
                raw.close()

        threading.Thread(target=handle, daemon=True).start()


if __name__ == "__main__":
    main()
