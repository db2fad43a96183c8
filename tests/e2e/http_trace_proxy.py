#!/usr/bin/env python3
"""A transparent TCP relay in front of the component's HTTP store (or of s3s-fs) that records what
clients send.

Usage: http_trace_proxy.py LISTEN_PORT TARGET_PORT LOG_FILE

ci/clients_e2e.sh hands out GET/PUT URLs that point here, so each real client's PUT passes
through unchanged, byte for byte, in both directions (the Host header too, which presigned S3
URLs sign); only the request head (request line and
header names/values) of the first request on each connection is appended to LOG_FILE as one JSON
line, so the report can say which HTTP version, Content-Type, Content-Length or
Transfer-Encoding and slot headers each client really sent. Header values that carry
credentials (Authorization, Cookie) are not written; neither are query strings.

Blocking sockets, one thread per direction: a store that answers early (411, 413, …) and closes
while the client is still uploading must not cost the client that answer. (With asyncio streams,
the failed write towards the closed store tore down the read side too, and the client got an
empty reply.) The client's remaining upload is read and dropped, as the store's own lingering
close would. Standard library only (Debian's python3).
"""

import json
import socket
import socketserver
import sys
import threading
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


class Relay(socketserver.BaseRequestHandler):
    target_port = 0
    log = None
    log_lock = threading.Lock()

    def handle(self):
        client = self.request
        try:
            store = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            return
        peer = "%s:%d" % self.client_address[:2]
        up = threading.Thread(target=self.client_to_store, args=(client, store, peer), daemon=True)
        up.start()
        self.store_to_client(store, client)
        # The answer is out: give the client a few seconds to read it and close; what it still
        # uploads meanwhile is drained by the other thread.
        up.join(5)
        for s in (store, client):
            try:
                s.close()
            except OSError:
                pass

    def client_to_store(self, client, store, peer):
        buf = b""
        in_head = True
        store_open = True
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                break
            if not data:
                break
            if in_head:
                buf += data
                end = buf.find(b"\r\n\r\n")
                if end >= 0:
                    entry = parse_head(buf[:end])
                    entry["time"] = time.time()
                    entry["peer"] = peer
                    with self.log_lock:
                        self.log.write(json.dumps(entry) + "\n")
                        self.log.flush()
                    # Later requests on a kept-alive connection are not parsed (bodies would
                    # have to be framed); the clients here make one request per connection.
                    in_head = False
                    buf = b""
                elif len(buf) > 65536:
                    in_head = False
            if store_open:
                try:
                    store.sendall(data)
                except OSError:
                    store_open = False  # the store has answered and closed: drop the rest
        try:
            store.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    @staticmethod
    def store_to_client(store, client):
        while True:
            try:
                data = store.recv(65536)
            except OSError:
                break
            if not data:
                break
            try:
                client.sendall(data)
            except OSError:
                break
        try:
            client.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    listen_port, target_port, log_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    Relay.target_port = target_port
    Relay.log = open(log_path, "a", encoding="utf-8")
    with Server(("127.0.0.1", listen_port), Relay) as server:
        server.serve_forever()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
