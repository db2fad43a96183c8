#!/usr/bin/env python3
"""Hostile stanzas against xmpp-upload-component, fed directly over its XEP-0114 socket.

This script plays the XMPP server: it listens on a port, lets the component connect and
authenticate (XEP-0114 handshake, SHA-1 of stream id + secret), then sends stanzas as a server
would route them from a user, and checks that the component still answers a slot request after
each hostile one. Standard library only.

    hostile_stanzas.py --port PORT --secret-file FILE --component upload.localhost \
        [--depths 1000,14000,100000] [--sizes 1000000] [--timeout 30]

Exit status 0 when the component answered every check; the table on stdout says, per case,
whether the connection survived, how long the answer took and what it was.
"""
import argparse
import hashlib
import re
import socket
import sys
import time

STREAM_NS = "http://etherx.jabber.org/streams"


def slot_request(n):
    return (
        f"<iq type='get' id='probe-{n}' from='alice@localhost/res' to='{{to}}'>"
        f"<request xmlns='urn:xmpp:http:upload:0' filename='probe.txt' size='10' "
        f"content-type='text/plain'/></iq>"
    )


class Server:
    def __init__(self, port, secret, component, timeout):
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", port))
        self.ls.listen(4)
        self.secret = secret
        self.component = component
        self.timeout = timeout
        self.conn = None
        self.buf = b""
        self.sessions = 0

    def accept(self):
        """Waits for the component to connect and authenticates it."""
        self.ls.settimeout(self.timeout)
        conn, _ = self.ls.accept()
        conn.settimeout(self.timeout)
        self.conn, self.buf = conn, b""
        self.read_until(b">")  # its stream header (maybe after an XML declaration)
        while b"<stream:stream" not in self.buf:
            self.read_until(b">")
        sid = f"s{self.sessions}{int(time.time())}"
        self.conn.sendall(
            f"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
            f"xmlns:stream='{STREAM_NS}' from='{self.component}' id='{sid}'>".encode()
        )
        self.buf = b""
        self.read_until(b"</handshake>")
        m = re.search(rb"<handshake[^>]*>([0-9a-fA-F]+)</handshake>", self.buf)
        want = hashlib.sha1((sid + self.secret).encode()).hexdigest()
        if not m or m.group(1).decode().lower() != want:
            raise SystemExit("hostile: bad handshake from the component")
        self.buf = b""
        self.conn.sendall(b"<handshake/>")
        self.sessions += 1

    def read_until(self, marker, deadline=None):
        deadline = deadline or time.time() + self.timeout
        while marker not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError
            self.conn.settimeout(left)
            chunk = self.conn.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def send(self, data):
        self.conn.sendall(data if isinstance(data, bytes) else data.encode())

    def probe(self, n):
        """Sends a slot request; returns (seconds, 'result'|'error'|reason)."""
        t = time.time()
        self.send(slot_request(n).replace("{to}", self.component))
        marker = f"id='probe-{n}'".encode()
        alt = f'id="probe-{n}"'.encode()
        deadline = time.time() + self.timeout
        while True:
            for mk in (marker, alt):
                i = self.buf.find(mk)
                if i >= 0:
                    head = self.buf[max(0, self.buf.rfind(b"<iq", 0, i)) : i + 200]
                    kind = "result" if b"type='result'" in head or b'type="result"' in head else "error"
                    # drop everything up to the end of this reply
                    end = self.buf.find(b"</iq>", i)
                    self.buf = self.buf[end + 5 :] if end >= 0 else b""
                    return time.time() - t, kind
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError
            self.conn.settimeout(left)
            chunk = self.conn.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk


def deep(depth, kind):
    inner = "<a>" * depth + "</a>" * depth
    if kind == "iq":
        return (
            f"<iq type='get' id='deep-{depth}' from='mallory@localhost/x' to='{{to}}'>"
            f"<request xmlns='urn:xmpp:http:upload:0' filename='x' size='1'>{inner}</request></iq>"
        )
    return f"<message from='mallory@localhost/x' to='{{to}}' type='chat'><body>hi</body>{inner}</message>"


def big(size):
    pad = "x" * size
    return (
        f"<message from='mallory@localhost/x' to='{{to}}' type='chat'><body>{pad}</body></message>"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--secret-file", required=True)
    ap.add_argument("--component", default="upload.localhost")
    ap.add_argument("--depths", default="1000,14000,100000")
    ap.add_argument("--sizes", default="1000000")
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    secret = open(a.secret_file).read().rstrip("\n")
    srv = Server(a.port, secret, a.component, a.timeout)
    srv.accept()
    n = 0
    dt, kind = srv.probe(n)
    print(f"hostile: baseline slot request -> {kind} in {dt*1000:.0f} ms")
    if kind != "result":
        raise SystemExit("hostile: the baseline slot request was not answered with a slot")
    cases = []
    for d in [int(x) for x in a.depths.split(",") if x]:
        cases.append((f"iq {d} deep", deep(d, "iq")))
        cases.append((f"message {d} deep", deep(d, "message")))
    for s in [int(x) for x in a.sizes.split(",") if x]:
        cases.append((f"message {s} bytes", big(s)))
    failures = 0
    for name, stanza in cases:
        n += 1
        t = time.time()
        try:
            srv.send(stanza.replace("{to}", a.component))
            dt, kind = srv.probe(n)
            verdict = f"survived; next slot request -> {kind} after {(time.time()-t)*1000:.0f} ms"
            if kind != "result":
                failures += 1
        except (ConnectionError, TimeoutError, BrokenPipeError, ConnectionResetError) as e:
            failures += 1
            verdict = f"FAILED ({type(e).__name__}); waiting for a reconnect"
            try:
                srv.conn.close()
                srv.accept()
                verdict += f": reconnected after {time.time()-t:.1f} s"
            except Exception as e2:  # the process died
                verdict += f": no reconnect ({type(e2).__name__})"
                print(f"hostile: {name}: {verdict}")
                break
        print(f"hostile: {name}: {verdict}")
    print(f"hostile: {len(cases) - failures} passed, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
