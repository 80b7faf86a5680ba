#!/usr/bin/env python3
"""List the rjsync manifests a workflow should run, as JSON (for a matrix) or as words.

    manifests.py PATH...                     every manifest in PATH (files, or folders searched recursively)
    manifests.py PATH... --changed FILE      only those a pull request affects; FILE lists the changed paths

A manifest is a *.yaml or *.yml file whose name does not start with "_" or "." (so
_defaults.yaml, which holds a folder's defaults, is not one). With --changed, every manifest is
affected when a changed path is under one of the --all-if-changed prefixes (default: runbooks/)
or is such a defaults file; otherwise the changed manifests that still exist are.

Only the standard library: it runs before rjsync is installed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path, PurePosixPath

SUFFIXES = (".yaml", ".yml")


def is_manifest(path: PurePosixPath) -> bool:
    return path.suffix in SUFFIXES and not path.name.startswith(("_", "."))


def is_defaults(path: PurePosixPath) -> bool:
    return path.suffix in SUFFIXES and path.name.startswith("_")


def all_manifests(roots: list[str]) -> list[str]:
    found: set[str] = set()
    for root in roots:
        path = Path(root)
        if path.is_file():
            found.add(path.as_posix())
        elif path.is_dir():
            found.update(p.as_posix() for p in path.rglob("*")
                         if p.is_file() and is_manifest(PurePosixPath(p.as_posix()))
                         and not any(part.startswith(".") for part in p.relative_to(path).parts))
        else:
            raise SystemExit(f"error: {root} is neither a manifest file nor a folder")
    return sorted(found)


def affected(roots: list[str], changed: list[str], all_prefixes: list[str]) -> list[str]:
    everything = all_manifests(roots)
    under_roots = [PurePosixPath(r.rstrip("/")) for r in roots]

    def in_roots(path: PurePosixPath) -> bool:
        return any(path == root or root in path.parents for root in under_roots)

    changed_paths = [PurePosixPath(c.strip()) for c in changed if c.strip()]
    if any(str(c).startswith(tuple(all_prefixes)) or (in_roots(c) and is_defaults(c)) for c in changed_paths):
        return everything
    return [m for m in everything if PurePosixPath(m) in set(changed_paths)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", metavar="PATH", help="manifest files or folders")
    parser.add_argument("--changed", metavar="FILE", help="file listing changed paths, one per line ('-': stdin)")
    parser.add_argument("--all-if-changed", action="append", metavar="PREFIX",
                        help="a change under PREFIX affects every manifest (repeatable; default: runbooks/)")
    parser.add_argument("--format", choices=("json", "words"), default="json")
    args = parser.parse_args(argv)

    if args.changed:
        text = sys.stdin.read() if args.changed == "-" else Path(args.changed).read_text(encoding="utf-8")
        manifests = affected(args.paths, text.splitlines(), args.all_if_changed or ["runbooks/"])
    else:
        manifests = all_manifests(args.paths)
    spaced = [m for m in manifests if any(ch.isspace() for ch in m)]
    if spaced:
        raise SystemExit(f"error: manifest paths may not contain spaces: {', '.join(spaced)}")
    print(json.dumps(manifests) if args.format == "json" else " ".join(manifests))
    return 0


if __name__ == "__main__":
    sys.exit(main())
