"""Benchmark: ``rjsync catalog`` over a repository of ~170 runbooks, as a whole process.

Target (issue 2): under 1 s for the whole process on a 2-core machine.

The repository is generated from our example ``runbooks/``: 176 runbooks in the upstream layout
(16 examples x 11 categories), each padded with ordinary PowerShell code to the upstream's
average script size (~13 KB, ~320 lines), so parsing costs what the real thing costs. With
``RJSYNC_UPSTREAM_REPO`` pointing at a clone of realmjoin/realmjoin-runbooks, that repository
is timed too.

Run: ``python -m tests.benchmarks`` (or ``python -m tests.benchmarks.bench_catalog``).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "runbooks"
CATEGORIES = ["general", "security", "mail", "reports", "devices", "teams", "phone",
              "applications", "avd", "userinfo", "licensing"]
RUNS = 7

PADDING_FUNCTION = '''
function Invoke-Step{n} {{
    param([string]$Id, [int]$Retries = 3)
    # Retry a Graph call a few times before giving up (step {n}).
    for ($attempt = 1; $attempt -le $Retries; $attempt++) {{
        try {{
            $result = Invoke-RjRbRestMethodGraph -Resource "/users/$Id" -Method GET
            if ($result.accountEnabled -eq $true) {{
                Write-RjRbLog -Message "User $($result.userPrincipalName) is enabled" -Verbose
            }}
            $items = @($result.assignedLicenses | Where-Object {{ $_.skuId -ne $null }})
            $summary = @{{ Count = $items.Count; Id = $Id; Step = {n} }}
            return [pscustomobject]$summary
        }}
        catch {{
            Write-RjRbLog -Message "Attempt $attempt failed: $_" -Verbose
            Start-Sleep -Seconds ([math]::Pow(2, $attempt))
        }}
    }}
    throw "Step {n} failed after $Retries attempts"
}}
'''


def make_repository(target: Path) -> int:
    examples = sorted(EXAMPLE.glob("*/*/*.ps1"))
    padding = "".join(PADDING_FUNCTION.format(n=n) for n in range(12))
    count = 0
    for category in CATEGORIES:
        for script in examples:
            context = script.parent.parent.name
            folder = target / context / category
            folder.mkdir(parents=True, exist_ok=True)
            data = script.read_bytes()
            if data.startswith(b"\xff\xfe"):
                data = data[2:].decode("utf-16-le").encode("utf-8")
            data = data + padding.encode("utf-8") + f"\n# {category}\n".encode()
            (folder / script.name).write_bytes(data)
            sidecar = script.with_suffix(".permissions.json")
            if sidecar.exists():
                (folder / sidecar.name).write_bytes(sidecar.read_bytes())
            count += 1
    return count


def time_catalog(source: str) -> list[float]:
    command = [sys.executable, "-m", "rjsync", "catalog", source, "--format", "json"]
    subprocess.run(command, check=True, capture_output=True)  # warm the page cache
    timings = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        timings.append(time.perf_counter() - start)
    return timings


def report(label: str, timings: list[float]) -> None:
    print(f"{label}: median {statistics.median(timings):.3f} s, min {min(timings):.3f} s, "
          f"max {max(timings):.3f} s over {len(timings)} runs (target < 1 s)")


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch) / "runbooks"
        count = make_repository(repo)
        size = sum(f.stat().st_size for f in repo.rglob("*.ps1"))
        print(f"catalog benchmark: {count} runbooks, {size / 1024:.0f} KiB of scripts, "
              f"{os.cpu_count()} cores")
        report("rjsync catalog (generated, folder)", time_catalog(str(repo)))
    upstream = os.environ.get("RJSYNC_UPSTREAM_REPO")
    if upstream:
        report("rjsync catalog (upstream clone, folder)", time_catalog(upstream))


if __name__ == "__main__":
    main()
