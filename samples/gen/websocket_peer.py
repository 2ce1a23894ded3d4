#!/usr/bin/python3
"""WebSocket echo server and client (Debian's python3-websockets, 10.x).

  websocket_peer.py server PORT
      listens on 127.0.0.1:PORT; every text message is answered with
      "echo: " + text, every binary message with its bytes reversed; after
      the first text message the server also sends an unprompted
      "server notice" text message.  Runs until killed.
  websocket_peer.py client CONNECT-HOST CONNECT-PORT URI
      opens a TCP connection to CONNECT-HOST:CONNECT-PORT and does the
      opening handshake for URI over it (so Host: is URI's authority),
      sends a text message, reads the echo and the notice, sends a binary
      message, reads its echo, sends a ping and waits for the pong, and
      closes with code 1000.  Exit status 0 if every answer was right.

No permessage-deflate (compression=None on both sides), so every frame
carries its payload as is (client frames masked, as RFC 6455 requires).
"""
import asyncio
import socket
import sys

import websockets


async def echo(ws, path=None):
    notice_sent = False
    async for msg in ws:
        if isinstance(msg, str):
            await ws.send("echo: " + msg)
            if not notice_sent:
                notice_sent = True
                await ws.send("server notice")
        else:
            await ws.send(bytes(reversed(msg)))


async def server(port):
    async with websockets.serve(echo, "127.0.0.1", port, compression=None):
        await asyncio.Future()


async def client(host, port, uri):
    sock = socket.create_connection((host, port))
    ok = True
    async with websockets.connect(uri, sock=sock, compression=None,
                                  user_agent_header="misdirect-websocket/1") as ws:
        await ws.send("hello over websocket")
        got = [await ws.recv(), await ws.recv()]
        print("text ->", got)
        ok &= got == ["echo: hello over websocket", "server notice"]
        await ws.send(b"\x00\x01\x02binary\xff")
        got = await ws.recv()
        print("binary ->", got)
        ok &= got == bytes(reversed(b"\x00\x01\x02binary\xff"))
        pong = await ws.ping(b"misdirect-ping")
        await asyncio.wait_for(pong, 5)
        print("ping -> pong")
        await ws.close(code=1000, reason="done")
    print("closed", ws.close_code, ws.close_reason)
    ok &= ws.close_code == 1000
    return ok


def main():
    if sys.argv[1] == "server":
        asyncio.run(server(int(sys.argv[2])))
    else:
        ok = asyncio.run(client(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
