"""Fuzz: random, mutated and deeply nested inputs to every parser of user files (issue 14,
finding 9): the catalog (scripts, permissions sidecars, RunbookCustomization blocks), the
manifest reader and the plan reader. Nothing but an ``RjsyncError`` (a sentence) may escape.

Seeds are the repository's own examples (``runbooks/``, ``manifests/``) and a plan of them;
each input is a seed mutated (spans deleted, duplicated, replaced by random bytes or by
brackets nested up to 20,000 deep) or made from nothing. Prints how many inputs it tried and
every input that raised something else (exit 1).

Run: ``python -m tests.benchmarks.fuzz_inputs [--seconds 120] [--seed N]``. Not run in CI;
``tests/benchmarks/test_fuzz_inputs.py`` runs it for a few seconds.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

from click.testing import CliRunner

from rjsync.catalog.build import build_catalog
from rjsync.catalog.model import SourceFile, SourceInfo
from rjsync.cli import cli
from rjsync.engine.saved import load_plan
from rjsync.errors import RjsyncError
from rjsync.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]
INFO = SourceInfo("folder", "/src", None, "c0ffee0")
OPENERS = ["@(", "@{a=", "(", "[", "{", "{\"a\":", "[1,", "- ", "a:\n  ", "$(", "{a: ", "<#", "\"", "'"]
CLOSERS = {"@(": ")", "@{a=": "}", "(": ")", "[": "]", "{": "}", "{\"a\":": "}", "[1,": "]",
           "$(": ")", "{a: ": "}", "<#": "#>", "\"": "\"", "'": "'"}
TOKENS = ["param(", ")", "[string]", "$x", "=", ",", "@(", "@{", "}", "{", "[", "]", ":", "-", "\n",
          "\r\n", "#", "<#", "#>", ".SYNOPSIS", ".INPUTS", "RunbookCustomization:", "\"", "'", "@'",
          "'@", "null", "true", "1e309", "-1", "\t", "\x00", "\ufeff", "é", "&", "*", "!!python/object"]


def nested(rng: random.Random) -> str:
    opener = rng.choice(OPENERS)
    depth = rng.choice([10, 500, 1_000, 3_000, 20_000])
    closer = CLOSERS.get(opener, "")
    return opener * depth + ("1" if rng.random() < 0.5 else "") + closer * (depth if rng.random() < 0.8 else depth // 2)


def mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(text))
        end = min(len(text), at + rng.randint(0, 64))
        how = rng.random()
        if how < 0.25:
            text = text[:at] + text[end:]
        elif how < 0.45:
            text = text[:at] + text[at:end] * rng.randint(2, 50) + text[at:]
        elif how < 0.7:
            text = text[:at] + "".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 20))) + text[end:]
        elif how < 0.85:
            text = text[:at] + nested(rng) + text[end:]
        else:
            text = text[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 16))).decode("latin-1") + text[end:]
    return text


def make(rng: random.Random, seeds: list[str]) -> str:
    kind = rng.random()
    if kind < 0.7:
        return mutate(rng, rng.choice(seeds))
    if kind < 0.85:
        return nested(rng)
    return "".join(rng.choice(TOKENS) for _ in range(rng.randint(0, 200)))


def encode(rng: random.Random, text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass") if rng.random() < 0.9 else text.encode("utf-16")


def seeds(work: Path) -> dict[str, list[str]]:
    scripts = [p.read_bytes().decode("utf-8", "replace") for p in sorted((ROOT / "runbooks").rglob("*.ps1"))]
    sidecars = [p.read_bytes().decode("utf-8", "replace") for p in sorted((ROOT / "runbooks").rglob("*.json"))]
    manifests = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "manifests").rglob("*.y*ml"))]
    out = work / "seed-plan.json"
    result = CliRunner().invoke(cli, ["plan", "--source", str(ROOT / "runbooks"),
                                      "--target", f"local:{work / 'account'}", "--out", str(out)])
    if result.exit_code != 0:
        raise SystemExit(f"cannot make the seed plan: {result.output}")
    return {"script": scripts, "sidecar": sidecars or ["[]"], "manifest": manifests,
            "plan": [out.read_text(encoding="utf-8")]}


def try_catalog(rng: random.Random, pool: dict[str, list[str]], work: Path) -> None:
    files = [SourceFile("user/general/fuzz.ps1", encode(rng, make(rng, pool["script"])))]
    if rng.random() < 0.5:
        files.append(SourceFile("user/general/fuzz.permissions.json", encode(rng, make(rng, pool["sidecar"]))))
    build_catalog(INFO, files)


def try_manifest(rng: random.Random, pool: dict[str, list[str]], work: Path) -> None:
    path = work / "fuzz.yaml"
    path.write_bytes(encode(rng, make(rng, pool["manifest"])))
    load_manifest(path, defaults=None)


def try_plan(rng: random.Random, pool: dict[str, list[str]], work: Path) -> None:
    path = work / "fuzz-plan.json"
    path.write_bytes(encode(rng, make(rng, pool["plan"])))
    load_plan(str(path))


TARGETS = {"catalog": try_catalog, "manifest": try_manifest, "plan": try_plan}


def fuzz(seconds: float, seed: int | None = None) -> tuple[int, list[str]]:
    """Inputs tried, and a report of each one that raised anything but an ``RjsyncError``."""
    rng = random.Random(seed)
    failures: list[str] = []
    tried = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pool = seeds(work)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            name = rng.choice(list(TARGETS))
            try:
                TARGETS[name](rng, pool, work)
            except RjsyncError:
                pass
            except Exception as err:  # noqa: BLE001 - the point: anything else is a finding
                failures.append(f"{name} input #{tried} (seed {seed}): {type(err).__name__}: "
                                f"{str(err)[:200]}\n{traceback.format_exc(limit=-4)}")
            tried += 1
    return tried, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    tried, failures = fuzz(args.seconds, args.seed)
    for failure in failures[:20]:
        print(failure)
    print(f"fuzz: {tried} inputs in {args.seconds:g} s, {len(failures)} raised something other than "
          "an rjsync error")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
