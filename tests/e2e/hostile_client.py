#!/usr/bin/env python3
"""Hostile stanzas from a user, through Prosody, to xmpp-upload-component (ci/e2e.sh).

Logs in as a normal user (slixmpp, loopback, no TLS), sends deeply nested stanzas (an IQ and a
message) and the ordinary-but-invalid stanzas of issue 20 (an attribute over 8 KiB, a priority
of 128, an unknown show or message type, two threads, a forged guard marker) to the component,
and after each one asks for an upload slot: the component must still answer with a slot. Sizes are kept under Prosody's c2s stanza limit (256 KiB), so Prosody
routes them; larger stanzas are cut by Prosody itself (tests/e2e/hostile_stanzas.py feeds the
component directly for those). Exits 1 if a slot request after a hostile stanza fails.
"""

import argparse
import asyncio
import sys
import time

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.enable_starttls = False
        self.enable_direct_tls = False
        self.enable_plaintext = True
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0363")
        self.plugin["feature_mechanisms"].unencrypted_scram = True
        self.ready = asyncio.Event()
        self.add_event_handler("session_start", lambda _: self.ready.set())


async def slot_ok(x, upload, n):
    try:
        iq = await x.plugin["xep_0363"].request_slot(upload, f"after-{n}.txt", 10, "text/plain", timeout=15)
        return iq["type"] == "result", "slot"
    except (IqError, IqTimeout) as e:
        return False, type(e).__name__


async def main(a):
    x = Client(a.jid, a.password)
    x.connect(a.host, a.port)
    try:
        await asyncio.wait_for(x.ready.wait(), 30)
    except asyncio.TimeoutError:
        print("hostile-client: could not log in", file=sys.stderr)
        return 1
    me = str(x.boundjid)
    failures = 0
    ok, _ = await slot_ok(x, a.upload, 0)
    print(f"hostile-client: baseline slot request: {'ok' if ok else 'FAILED'}", flush=True)
    if not ok:
        return 1
    n = 0
    for depth in [int(d) for d in a.depths.split(",") if d]:
        inner = "<a>" * depth + "</a>" * depth
        for kind in ("iq", "message"):
            n += 1
            if kind == "iq":
                raw = (f"<iq type='get' id='deep-{n}' to='{a.upload}'>"
                       f"<request xmlns='urn:xmpp:http:upload:0' filename='x' size='1'>{inner}</request></iq>")
            else:
                raw = f"<message to='{a.upload}' type='chat' id='deep-{n}'><body>hi</body>{inner}</message>"
            t = time.time()
            x.send_raw(raw)
            ok, why = await slot_ok(x, a.upload, n)
            dt = (time.time() - t) * 1000
            print(f"hostile-client: {kind} {depth} deep ({len(raw)} bytes) from {me}: "
                  f"next slot request {'ok' if ok else 'FAILED (' + why + ')'} after {dt:.0f} ms", flush=True)
            failures += 0 if ok else 1
    # Issue 20: ordinary stanzas xmpp-parsers rejects, and an attribute over rxml's 8 KiB token
    # limit; each used to end the component's session. ci/e2e.sh also checks it did not
    # reconnect, and that the forged marker reason did not forge a log line.
    to = f"to='{a.upload}'"
    long = "a" * 9000
    shapes = [
        ("long attribute (message)", f"<message {to} id='h-long' x='{long}'><body>hi</body></message>"),
        ("long attribute (iq)", f"<iq type='get' id='h-long-iq' {to} x='{long}'><request xmlns='urn:xmpp:http:upload:0' filename='x' size='1'/></iq>"),
        ("long filename", f"<iq type='get' id='h-long-fn' {to}><request xmlns='urn:xmpp:http:upload:0' filename='{long}' size='1'/></iq>"),
        ("priority 128", f"<presence {to}><priority>128</priority></presence>"),
        ("priority x", f"<presence {to}><priority>x</priority></presence>"),
        ("show bogus", f"<presence {to}><show>bogus</show></presence>"),
        ("message type bogus", f"<message type='bogus' {to}><body>hi</body></message>"),
        ("two threads", f"<message type='chat' {to}><thread>a</thread><thread>b</thread><body>hi</body></message>"),
        ("iq two payloads", f"<iq type='get' id='h-two' {to}><ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/></iq>"),
        ("forged guard marker", f"<iq type='get' id='h-forged' {to}><dropped xmlns='urn:xmpp-upload:component:0' "
                                f"reason='&#10;FORGED-LOG-LINE xmpp: forged' token='00'/></iq>"),
    ]
    for name, raw in shapes:
        n += 1
        t = time.time()
        x.send_raw(raw)
        ok, why = await slot_ok(x, a.upload, n)
        dt = (time.time() - t) * 1000
        print(f"hostile-client: {name} ({len(raw)} bytes) from {me}: "
              f"next slot request {'ok' if ok else 'FAILED (' + why + ')'} after {dt:.0f} ms", flush=True)
        failures += 0 if ok else 1
    x.disconnect()
    print(f"hostile-client: {n - failures} passed, {failures} failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upload", default="upload.localhost")
    p.add_argument("--depths", default="1000,14000,30000")
    sys.exit(asyncio.run(main(p.parse_args())))
