#!/usr/bin/env bash
# Checks `rust-version` honestly: no older toolchain can be installed here, so instead of
# building with one, fail when any *normal* dependency (transitively, all features, every
# target platform) declares a newer `rust-version` than this crate does. Dev-dependencies
# (tests, examples, benches) do not count: they do not build for users.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --all-features --locked | python3 -c '
import json, sys
meta = json.load(sys.stdin)
pkgs = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
root = meta["resolve"]["root"]
seen, stack = set(), [root]
while stack:
    for d in nodes[stack.pop()]["deps"]:
        kinds = {k["kind"] for k in d["dep_kinds"]}
        if kinds & {None, "normal"} and d["pkg"] not in seen:
            seen.add(d["pkg"])
            stack.append(d["pkg"])
ver = lambda s: tuple((list(map(int, s.split("."))) + [0, 0])[:3])
ours = pkgs[root].get("rust_version")
if not ours:
    sys.exit("msrv: the crate declares no rust-version")
newer = sorted(
    (ver(p["rust_version"]), p["name"], p["version"], p["rust_version"])
    for p in (pkgs[i] for i in seen)
    if p.get("rust_version") and ver(p["rust_version"]) > ver(ours)
)
top = max((ver(pkgs[i]["rust_version"]), pkgs[i]["rust_version"], pkgs[i]["name"]) for i in seen if pkgs[i].get("rust_version"))
print(f"msrv: rust-version {ours}; {len(seen)} normal dependencies; the newest requirement is {top[1]} ({top[2]})")
for _, name, version, rv in newer:
    print(f"msrv: {name} {version} needs Rust {rv} > {ours}")
sys.exit(1 if newer else 0)
'
