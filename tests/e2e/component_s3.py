#!/usr/bin/env python3
"""xmpp-upload-component with storage.kind = "s3" against a real S3 server (s3s-fs), for
ci/e2e.sh. Plays the XMPP server (as tests/e2e/hostile_stanzas.py does): requests a slot, PUTs
the file to the presigned URL with the slot's headers, GETs it back, then waits until the
component has recorded the upload (it asks the bucket once the PUT URL has expired) and checks
/metrics. Standard library only.

    component_s3.py --port PORT --secret-file FILE --ops-port OPS [--expect-deleted]
        [--stored-quota BYTES]
"""
import argparse
import os
import re
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile_stanzas import Server  # noqa: E402


def metrics(ops_port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{ops_port}/metrics", timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = int(v)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--secret-file", required=True)
    ap.add_argument("--ops-port", type=int, required=True)
    ap.add_argument("--component", default="upload.localhost")
    ap.add_argument("--wait", type=float, default=150)
    ap.add_argument("--expect-deleted", action="store_true")
    ap.add_argument("--stored-quota", type=int, default=0, help="the component's service.stored_quota")
    a = ap.parse_args()
    srv = Server(a.port, open(a.secret_file).read().rstrip("\n"), a.component, 30)
    srv.accept()
    body = os.urandom(4321)
    srv.send(
        f"<iq type='get' id='s3-1' from='alice@localhost/r' to='{a.component}'>"
        f"<request xmlns='urn:xmpp:http:upload:0' filename='s3 test.bin' size='{len(body)}' "
        f"content-type='application/octet-stream'/></iq>"
    )
    srv.read_until(b"</iq>")
    reply = srv.buf.decode()
    srv.buf = b""
    put = re.search(r"<put url=['\"]([^'\"]+)['\"]", reply)
    get = re.search(r"<get url=['\"]([^'\"]+)['\"]", reply)
    if not put or not get:
        raise SystemExit(f"component-s3: no slot in the reply ({reply[:200]!r})")
    unescape = lambda u: u.replace("&amp;", "&").replace("&apos;", "'").replace("&quot;", '"')
    headers = {"Content-Type": "application/octet-stream"}
    for name, value in re.findall(r"<header name=['\"]([^'\"]+)['\"]>([^<]*)</header>", reply):
        headers[name] = unescape(value)
    req = urllib.request.Request(unescape(put.group(1)), data=body, method="PUT", headers=headers)
    status = urllib.request.urlopen(req, timeout=30).status
    print(f"component-s3: PUT to the bucket -> {status}")
    got = urllib.request.urlopen(unescape(get.group(1)), timeout=30).read()
    print(f"component-s3: GET from the bucket -> {len(got)} bytes, identical: {got == body}")
    if got != body:
        raise SystemExit(1)
    deadline = time.time() + a.wait
    while time.time() < deadline:
        if metrics(a.ops_port).get("xmpp_upload_files_stored_total", 0) >= 1:
            break
        time.sleep(2)
    if a.stored_quota:
        # Recorded: the stored-bytes quota now counts it (4321 + this > the quota).
        size = a.stored_quota - len(body) + 1
        srv.send(
            f"<iq type='get' id='s3-2' from='alice@localhost/r' to='{a.component}'>"
            f"<request xmlns='urn:xmpp:http:upload:0' filename='big.bin' size='{size}'/></iq>"
        )
        srv.read_until(b"</iq>")
        reply = srv.buf.decode()
        srv.buf = b""
        refused = "resource-constraint" in reply
        print(f"component-s3: slot of {size} bytes over the stored quota -> "
              f"{'resource-constraint' if refused else 'NOT refused'}")
        if not refused:
            raise SystemExit(1)
    while a.expect_deleted and time.time() < deadline:
        if metrics(a.ops_port).get("xmpp_upload_files_deleted_total", 0) >= 1:
            break
        time.sleep(2)
    m = metrics(a.ops_port)
    print(
        "component-s3: recorded "
        f"{m.get('xmpp_upload_files_stored_total', 0)} upload(s), "
        f"{m.get('xmpp_upload_bytes_uploaded_total', 0)} bytes, "
        f"{m.get('xmpp_upload_files_deleted_total', 0)} deleted"
    )
    if m.get("xmpp_upload_bytes_uploaded_total") != len(body):
        raise SystemExit("component-s3: the upload was not recorded")
    if a.expect_deleted:
        if m.get("xmpp_upload_files_deleted_total", 0) < 1:
            raise SystemExit("component-s3: retention did not delete the object")
        try:
            urllib.request.urlopen(unescape(get.group(1)), timeout=30)
            raise SystemExit("component-s3: the object is still there after retention")
        except urllib.error.HTTPError as e:
            print(f"component-s3: GET after retention -> {e.code}")
    print("component-s3: passed")


if __name__ == "__main__":
    main()
