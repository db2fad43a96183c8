#!/usr/bin/env python3
"""What a client really did, read from the logs of a ci/clients_e2e.sh run (standard library only).

NAME_PREFIX is the start of the file's name as the client sent it (clients rewrite the rest).

  client_evidence.py put RELAY.jsonl NAME_PREFIX
      the PUT of the file as tests/e2e/http_trace_proxy.py recorded it, in one line:
      "HTTP/1.1, Content-Type image/png, Content-Length" (or "no Content-Type", "chunked", …)
  client_evidence.py tls prosody PROSODY.log RESOURCE_PREFIX
  client_evidence.py tls ejabberd EJABBERD.log NAME_PREFIX
      how the client's c2s stream was secured: "STARTTLS (TLSv1.3 …)" or "plain TCP"
  client_evidence.py slot-request EJABBERD.log NAME_PREFIX
      the slot request for the file exactly as the client sent it (ejabberd's debug log keeps
      the raw bytes of every stanza it receives); empty output if there is none
  client_evidence.py declared-type ejabberd EJABBERD.log NAME_PREFIX
  client_evidence.py declared-type component COMPONENT.log NAME_PREFIX
      the content type the client declared in its slot request: the raw attribute from
      ejabberd's log, or the type the component logged with "slot issued" (Prosody does not log
      stanzas); "none" when the request named no type, empty output if there is no request
  client_evidence.py s3-object S3S_FS_ROOT BUCKET KEY_PREFIX NAME_PREFIX
      the objects s3s-fs stores for the file (keys below KEY_PREFIX whose last segment starts
      with NAME_PREFIX), one line each: "PATH<TAB>CONTENT-TYPE" ("-" when none is stored), the
      type read from the object's metadata sidecar (.bucket-B64.object-B64.metadata.json)
  client_evidence.py s3-leftovers S3S_FS_ROOT
      s3s-fs's temporary files (.tmp.N.internal.part: a PUT still being written or cut off), one
      path a line
"""

import base64
import json
import os
import re
import sys
from urllib.parse import unquote


def put(path, prefix):
    puts = []
    for line in open(path, encoding="utf-8"):
        e = json.loads(line)
        last = unquote(e["path"].split("?")[0].rstrip("/").rsplit("/", 1)[-1])
        if e["method"] == "PUT" and last.startswith(prefix):
            puts.append(e)
    if not puts:
        return "no PUT seen"
    e = puts[-1]
    h = {k.lower(): v for k, v in e["headers"]}
    out = [e["version"]]
    out.append("Content-Type " + h["content-type"] if "content-type" in h else "no Content-Type")
    if "content-length" in h:
        out.append("Content-Length")
    if "chunked" in h.get("transfer-encoding", "").lower():
        out.append("chunked")
    if "expect" in h:
        out.append("Expect: " + h["expect"])
    extra = sorted(k for k in h if k in ("authorization", "cookie", "expires"))
    if extra:
        out.append("slot headers " + "/".join(extra))
    return ", ".join(out)


def erlang_binary(s):
    """The bytes of an Erlang binary literal as ejabberd's logger prints it (<<"...">>), as text.

    The logger prints each byte of the binary as a Latin-1 character (a UTF-8 "é" becomes "Ã©"
    in the log file) or as an octal escape: mapping the characters back to bytes gives the
    client's UTF-8. Should a logger print real Unicode characters instead, that mapping fails
    and the text is taken as it stands.
    """
    raw = bytearray()
    i = 0
    simple = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'"}
    text = []
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            nxt = s[i + 1]
            if nxt in simple:
                text.append(simple[nxt])
                i += 2
                continue
            m = re.match(r"[0-7]{1,3}", s[i + 1:])
            if m:
                text.append(chr(int(m.group(0), 8)))
                i += 1 + len(m.group(0))
                continue
        text.append(c)
        i += 1
    text = "".join(text)
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


RECEIVED = re.compile(r'\((tls|tcp)\|[^)]*\) Received XML on stream = <<"(.*)">>')


def ejabberd_request(path, prefix):
    """(transport, raw stanza) of the last slot request for a name starting with PREFIX
    received on a c2s stream."""
    found = None
    for line in open(path, encoding="utf-8", errors="replace"):
        m = RECEIVED.search(line)
        if not m or "<request" not in m.group(2):
            continue
        raw = erlang_binary(m.group(2))
        # One read may carry more than the IQ (profanity's <r xmlns='urn:xmpp:sm:3'/> follows
        # it): keep the <iq> element holding the request.
        iq = re.search(r"<iq\b(?:(?!<iq\b).)*?<request\b.*?</iq>", raw, re.S)
        if iq is None:
            continue
        raw = iq.group(0)
        if re.search(r"(filename=[\"']|<filename>)" + re.escape(prefix), raw):
            found = (m.group(1), raw)
    return found


def tls_prosody(path, prefix):
    lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    sessions = [
        l.split()[0] for l in lines if "Resource bound: alice@localhost/" + prefix in l
    ]
    if not sessions:
        return "no session"
    sid = sessions[-1]
    for l in lines:
        if l.split()[:1] == [sid] and "Stream encrypted" in l:
            return "STARTTLS " + l.split("Stream encrypted", 1)[1].strip()
    return "plain TCP"


def declared_type(kind, path, prefix):
    if kind == "ejabberd":
        r = ejabberd_request(path, prefix)
        if r is None:
            return None
        m = re.search(r"<request\b[^>]*?\bcontent-type=([\"'])(.*?)\1", r[1], re.S)
        if m is None:
            m = re.search(r"<content-type>(.*?)</content-type>", r[1], re.S)
            return m.group(1) if m else "none"
        return m.group(2)
    found = None
    # "slot issued to JID (NS): [PREFIX/]ID/NAME, N bytes[, TYPE]": NAME is the key's last segment.
    issued = re.compile(
        r"slot issued to \S+ \([^)]*\): (?:[^/,]*/)+([^/]*?), (?:\d+ bytes|size not declared)(?:, (.*))?$"
    )
    for line in open(path, encoding="utf-8", errors="replace"):
        m = issued.search(line.rstrip("\n"))
        if m and m.group(1).startswith(prefix):
            found = m.group(2) or "none"
    return found


def b64(s):
    return base64.urlsafe_b64encode(s.encode("utf-8")).decode("ascii").rstrip("=")


def s3_objects(root, bucket, key_prefix, prefix):
    out = []
    base = os.path.join(root, bucket)
    for dirpath, _, files in os.walk(os.path.join(base, key_prefix)):
        for name in files:
            if not name.startswith(prefix):
                continue
            path = os.path.join(dirpath, name)
            key = os.path.relpath(path, base)
            ctype = "-"
            meta = os.path.join(root, ".bucket-%s.object-%s.metadata.json" % (b64(bucket), b64(key)))
            if os.path.exists(meta):
                ctype = json.load(open(meta, encoding="utf-8")).get("content_type") or "-"
            out.append("%s\t%s" % (path, ctype))
    return sorted(out)


def s3_leftovers(root):
    return sorted(
        os.path.join(dirpath, name)
        for dirpath, _, files in os.walk(root)
        for name in files
        if name.startswith(".tmp.") and name.endswith(".part")
    )


def main():
    cmd = sys.argv[1]
    if cmd == "put":
        print(put(sys.argv[2], sys.argv[3]))
    elif cmd == "tls" and sys.argv[2] == "prosody":
        print(tls_prosody(sys.argv[3], sys.argv[4]))
    elif cmd == "tls" and sys.argv[2] == "ejabberd":
        r = ejabberd_request(sys.argv[3], sys.argv[4])
        print("no slot request" if r is None else ("STARTTLS" if r[0] == "tls" else "plain TCP"))
    elif cmd == "slot-request":
        r = ejabberd_request(sys.argv[2], sys.argv[3])
        if r is not None:
            sys.stdout.write(r[1].rstrip("\n") + "\n")
    elif cmd == "declared-type":
        t = declared_type(sys.argv[2], sys.argv[3], sys.argv[4])
        if t is not None:
            print(t)
    elif cmd == "s3-object":
        for line in s3_objects(*sys.argv[2:6]):
            print(line)
    elif cmd == "s3-leftovers":
        for line in s3_leftovers(sys.argv[2]):
            print(line)
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
