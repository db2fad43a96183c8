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
"""

import json
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
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
