#!/usr/bin/env python3
"""Graceful stop of xmpp-upload-component (ci/e2e.sh): a PUT in flight when SIGTERM
arrives still completes.

Plays the XMPP server (as tests/e2e/hostile_stanzas.py does), gets a slot, starts the PUT with
half the body, prints "ready" and waits until the file named by --go exists (ci/e2e.sh sends
SIGTERM to the component, then creates it); then sends the rest and prints the HTTP status.
Exits 0 when the PUT was stored (201).
"""
import argparse
import os
import re
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile_stanzas import Server  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--secret-file", required=True)
    ap.add_argument("--go", required=True)
    ap.add_argument("--component", default="upload.localhost")
    a = ap.parse_args()
    srv = Server(a.port, open(a.secret_file).read().rstrip("\n"), a.component, 30)
    srv.accept()
    body = os.urandom(200_000)
    srv.send(
        f"<iq type='get' id='g1' from='alice@localhost/r' to='{a.component}'>"
        f"<request xmlns='urn:xmpp:http:upload:0' filename='slow.bin' size='{len(body)}' "
        f"content-type='application/octet-stream'/></iq>"
    )
    srv.read_until(b"</iq>")
    put = re.search(r"<put url=['\"]([^'\"]+)['\"]", srv.buf.decode())
    if not put:
        raise SystemExit("graceful: no slot")
    url = urllib.parse.urlsplit(put.group(1).replace("&amp;", "&"))
    s = socket.create_connection((url.hostname, url.port), timeout=30)
    target = url.path + ("?" + url.query if url.query else "")
    s.sendall(
        (f"PUT {target} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Length: {len(body)}\r\n"
         f"Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n").encode()
    )
    half = len(body) // 2
    s.sendall(body[:half])
    print("graceful: ready (half the body sent)", flush=True)
    deadline = time.time() + 30
    while not os.path.exists(a.go):
        if time.time() > deadline:
            raise SystemExit("graceful: no go")
        time.sleep(0.05)
    time.sleep(0.5)  # the component has the signal by now
    s.sendall(body[half:])
    answer = b""
    while b"\r\n" not in answer:
        chunk = s.recv(4096)
        if not chunk:
            break
        answer += chunk
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "none"
    print(f"graceful: PUT finished after the signal -> {status}", flush=True)
    sys.exit(0 if status == "201" else 1)


if __name__ == "__main__":
    main()
