#!/usr/bin/env python3
"""End-to-end client for ci/e2e.sh (slixmpp + aiohttp, loopback Prosody without TLS).

Logs in, finds the upload component through disco#items/disco#info, uploads a file with
slixmpp's own XEP-0363 plugin and downloads it; then a legacy-dialect request, an oversize
request (file-too-large), a PUT of the wrong size (413), the p1:http-file-transfer file-ID flow,
the same basic checks against Prosody's own mod_http_file_share, and finally the benchmark:
N sequential slot requests through each service. Exits 1 if any check fails.
"""

import argparse
import asyncio
import base64
import hashlib
import logging
import os
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

import aiohttp
import slixmpp
from slixmpp import JID
from slixmpp.exceptions import IqError, IqTimeout

NS0 = "urn:xmpp:http:upload:0"
NS_LEGACY = "urn:xmpp:http:upload"
P1 = "p1:http-file-transfer"
IQ_TIMEOUT = 15


class Checks:
    def __init__(self):
        self.failed = []
        self.count = 0

    def __call__(self, ok, what):
        self.count += 1
        print(f"  [{' ok ' if ok else 'FAIL'}] {what}", flush=True)
        if not ok:
            self.failed.append(what)
        return ok


def section(title):
    print(f"\n=== {title}", flush=True)


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.enable_starttls = False
        self.enable_direct_tls = False
        self.enable_plaintext = True
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0128")
        self.register_plugin("xep_0363")
        self.plugin["feature_mechanisms"].unencrypted_scram = True
        self.ready = asyncio.Event()
        self.auth_failed = asyncio.Event()
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("failed_all_auth", lambda _: self.auth_failed.set())

    async def _start(self, _event):
        self.send_presence()
        self.ready.set()

    async def raw_iq(self, to, itype, payload_xml):
        iq = self.make_iq(ito=to, itype=itype)
        iq.append(ET.fromstring(payload_xml))
        return await iq.send(timeout=IQ_TIMEOUT)


def find(elem, local):
    """First descendant (or self) with this local name, in any namespace."""
    for e in elem.iter():
        if e.tag.rsplit("}", 1)[-1] == local:
            return e
    return None


async def http(session, method, url, data=None, headers=None, expect100=False):
    async with session.request(method, url, data=data, headers=headers or {}, expect100=expect100) as r:
        body = await r.read()
        return r.status, r.headers, body


async def upload_checks(x, args, check, session):
    upload = JID(args.upload)
    section("disco: find the upload service")
    items = await x.plugin["xep_0030"].get_items(jid=args.domain, timeout=IQ_TIMEOUT)
    listed = [str(i[0]) for i in items["disco_items"]["items"]]
    check(args.upload in listed, f"disco#items of {args.domain} lists {args.upload} ({', '.join(listed)})")
    info = await x.plugin["xep_0030"].get_info(jid=upload, timeout=IQ_TIMEOUT)
    identities = info["disco_info"]["identities"]
    features = info["disco_info"]["features"]
    check(any(i[0] == "store" and i[1] == "file" for i in identities), "identity store/file")
    check(NS0 in features and NS_LEGACY in features and P1 in features, "features :0, legacy and p1:http-file-transfer")
    max_size = None
    for form in info["disco_info"].iterables:
        values = form["values"]
        if values.get("FORM_TYPE") == [NS0]:
            max_size = int(values["max-file-size"])
    check(max_size == args.max_file_size, f"max-file-size in the :0 form: {max_size}")

    section("slixmpp xep_0363.upload_file (discovery, slot, PUT) then GET")
    data = os.urandom(123_457)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "e2e test ü.txt")
        with open(path, "wb") as f:
            f.write(data)
        get_url = await x.plugin["xep_0363"].upload_file(path, domain=upload, timeout=IQ_TIMEOUT)
    check(str(x.plugin["xep_0363"].upload_service) == args.upload, f"slixmpp chose {x.plugin['xep_0363'].upload_service}")
    check(get_url.startswith(args.base_url), "the GET URL is on our HTTP store")
    status, headers, body = await http(session, "GET", get_url)
    check(status == 200 and body == data, f"GET: {status}, {len(body)} bytes, same bytes: {body == data}")
    check(headers.get("Content-Type") == "text/plain", f"Content-Type: {headers.get('Content-Type')}")
    check(headers.get("X-Content-Type-Options") == "nosniff", "X-Content-Type-Options: nosniff")
    check("sandbox" in headers.get("Content-Security-Policy", ""), f"CSP: {headers.get('Content-Security-Policy')}")
    cd = headers.get("Content-Disposition", "")
    # The library's Disposition: `inline` carries no file name (only attachments do).
    check(cd == "inline" or (cd.startswith("inline") and "filename*=UTF-8''e2e%20test%20%C3%BC.txt" in cd), f"Content-Disposition: {cd}")
    status, headers, _ = await http(session, "OPTIONS", get_url)
    check(status == 204 and headers.get("Access-Control-Allow-Origin") == "*", f"OPTIONS: {status}, CORS {headers.get('Access-Control-Allow-Origin')}")

    section("legacy dialect (urn:xmpp:http:upload), raw IQ")
    data = os.urandom(5000)
    resp = await x.raw_iq(upload, "get", f"<request xmlns='{NS_LEGACY}'><filename>legacy.txt</filename><size>{len(data)}</size><content-type>text/plain</content-type></request>")
    slot = resp.xml.find(f"{{{NS_LEGACY}}}slot")
    if check(slot is not None, "a legacy <slot/> in the legacy namespace"):
        put_url = slot.find(f"{{{NS_LEGACY}}}put").text
        get_url = slot.find(f"{{{NS_LEGACY}}}get").text
        status, _, _ = await http(session, "PUT", put_url, data, {"Content-Type": "text/plain"})
        check(status == 201, f"PUT: {status}")
        status, _, body = await http(session, "GET", get_url)
        check(status == 200 and body == data, f"GET: {status}, same bytes: {body == data}")

    section("oversize request via request_slot")
    try:
        await x.plugin["xep_0363"].request_slot(upload, "big.bin", args.max_file_size + 1, "application/octet-stream", timeout=IQ_TIMEOUT)
        check(False, "an oversize request must fail")
    except IqError as e:
        too_large = find(e.iq.xml, "file-too-large")
        max_el = find(too_large, "max-file-size") if too_large is not None else None
        check(e.iq["error"]["condition"] == "not-acceptable", f"error condition {e.iq['error']['condition']}")
        check(too_large is not None and too_large.tag == f"{{{NS0}}}file-too-large", "<file-too-large/> in urn:xmpp:http:upload:0")
        check(max_el is not None and max_el.text == str(args.max_file_size), f"<max-file-size>{max_el.text if max_el is not None else None}</max-file-size>")

    section("PUT with the wrong size")
    slot_iq = await x.plugin["xep_0363"].request_slot(upload, "short.bin", 1000, "application/octet-stream", timeout=IQ_TIMEOUT)
    status, _, _ = await http(session, "PUT", slot_iq["http_upload_slot"]["put"]["url"], os.urandom(999), {"Content-Type": "application/octet-stream"})
    check(status == 413, f"999 bytes to a 1000-byte slot: {status} (expected 413)")
    status, _, _ = await http(session, "PUT", slot_iq["http_upload_slot"]["put"]["url"], os.urandom(1001), {"Content-Type": "application/octet-stream"}, expect100=True)
    check(status == 413, f"1001 bytes with Expect: 100-continue: {status} (expected 413, before the body)")

    section("a larger file with Expect: 100-continue")
    data = os.urandom(3 * 1024 * 1024 + 5)
    slot_iq = await x.plugin["xep_0363"].request_slot(upload, "big.bin", len(data), "application/octet-stream", timeout=IQ_TIMEOUT)
    slot = slot_iq["http_upload_slot"]
    status, _, _ = await http(session, "PUT", slot["put"]["url"], data, {"Content-Type": "application/octet-stream"}, expect100=True)
    check(status == 201, f"PUT of {len(data)} bytes: {status}")
    status, headers, body = await http(session, "GET", slot["get"]["url"])
    check(status == 200 and body == data, f"GET: {status}, same bytes: {body == data}")
    check(headers.get("Content-Disposition", "").startswith("attachment"), "application/octet-stream is served as an attachment")
    status, _, _ = await http(session, "PUT", slot["put"]["url"], data, {"Content-Type": "application/octet-stream"})
    check(status == 409, f"the same PUT again: {status} (expected 409)")

    section("p1:http-file-transfer: upload IQ with md5, PUT with Content-MD5, download IQ, GET")
    data = os.urandom(77_777)
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    resp = await x.raw_iq(upload, "set", f"<query xmlns='{P1}' md5='{md5}'/>")
    q = resp.xml.find(f"{{{P1}}}query")
    if check(q is not None and q.get("upload") and q.get("fileid"), "upload result with upload URL and file ID"):
        headers = {h.get("name"): h.get("value") for h in q.iter(f"{{{P1}}}header")}
        check(headers.get("Content-MD5") == md5, "the result asks for Content-MD5")
        status, _, _ = await http(session, "PUT", q.get("upload"), os.urandom(len(data)), headers)
        check(status == 400, f"PUT of other bytes with that Content-MD5: {status} (expected 400)")
        status, _, _ = await http(session, "PUT", q.get("upload"), data, headers)
        check(status == 201, f"PUT with Content-MD5: {status}")
        resp = await x.raw_iq(upload, "get", f"<query xmlns='{P1}' fileid='{q.get('fileid')}'/>")
        d = resp.xml.find(f"{{{P1}}}query")
        if check(d is not None and d.get("download"), "download result with a URL"):
            status, _, body = await http(session, "GET", d.get("download"))
            check(status == 200 and body == data, f"GET: {status}, same bytes: {body == data}")


async def answers_again(x, upload, tries=20):
    """Whether the component answers disco#info, retrying while it reconnects."""
    for _ in range(tries):
        try:
            await x.plugin["xep_0030"].get_info(jid=upload, timeout=2, cached=False)
            return True
        except (IqError, IqTimeout):
            await asyncio.sleep(0.25)
    return False


async def resilience_checks(x, args, check):
    upload = JID(args.upload)
    section("resilience: stanzas the component's XMPP library cannot parse")
    # tokio-xmpp 6 ends its stream on such a stanza; the component must come back by itself.
    m = x.make_message(mto=upload, mbody="hello")
    m.xml.set("type", "bogus")
    m.send()
    await asyncio.sleep(0.3)
    check(await answers_again(x, upload), "a <message type='bogus'/> from a user: the service answers again")
    try:
        await x.raw_iq(upload, "get", "<ping xmlns='urn:xmpp:ping'/>")
        check(True, "an XEP-0199 ping is answered")
    except (IqError, IqTimeout) as e:
        check(False, f"an XEP-0199 ping: {e!r}")
    iq = x.make_iq(ito=upload, itype="get")
    iq.xml.append(ET.fromstring("<query xmlns='jabber:iq:version'/>"))
    try:
        await iq.send(timeout=5)
        check(False, "an unknown IQ payload must get an error")
    except IqError as e:
        check(e.iq["error"]["condition"] == "service-unavailable", f"an unknown IQ payload: {e.iq['error']['condition']}")
    except IqTimeout:
        check(False, "an unknown IQ payload: no answer")


async def quick_checks(x, args, check, session):
    """After a restart of Prosody: the component is back and an upload works."""
    upload = JID(args.upload)
    section("after a Prosody restart: the component reconnected")
    check(await answers_again(x, upload), "disco#info answered")
    data = os.urandom(3000)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "after-restart.bin")
        with open(path, "wb") as f:
            f.write(data)
        get_url = await x.plugin["xep_0363"].upload_file(path, domain=upload, timeout=IQ_TIMEOUT)
    status, _, body = await http(session, "GET", get_url)
    check(status == 200 and body == data, f"upload_file and GET: {status}, same bytes: {body == data}")


async def reference_checks(x, args, check, session):
    share = JID(args.share)
    section(f"reference: Prosody mod_http_file_share ({args.share})")
    data = os.urandom(4321)
    slot_iq = await x.plugin["xep_0363"].request_slot(share, "ref.bin", len(data), "application/octet-stream", timeout=IQ_TIMEOUT)
    put = slot_iq["http_upload_slot"]["put"]
    headers = {h["name"]: h["value"] for h in put["headers"]}
    headers["Content-Type"] = "application/octet-stream"
    status, _, _ = await http(session, "PUT", put["url"], data, headers)
    check(status == 201, f"Prosody PUT: {status}")
    status, _, body = await http(session, "GET", slot_iq["http_upload_slot"]["get"]["url"])
    check(status == 200 and body == data, f"Prosody GET: {status}, same bytes: {body == data}")
    slot_iq = await x.plugin["xep_0363"].request_slot(share, "ref-short.bin", 1000, "application/octet-stream", timeout=IQ_TIMEOUT)
    put = slot_iq["http_upload_slot"]["put"]
    headers = {h["name"]: h["value"] for h in put["headers"]}
    headers["Content-Type"] = "application/octet-stream"
    status, _, _ = await http(session, "PUT", put["url"], os.urandom(999), headers)
    check(status == 413, f"Prosody, 999 bytes to a 1000-byte slot: {status}")


async def bench(x, services, n, blocks=5, warmup=20):
    """Times n sequential slot requests (each awaited before the next is sent) per service.

    The services take turns in `blocks` blocks of n/blocks requests, so that a change in the
    machine's load (other jobs on a shared CI box) falls on both alike. Returns requests/s.
    """
    plugin = x.plugin["xep_0363"]
    jids = [JID(s) for s in services]
    for jid in jids:
        for i in range(warmup):
            await plugin.request_slot(jid, f"warm-{i}.bin", 1024, "application/octet-stream", timeout=IQ_TIMEOUT)
    elapsed = [0.0] * len(jids)
    done = [0] * len(jids)
    per_block = max(1, n // blocks)
    while min(done) < n:
        for k, jid in enumerate(jids):
            count = min(per_block, n - done[k])
            start = time.perf_counter()
            for i in range(done[k], done[k] + count):
                await plugin.request_slot(jid, f"bench-{i}.bin", 1024, "application/octet-stream", timeout=IQ_TIMEOUT)
            elapsed[k] += time.perf_counter() - start
            done[k] += count
    return [n / e for e in elapsed]


async def main(args):
    check = Checks()
    x = Client(args.jid, args.password)
    x.connect(args.host, args.port)
    ready = asyncio.ensure_future(x.ready.wait())
    failed = asyncio.ensure_future(x.auth_failed.wait())
    done, _ = await asyncio.wait([ready, failed], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        print("client: could not log in", file=sys.stderr)
        return 1
    print(f"logged in as {x.boundjid}", flush=True)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            if args.quick:
                await quick_checks(x, args, check, session)
            else:
                await upload_checks(x, args, check, session)
                await reference_checks(x, args, check, session)
                await resilience_checks(x, args, check)
        if args.bench > 0 and not args.quick:
            section(f"benchmark: {args.bench} sequential slot requests (round trips) per service, in 5 alternating blocks")
            ours, prosody = await bench(x, [args.upload, args.share], args.bench)
            print(f"  xmpp-upload component ({args.upload}): {ours:.0f} requests/s", flush=True)
            print(f"  Prosody mod_http_file_share ({args.share}): {prosody:.0f} requests/s", flush=True)
            print(f"  ratio (ours / Prosody): {ours / prosody:.2f}", flush=True)
            print(f"BENCH ours={ours:.1f} prosody={prosody:.1f} ratio={ours / prosody:.3f}", flush=True)
    except (IqError, IqTimeout) as e:
        check(False, f"unexpected IQ failure: {e!r}")
    finally:
        x.disconnect()
    if check.failed:
        print(f"\n{len(check.failed)} of {check.count} checks FAILED:")
        for f in check.failed:
            print(f"  - {f}")
        return 1
    print(f"\nclient: all {check.count} checks passed", flush=True)
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--domain", default="localhost")
    p.add_argument("--upload", default="upload.localhost")
    p.add_argument("--share", default="share.localhost")
    p.add_argument("--base-url", required=True)
    p.add_argument("--max-file-size", type=int, required=True)
    p.add_argument("--bench", type=int, default=500)
    p.add_argument("--quick", action="store_true", help="only check that the component answers and an upload works")
    p.add_argument("--debug", action="store_true")
    a = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if a.debug else logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main(a)))
