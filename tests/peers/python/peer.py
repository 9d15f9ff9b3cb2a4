"""Python `websockets` as an interop peer for Duplex's tests (run with Debian's /usr/bin/python3).

  peer.py server        listen on 127.0.0.1 (port printed as "listening PORT"): /echo, /fragments,
                        /close4001, /ping
  peer.py client URL    run the scripted exchange against an echo endpoint, printing "ok STEP" per
                        step; exits 1 with "fail STEP: why" on the first failure
"""
import asyncio
import os
import sys

import websockets

TIMEOUT = 30
# DUPLEX_PEER_COMPRESS=0 turns permessage-deflate off (websockets has it on by default).
COMPRESSION = None if os.environ.get("DUPLEX_PEER_COMPRESS") == "0" else "deflate"


async def handler(ws, path=None):
    path = (getattr(ws, "path", None) or path or "/").split("?")[0]
    if path == "/extensions":
        await ws.send("extensions:" + (ws.response_headers.get("Sec-WebSocket-Extensions") or ""))
    elif path == "/fragments":
        await ws.send(["sent ", "in ", "pieces"])
    elif path == "/close4001":
        await ws.close(code=4001, reason="python says bye")
        return
    elif path == "/ping":
        pong = await ws.ping(b"server ping")
        await asyncio.wait_for(pong, TIMEOUT)
        await ws.send("pong:server ping")
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass


async def serve():
    async with websockets.serve(handler, "127.0.0.1", 0, max_size=64 * 1024 * 1024, compression=COMPRESSION) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening {port}", flush=True)
        await asyncio.sleep(60)  # never outlive the test that started us


class Failure(Exception):
    pass


async def step(name, action):
    try:
        await asyncio.wait_for(action(), TIMEOUT)
    except Exception as error:  # noqa: BLE001 - report any failure as the step's
        raise Failure(f"{name}: {error!r}") from error
    print(f"ok {name}", flush=True)


def expect(condition, what):
    if not condition:
        raise AssertionError(what)


async def client(url):
    async with websockets.connect(url, max_size=64 * 1024 * 1024, compression=COMPRESSION) as ws:
        print("ok open", flush=True)
        extensions = ws.response_headers.get("Sec-WebSocket-Extensions") or ""
        if (COMPRESSION is not None) != ("permessage-deflate" in extensions):
            print(f"fail extensions: '{extensions}'", flush=True)
            sys.exit(1)
        print("ok extensions", flush=True)

        async def text():
            await ws.send("hello from python ✓")
            expect(await ws.recv() == "hello from python ✓", "text echo differs")

        async def binary():
            await ws.send(bytes([0, 1, 2, 255]))
            expect(await ws.recv() == bytes([0, 1, 2, 255]), "binary echo differs")

        async def large():
            big = bytes((i * 31) & 0xFF for i in range(16 * 1024 * 1024))
            await ws.send(big)
            expect(await ws.recv() == big, "16 MiB echo differs")

        async def fragmented():
            await ws.send(["frag", "ment", "ed"])
            expect(await ws.recv() == "fragmented", "fragmented echo differs")

        async def ping():
            pong = await ws.ping(b"are you there")
            await pong

        async def close():
            await ws.close(code=4000, reason="bye")
            expect(ws.close_code == 4000, f"closed with {ws.close_code}")

        for name, action in [("text", text), ("binary", binary), ("16MiB", large), ("fragmented", fragmented),
                             ("ping", ping), ("close", close)]:
            await step(name, action)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "server":
        asyncio.run(serve())
    elif len(sys.argv) >= 3 and sys.argv[1] == "client":
        try:
            asyncio.run(client(sys.argv[2]))
        except Failure as failure:
            print(f"fail {failure}", flush=True)
            sys.exit(1)
    else:
        print("usage: peer.py server | client URL", file=sys.stderr)
        sys.exit(64)


if __name__ == "__main__":
    main()
