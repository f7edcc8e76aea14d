#!/usr/bin/env python3
"""Lists the public symbols of a module that carry no documentation.

Usage: doc-coverage.py MODULE SYMBOL_GRAPH_DIR

Reads the symbol graphs SwiftPM extracted for MODULE (MODULE.symbols.json and the
MODULE@Other.symbols.json files of its extensions) and prints one line per public symbol
declared in this package's sources without a `///` comment: `path:line: kind name`.
A symbol that implements a protocol requirement or inherits a default implementation is
documented when what it comes from is (DocC shows that text); compiler-synthesized members
have no source location and are not counted, nor are extension blocks themselves. Exit status 0; the count is on the last line.
"""
import glob
import json
import os
import sys


def main() -> int:
    module, directory = sys.argv[1], sys.argv[2]
    files = sorted(glob.glob(os.path.join(directory, f"{module}.symbols.json"))
                   + glob.glob(os.path.join(directory, f"{module}@*.symbols.json")))
    if not files:
        print(f"doc-coverage: no symbol graph for {module} in {directory}", file=sys.stderr)
        return 2
    symbols, documented, origins = {}, set(), {}
    for path in files:
        graph = json.load(open(path))
        for s in graph["symbols"]:
            usr = s["identifier"]["precise"]
            symbols[usr] = s
            if s.get("docComment", {}).get("lines"):
                documented.add(usr)
        for r in graph.get("relationships", []):
            origin = r.get("sourceOrigin")
            if origin:
                origins[r["source"]] = origin["identifier"]
            if r["kind"] == "defaultImplementationOf":
                origins.setdefault(r["source"], r["target"])
    missing = []
    for usr, s in symbols.items():
        if s.get("accessLevel") not in ("public", "open") or "location" not in s or usr in documented:
            continue
        if s["kind"]["identifier"] == "swift.extension":
            continue  # an extension block: its members carry the documentation
        origin = origins.get(usr)
        if origin is not None and (origin not in symbols or origin in documented):
            continue  # documentation inherited from a requirement (this module's, documented, or another module's)
        loc = s["location"]
        path = loc["uri"].removeprefix("file://")
        path = os.path.relpath(path) if path.startswith("/") else path
        name = ".".join(s["pathComponents"])
        missing.append((path, loc["position"]["line"] + 1, s["kind"]["displayName"].lower(), name))
    for path, line, kind, name in sorted(missing):
        print(f"{path}:{line}: {kind} {name}")
    print(f"{module}: {len(missing)} undocumented public symbol(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
