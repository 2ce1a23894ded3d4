#!/usr/bin/env python3
"""HTTP/1.1 pipelining on one cleartext TCP connection.

Sends three requests in a single write (Host a.example.test, then
b.example.test twice; the last one asks for the chunked CGI and carries
"Connection: close"), then reads until the server closes.
Usage: pipeline_client.py HOST PORT
"""
import socket
import sys

host, port = sys.argv[1], int(sys.argv[2])
reqs = (
    b"GET / HTTP/1.1\r\nHost: a.example.test\r\nUser-Agent: misdirect-pipeline/1\r\n\r\n"
    b"GET / HTTP/1.1\r\nHost: b.example.test\r\nUser-Agent: misdirect-pipeline/1\r\n\r\n"
    b"GET /cgi-bin/chunked HTTP/1.1\r\nHost: b.example.test\r\nUser-Agent: misdirect-pipeline/1\r\n"
    b"Connection: close\r\n\r\n"
)
s = socket.create_connection((host, port), timeout=10)
s.sendall(reqs)
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
s.close()
n = data.count(b"HTTP/1.1 200")
print(data.decode("latin-1"))
print("responses with 200:", n)
sys.exit(0 if n == 3 and b"Transfer-Encoding: chunked" in data else 1)
