"""Connection floods against xmpp-upload-component, for ci/http_floods.sh. Loopback only:
every connection goes to 127.0.0.1 from a source address in 127.0.0.0/8.

  flood.py fake-xmpp PORT SECRET        a silent XEP-0114 server (handshake, then nothing)
  flood.py flood HTTP OPS SECONDS SPEC  holds connections, probes, prints a JSON summary

SPEC: "A:N,B:M" = A addresses holding N connections each, then B addresses holding M.
Holders send a partial request head and never finish it; a holder the server closes is
reopened after a second (bounded: SECONDS in all). Meanwhile, twice a second, a fresh client
(127.0.0.1, holding nothing) asks the store (OPTIONS /upload/) and the ops endpoint
(GET /healthz), each timed from connect to the status line.
"""
import hashlib
import json
import resource
import selectors
import socket
import sys
import threading
import time


def fake_xmpp(port, secret):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(4)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=session, args=(c, secret), daemon=True).start()


def session(c, secret):
    try:
        buf = b""
        while b">" not in buf.split(b"?>")[-1]:
            d = c.recv(4096)
            if not d:
                return
            buf += d
        sid = "floods1"
        c.sendall(("<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                   "xmlns='jabber:component:accept' from='upload.localhost' id='%s'>" % sid).encode())
        want = hashlib.sha1((sid + secret).encode()).hexdigest()
        buf = b""
        while b"</handshake>" not in buf:
            d = c.recv(4096)
            if not d:
                return
            buf += d
        if want.encode() not in buf:
            c.close()
            return
        c.sendall(b"<handshake/>")
        while c.recv(65536):
            pass
    except OSError:
        pass


def probe(port, req):
    t = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=3)
        s.sendall(req)
        head = b""
        while b"\r\n" not in head:
            d = s.recv(256)
            if not d:
                break
            head += d
        s.close()
        code = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0
    except (OSError, ValueError, IndexError):
        code = 0
    return code, time.monotonic() - t


def flood(http, ops, seconds, spec):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sources = []
    n = 0
    for part in spec.split(","):
        addrs, each = (int(x) for x in part.split(":"))
        for _ in range(addrs):
            n += 1
            # 127.1.x.y: never 127.0.0.1, the fresh client's address.
            sources += [("127.1.%d.%d" % (n // 250, n % 250 + 1))] * each
    sel = selectors.DefaultSelector()
    head = b"GET /upload/ HTTP/1.1\r\nHost: x\r\n"
    opened = cut = failed = 0
    reopen = []  # (when, source)

    def open_one(src):
        nonlocal opened, failed
        s = socket.socket()
        try:
            s.bind((src, 0))
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", http))
            sel.register(s, selectors.EVENT_WRITE, src)
            opened += 1
        except OSError:
            failed += 1
            s.close()
            reopen.append((time.monotonic() + 1, src))

    start = time.monotonic()
    for src in sources:
        open_one(src)
    probes = []
    next_probe = start + 2  # let the flood build up first
    while time.monotonic() - start < seconds:
        for key, ev in sel.select(timeout=0.05):
            s, src = key.fileobj, key.data
            if ev & selectors.EVENT_WRITE:
                try:
                    s.send(head)
                    sel.modify(s, selectors.EVENT_READ, src)
                    continue
                except OSError:
                    pass
            else:
                try:
                    if s.recv(4096):
                        continue
                except OSError:
                    pass
            sel.unregister(s)
            s.close()
            cut += 1
            reopen.append((time.monotonic() + 1, src))
        now = time.monotonic()
        due = [r for r in reopen if r[0] <= now]
        reopen = [r for r in reopen if r[0] > now]
        for _, src in due:
            open_one(src)
        if now >= next_probe:
            store = probe(http, b"OPTIONS /upload/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            health = probe(ops, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            probes.append({"store": store, "healthz": health, "held": len(sel.get_map())})
            next_probe = now + 0.5
    held = len(sel.get_map())
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    store_times = [p["store"][1] for p in probes]
    health_times = [p["healthz"][1] for p in probes]
    print(json.dumps({
        "connections_wanted": len(sources), "held_at_end": held, "opened": opened,
        "cut_by_server": cut, "connect_failures": failed, "probes": len(probes),
        "store_codes": sorted({p["store"][0] for p in probes}),
        "healthz_codes": sorted({p["healthz"][0] for p in probes}),
        "store_max_s": round(max(store_times), 3), "healthz_max_s": round(max(health_times), 3),
        "store_median_s": round(sorted(store_times)[len(store_times) // 2], 4),
        "healthz_median_s": round(sorted(health_times)[len(health_times) // 2], 4),
        "held_min_during_probes": min(p["held"] for p in probes),
    }))


if __name__ == "__main__":
    if sys.argv[1] == "fake-xmpp":
        fake_xmpp(int(sys.argv[2]), sys.argv[3])
    else:
        flood(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
