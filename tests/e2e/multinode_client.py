#!/usr/bin/env python3
"""Client side of ci/multinode.sh (slixmpp + aiohttp, loopback ejabberd without TLS).

Each subcommand prints its checks as `[ ok ]`/`[FAIL]` lines and machine-readable `KEY=value`
lines for the script, and exits 1 if a check failed.

  quota     N clients log in and send R slot requests each, all at once; the admitted bytes are
            summed per user and in total and compared with the quotas.
  upload    slixmpp's own XEP-0363 upload (discovery, slot, PUT to S3) and a p1 upload by MD5
            with its size; prints the file ID, the stable link and the object key.
  resolve   asks for a download URL for a file ID T times and checks the bytes each time.
  slowput   takes a slot and PUTs its body slowly (a flag file tells it to go on or to abort),
            for the kill -9 check.
  requests  T slot requests in sequence (all must be answered).
"""

import argparse
import asyncio
import base64
import hashlib
import os
import sys
import time
import xml.etree.ElementTree as ET

import aiohttp
import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

NS0 = "urn:xmpp:http:upload:0"
P1 = "p1:http-file-transfer"
IQ_TIMEOUT = 20


class Checks:
    def __init__(self):
        self.failed = []

    def __call__(self, ok, what):
        print(f"  [{' ok ' if ok else 'FAIL'}] {what}", flush=True)
        if not ok:
            self.failed.append(what)
        return ok


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.enable_starttls = False
        self.enable_direct_tls = False
        self.enable_plaintext = True
        for p in ("xep_0030", "xep_0128", "xep_0363"):
            self.register_plugin(p)
        self.plugin["feature_mechanisms"].unencrypted_scram = True
        self.ready = asyncio.Event()
        self.add_event_handler("session_start", self._start)

    async def _start(self, _event):
        self.send_presence()
        self.ready.set()

    async def raw_iq(self, to, itype, payload_xml, timeout=IQ_TIMEOUT):
        iq = self.make_iq(ito=to, itype=itype)
        iq.append(ET.fromstring(payload_xml))
        return await iq.send(timeout=timeout)


async def login(jid, args):
    x = Client(jid, args.password_text)
    x.connect(args.host, args.port)
    await asyncio.wait_for(x.ready.wait(), 30)
    return x


async def slot(x, upload, name, size, ctype="application/octet-stream"):
    """(url put, url get, headers) or the error condition."""
    try:
        resp = await x.raw_iq(
            upload, "get",
            f"<request xmlns='{NS0}' filename='{name}' size='{size}' content-type='{ctype}'/>")
    except IqError as e:
        return None, e.iq["error"]["condition"]
    s = resp.xml.find(f"{{{NS0}}}slot")
    put = s.find(f"{{{NS0}}}put")
    headers = {h.get("name"): h.text for h in put.findall(f"{{{NS0}}}header")}
    return (put.get("url"), s.find(f"{{{NS0}}}get").get("url"), headers), None


async def cmd_quota(args, check):
    users = [f"{args.prefix}{i}@{args.domain}" for i in range(1, args.clients + 1)]
    clients = await asyncio.gather(*(login(u, args) for u in users))
    t = time.monotonic()

    async def one(x, i):
        got, cond = await slot(x, args.upload, f"q{i}.bin", args.size)
        return str(x.boundjid.bare), got is not None, cond

    results = await asyncio.gather(*(
        one(x, i) for i in range(args.rounds) for x in clients))
    elapsed = time.monotonic() - t
    per_user = {}
    refused = {}
    for user, ok, cond in results:
        if ok:
            per_user[user] = per_user.get(user, 0) + args.size
        else:
            refused[cond] = refused.get(cond, 0) + 1
    total = sum(per_user.values())
    n = len(results)
    print(f"  {n} slot requests from {len(clients)} clients in {elapsed:.2f} s: "
          f"{total // args.size} admitted, refused {refused}", flush=True)
    check(total <= args.global_quota,
          f"admitted {total} bytes in all <= the global quota {args.global_quota}")
    check(all(v <= args.user_quota for v in per_user.values()),
          f"admitted per user <= {args.user_quota}: {sorted(per_user.values())}")
    check(total == min(args.global_quota, args.user_quota * len(clients)) // args.size * args.size,
          f"the quota is used up, not undercounted ({total} bytes)")
    check(set(refused) <= {"resource-constraint"}, f"refusals are resource-constraint: {refused}")
    print(f"ADMITTED={total}")
    for x in clients:
        x.disconnect()


async def p1_upload(x, args, session, data, name):
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    resp = await x.raw_iq(args.upload, "set",
                          f"<query xmlns='{P1}' md5='{md5}' size='{len(data)}' name='{name}'/>")
    q = resp.xml.find(f"{{{P1}}}query")
    headers = {h.get("name"): h.get("value") for h in q.iter(f"{{{P1}}}header")}
    async with session.put(q.get("upload"), data=data, headers=headers) as r:
        status = r.status
    return q, status


async def cmd_upload(args, check):
    x = await login(args.jid, args)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            data = os.urandom(args.size)
            path = os.path.join(args.workdir, "slix-upload.bin")
            with open(path, "wb") as f:
                f.write(data)
            t = time.monotonic()
            url = await x.plugin["xep_0363"].upload_file(
                path, domain=args.upload, content_type="application/octet-stream", timeout=IQ_TIMEOUT)
            async with session.get(url) as r:
                body = await r.read()
                status = r.status
            check(status == 200 and body == data,
                  f"slixmpp upload_file through S3, GET {status}, byte-identical: {body == data} "
                  f"({len(data)} bytes, {time.monotonic() - t:.2f} s)")
            data = os.urandom(args.size)
            q, status = await p1_upload(x, args, session, data, "p1-file.bin")
            check(status in (200, 201), f"p1 upload by MD5 and size: PUT {status}")
            with open(os.path.join(args.workdir, "p1-file.bin"), "wb") as f:
                f.write(data)
            print(f"FILEID={q.get('fileid')}")
            print(f"DOWNLOAD={q.get('download')}")
    finally:
        x.disconnect()


async def cmd_resolve(args, check):
    x = await login(args.jid, args)
    with open(args.file, "rb") as f:
        data = f.read()
    ok = 0
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            for _ in range(args.times):
                resp = await x.raw_iq(args.upload, "get", f"<query xmlns='{P1}' fileid='{args.fileid}'/>")
                d = resp.xml.find(f"{{{P1}}}query")
                async with session.get(d.get("download")) as r:
                    if r.status == 200 and await r.read() == data:
                        ok += 1
    finally:
        x.disconnect()
    check(ok == args.times, f"file ID resolved and downloaded byte-identical {ok}/{args.times} times")


async def cmd_slowput(args, check):
    """PUTs `size` bytes in chunks; after half, waits for the flag file: 'go' or 'abort'."""
    x = await login(args.jid, args)
    data = os.urandom(args.size)
    try:
        got, cond = await slot(x, args.upload, "big.bin", args.size)
        if not check(got is not None, f"slot for the slow upload ({cond or 'issued'})"):
            return
        put, get, headers = got
        print(f"GET={get}", flush=True)

        async def body():
            half = len(data) // 2
            step = 64 * 1024
            for i in range(0, half, step):
                yield data[i:min(i + step, half)]
                await asyncio.sleep(0.02)
            with open(args.flag + ".half", "w") as f:
                f.write("half")
            while not os.path.exists(args.flag):
                await asyncio.sleep(0.05)
            with open(args.flag) as f:
                what = f.read().strip()
            if what == "abort":
                raise ConnectionAbortedError("aborted on purpose")
            for i in range(half, len(data), step):
                yield data[i:i + step]

        headers = dict(headers)
        headers["Content-Type"] = "application/octet-stream"
        headers["Content-Length"] = str(len(data))
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as s:
                async with s.put(put, data=body(), headers=headers) as r:
                    status = r.status
        except (ConnectionAbortedError, aiohttp.ClientError) as e:
            status = f"aborted ({type(e).__name__})"
        print(f"PUT_STATUS={status}", flush=True)
        with open(os.path.join(args.workdir, "slowput.bin"), "wb") as f:
            f.write(data)
    finally:
        x.disconnect()


async def cmd_requests(args, check):
    x = await login(args.jid, args)
    ok = 0
    try:
        for i in range(args.times):
            try:
                got, _ = await slot(x, args.upload, f"r{i}.bin", 10, "text/plain")
                ok += got is not None
            except IqTimeout:
                pass
    finally:
        x.disconnect()
    check(ok == args.times, f"{ok}/{args.times} slot requests answered with a slot")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["quota", "upload", "resolve", "slowput", "requests"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--domain", default="localhost")
    p.add_argument("--upload", default="upload.localhost")
    p.add_argument("--jid", default="alice@localhost")
    p.add_argument("--password-file", required=True, help="the users' password (kept off the command line)")
    p.add_argument("--prefix", default="user")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--size", type=int, default=100_000)
    p.add_argument("--user-quota", type=int, default=0)
    p.add_argument("--global-quota", type=int, default=0)
    p.add_argument("--fileid")
    p.add_argument("--file")
    p.add_argument("--times", type=int, default=10)
    p.add_argument("--flag")
    p.add_argument("--workdir", default=".")
    args = p.parse_args()
    with open(args.password_file) as f:
        args.password_text = f.read().strip()
    check = Checks()
    handler = {"quota": cmd_quota, "upload": cmd_upload, "resolve": cmd_resolve,
               "slowput": cmd_slowput, "requests": cmd_requests}[args.command]
    try:
        asyncio.run(handler(args, check))
    except (IqError, IqTimeout, asyncio.TimeoutError) as e:
        check(False, f"unexpected XMPP failure: {e!r}")
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
