#!/usr/bin/env python3
"""A transparent TCP relay in front of the component's HTTP store that records what clients send.

Usage: http_trace_proxy.py LISTEN_PORT TARGET_PORT LOG_FILE

ci/clients_e2e.sh hands out GET/PUT URLs that point here, so each real client's PUT passes
through unchanged, byte for byte, in both directions; only the request head (request line and
header names/values) of each request is appended to LOG_FILE as one JSON line, so the report can
say which HTTP version, Content-Type, Content-Length or Transfer-Encoding and slot headers each
client really sent. Header values that carry credentials (Authorization, Cookie) are not written.
Standard library only (Debian's python3).
"""

import asyncio
import json
import sys
import time

SECRET_HEADERS = {"authorization", "cookie", "proxy-authorization"}


def parse_head(raw):
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        value = value.strip()
        if name.strip().lower() in SECRET_HEADERS:
            value = "<%d chars>" % len(value)
        headers.append([name.strip(), value])
    parts = lines[0].split(" ")
    path = parts[1] if len(parts) > 1 else ""
    # No query strings in the log: they may carry signatures.
    path = path.split("?", 1)[0] + ("?…" if "?" in path else "")
    return {
        "method": parts[0],
        "path": path,
        "version": parts[-1] if len(parts) > 2 else "",
        "headers": headers,
    }


async def pipe_client(reader, writer, log, peer):
    """Client to store: copy everything, note each request head (first one per message)."""
    buf = b""
    in_head = True
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
            if in_head:
                buf += data
                end = buf.find(b"\r\n\r\n")
                if end >= 0:
                    entry = parse_head(buf[:end])
                    entry["time"] = time.time()
                    entry["peer"] = peer
                    log.write(json.dumps(entry) + "\n")
                    log.flush()
                    # Later requests on a kept-alive connection are not parsed (bodies would
                    # have to be framed); the clients here make one request per connection.
                    in_head = False
                    buf = b""
                elif len(buf) > 65536:
                    in_head = False
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass


async def main():
    listen_port, target_port, log_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    log = open(log_path, "a", encoding="utf-8")

    async def handle(c_reader, c_writer):
        peer = "%s:%d" % c_writer.get_extra_info("peername")[:2]
        try:
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            c_writer.close()
            return
        await asyncio.gather(
            pipe_client(c_reader, s_writer, log, peer), pipe(s_reader, c_writer)
        )
        for w in (s_writer, c_writer):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
