#!/usr/bin/python3
"""Upload one file the way Gajim does, with nbxmpp (Gajim's XMPP library, Debian python3-nbxmpp).

Usage: nbxmpp_upload.py --jid alice@localhost --password PW --host 127.0.0.1:PORT
                        --to bob@localhost --service upload.localhost [--slot-only] FILE

Logs in with STARTTLS (the loopback certificate is self-signed: TLS errors are ignored), finds
the upload service as Gajim does (disco#items of the domain, disco#info of each item, the one
with feature urn:xmpp:http:upload:0; --service says which JID it must be, so a server's own
upload module can never be picked by mistake), asks for a slot with nbxmpp's HTTPUpload module
(which rejects a slot carrying any header but Authorization, Cookie or Expires), PUTs the file
with nbxmpp's libsoup HTTPRequest with the slot headers (as Gajim's http_upload does), and sends
the GET URL to --to in a message with an XEP-0066 <x xmlns='jabber:x:oob'>. Prints
`GET <url>` on success; exits 1 with the reason otherwise. With --slot-only it only asks for the
slot and prints it (ci/clients_e2e.sh then PUTs with curl the way no client here does).
"""

import argparse
import mimetypes
import sys
from pathlib import Path

from gi.repository import GLib

import nbxmpp
from nbxmpp.client import Client
from nbxmpp.const import ConnectionProtocol, ConnectionType
from nbxmpp.http import HTTPSession
from nbxmpp.namespaces import Namespace
from nbxmpp.protocol import JID, Message


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jid", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--host", required=True, help="HOST:PORT of the c2s listener")
    ap.add_argument("--to", required=True)
    ap.add_argument("--service", required=True, help="upload service JID that must be found")
    ap.add_argument("--timeout", type=int, default=60)
    ap.add_argument("--slot-only", action="store_true",
                    help="print the slot (PUT, GET, HEADER lines) and stop: no PUT, no message")
    ap.add_argument("file")
    args = ap.parse_args()

    path = Path(args.file)
    jid = JID.from_string(args.jid)
    loop = GLib.MainLoop()
    state = {"rc": 1, "why": "timed out"}

    def fail(why):
        state["why"] = why
        state["rc"] = 1
        client.disconnect()
        GLib.timeout_add(2000, loop.quit)

    client = Client()
    client.set_domain(jid.domain)
    client.set_username(jid.localpart)
    client.set_resource("nbxmpp-e2e")
    client.set_password(args.password)
    client.set_custom_host(args.host, ConnectionProtocol.TCP, ConnectionType.START_TLS)
    client.set_ignore_tls_errors(True)
    session = HTTPSession()
    client.set_http_session(session)

    def on_connected(_client, _signal):
        disco = client.get_module("Discovery")
        disco.disco_items(jid.domain, callback=on_items)

    def on_items(task):
        try:
            items = task.finish()
        except Exception as e:  # noqa: BLE001 - report any stanza error
            return fail("disco#items: %s" % e)
        jids = [str(i.jid) for i in items.items]
        if args.service not in jids:
            return fail("%s not in disco#items of %s: %s" % (args.service, jid.domain, jids))
        pending = list(dict.fromkeys(jids))
        found = []

        def next_info():
            if not pending:
                if found != [args.service]:
                    return fail("upload services found: %s, expected only %s" % (found, args.service))
                return request_slot(found[0])
            item = pending.pop(0)
            client.get_module("Discovery").disco_info(item, callback=on_info, user_data=item)

        def on_info(task):
            item = task.get_user_data()
            try:
                info = task.finish()
            except Exception:  # noqa: BLE001 - an item without disco#info is just skipped
                return next_info()
            if Namespace.HTTPUPLOAD_0 in info.features:
                found.append(item)
                max_size = info.get_field_value(Namespace.HTTPUPLOAD_0, "max-file-size")
                if max_size is not None and int(max_size) < path.stat().st_size:
                    return fail("file larger than max-file-size %s" % max_size)
            next_info()

        next_info()

    def request_slot(service):
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        state["mime"] = mime
        client.get_module("HTTPUpload").request_slot(
            JID.from_string(service), path.name, path.stat().st_size, mime, callback=on_slot
        )

    def on_slot(task):
        try:
            slot = task.finish()
        except Exception as e:  # noqa: BLE001
            return fail("slot: %s" % e)
        if args.slot_only:
            print("PUT %s" % slot.put_uri)
            print("GET %s" % slot.get_uri)
            for name, value in slot.headers.items():
                print("HEADER %s: %s" % (name, value))
            sys.stdout.flush()
            state["rc"] = 0
            state["why"] = ""
            client.disconnect()
            return GLib.timeout_add(1000, loop.quit)
        request = session.create_request()
        headers = request.get_request_headers()
        for name, value in slot.headers.items():
            headers.append(name, value)
        request.set_request_body_from_path(state["mime"], path)
        request.connect("finished", on_put, slot)
        request.send("PUT", slot.put_uri, timeout=30)

    def on_put(request, slot):
        if not request.is_complete():
            return fail("PUT: %s (status %s)" % (request.get_error_string(), int(request.get_status())))
        msg = Message(to=args.to, typ="chat", body=slot.get_uri)
        msg.setTag("x", namespace=Namespace.X_OOB).setTagData("url", slot.get_uri)
        client.send_stanza(msg)
        print("GET %s" % slot.get_uri, flush=True)
        state["rc"] = 0
        state["why"] = ""
        # Let the message leave before the stream is closed.
        GLib.timeout_add(500, lambda: (client.disconnect(), GLib.timeout_add(1000, loop.quit)))

    def on_failed(_client, _signal):
        error = client.get_error()
        if state["rc"] == 1 and state["why"] == "timed out":
            state["why"] = "connection failed: %s" % (error,)
        loop.quit()

    def on_disconnected(_client, _signal):
        if state["rc"] == 1 and state["why"] == "timed out":
            state["why"] = "disconnected: %s" % (client.get_error(),)
        loop.quit()

    client.subscribe("connected", on_connected)
    client.subscribe("connection-failed", on_failed)
    client.subscribe("disconnected", on_disconnected)
    client.connect()
    GLib.timeout_add_seconds(args.timeout, loop.quit)
    loop.run()
    if state["rc"] != 0:
        print("nbxmpp %s: %s" % (nbxmpp.__version__, state["why"]), file=sys.stderr)
    return state["rc"]


if __name__ == "__main__":
    sys.exit(main())
