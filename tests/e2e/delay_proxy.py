#!/usr/bin/env python3
"""A TCP proxy on 127.0.0.1 that holds every chunk from the server back for DELAY ms before it
reaches the client (order kept), so each request/answer round trip through it is DELAY ms
slower: ci/load.sh puts it in front of PostgreSQL to measure the component with a slow
database. Client-to-server bytes pass at once. Loopback only; it runs until killed.

    delay_proxy.py --listen PORT --to PORT --delay-ms 20
"""
import argparse
import asyncio
import time


async def pump(reader, writer, delay):
    """Copies reader to writer, each chunk written `delay` seconds after it was read."""
    queue = asyncio.Queue()

    async def read():
        while True:
            data = await reader.read(65536)
            await queue.put((time.monotonic() + delay, data))
            if not data:
                return

    async def write():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, OSError):
        writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--to", type=int, required=True)
    p.add_argument("--delay-ms", type=float, required=True)
    a = p.parse_args()
    delay = a.delay_ms / 1000.0

    async def handle(client_r, client_w):
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", a.to)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pump(client_r, server_w, 0.0), pump(server_r, client_w, delay))

    server = await asyncio.start_server(handle, "127.0.0.1", a.listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
