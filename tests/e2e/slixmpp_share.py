"""slixmpp 1.17 (PyPI, extras xep-0363 and xep-0454) as an offline oracle for ci/client_side.sh.

    encrypt IN OUT LINK-FILE URL   XEP_0454.encrypt: OUT = ciphertext ‖ tag, LINK-FILE = the
                                   aesgcm:// link (format_url), mode 600
    decrypt LINK-FILE IN OUT       XEP_0454.decrypt with the link's fragment; exit 1 on a bad tag
    get-sfs FILE URL OUT           XEP_0447.get_sfs(path, uris=[URL], media_type, disposition)
                                   as XML into OUT
    read-sfs MESSAGE-XML           Message(xml=…)['sfs'] of a message the crate built: prints
                                   name, size, media-type, hash (algo and base64) and url lines

The key never goes to stdout or stderr.
"""
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import slixmpp
from slixmpp import Message
from slixmpp.plugins.xep_0454 import XEP_0454


def client():
    x = slixmpp.ClientXMPP("oracle@localhost", "unused")
    x.register_plugin("xep_0447")
    x.register_plugin("xep_0066")
    return x


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def main(argv):
    cmd = argv[1]
    if cmd == "encrypt":
        src, out, link_file, url = argv[2:6]
        with open(src, "rb") as f:
            payload, fragment = XEP_0454.encrypt(input_file=f)
        Path(out).write_bytes(payload)
        write_private(link_file, XEP_0454.format_url(url, fragment) + "\n")
        print(f"encrypted {len(payload)} bytes")
    elif cmd == "decrypt":
        link_file, src, out = argv[2:5]
        link = Path(link_file).read_text().split("\n")[0].strip()
        fragment = link.rsplit("#", 1)[1]
        try:
            with open(src, "rb") as f:
                plain = XEP_0454.decrypt(f, fragment)
        except Exception as e:  # cryptography's InvalidTag has no message
            print(f"decrypt failed: {type(e).__name__}", file=sys.stderr)
            return 1
        Path(out).write_bytes(plain)
        print(f"decrypted {len(plain)} bytes")
    elif cmd == "get-sfs":
        src, url, out = argv[2:5]
        sfs = client().plugin["xep_0447"].get_sfs(
            path=Path(src), uris=[url], media_type="text/plain", desc="from slixmpp", disposition="attachment"
        )
        Path(out).write_text(str(sfs))
        print(str(sfs))
    elif cmd == "read-sfs":
        client()
        msg = Message(xml=ET.fromstring(Path(argv[2]).read_text()))
        sfs = msg["sfs"]
        f = sfs["file"]
        print(f"name: {f['name']}")
        print(f"size: {f['size']}")
        print(f"media-type: {f['media-type']}")
        print(f"hash: {f['hash']['algo']} {f['hash']['value']}")
        for u in sfs["sources"]["substanzas"]:
            print(f"url: {u['target']}")
        print(f"body: {msg['body']}")
        print(f"oob: {msg['oob']['url']}")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
