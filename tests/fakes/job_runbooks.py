"""Runbooks to start through the job API and ``rjsync run``, and a stand-in for ``pwsh``.

``write_source(root)`` writes a source of two runbooks whose scripts the stand-in understands;
``stand_in(folder)`` writes the stand-in executable (name it in ``RJSYNC_PWSH``). The stand-in has
the runner's wrapper interface (``rjsync.accounts.local_jobs``): it reads the request file, reads
each parameter value as JSON when it is JSON (as the wrapper and Azure's sandbox do), then runs
the script's ``Write-Output``/``Write-Verbose``/``Write-Warning``/``Write-Error``/``throw``/
``Start-Sleep`` lines, ``$Name`` standing for a parameter's value; ``Console X`` prints X as a
line that is not a stream record, ``Exit N`` ends the process with code N (the account tests'
broken runners).
"""

from __future__ import annotations

import sys
from pathlib import Path

HELLO = "rjgit-user_general_hello"
BROKEN = "rjgit-org_general_broken"

HELLO_SCRIPT = """<#
  .SYNOPSIS
  Says hello.

  .INPUTS
  RunbookCustomization: {
    "Parameters": {
      "CallerName": { "Hide": true },
      "Mode": { "SelectSimple": { "First": "a", "Second": "b" } }
    }
  }
#>
param(
    [Parameter(Mandatory)]
    [string] $Name,
    [int] $Count = 1,
    [ValidateSet('a', 'b')]
    [string] $Mode = 'a',
    [bool] $Loud = $false,
    [Parameter(Mandatory)]
    [string] $CallerName
)
Start-Sleep -Seconds 0
Write-Output $Name
Write-Verbose 'checking'
Write-Output $Count
Write-Output $CallerName
"""

BROKEN_SCRIPT = """param(
    [string] $Reason = 'none'
)
Write-Output 'before'
Write-Warning 'careful'
throw 'The user does not exist.'
"""

STAND_IN = r'''
import json, os, re, sys, time
from datetime import datetime, timezone
assert sys.argv[1:4] == ["-NoProfile", "-NonInteractive", "-Command"], sys.argv
assert "RJSYNC_JOB_FILE" in sys.argv[4] and "@parameters" in sys.argv[4]
request = json.load(open(os.environ["RJSYNC_JOB_FILE"], encoding="utf-8"))
parameters = {}
for key, text in request["parameters"].items():
    try:
        parameters[key] = json.loads(text)
    except ValueError:
        parameters[key] = text
kinds = {"Write-Output": "Output", "Write-Verbose": "Verbose", "Write-Warning": "Warning",
         "Write-Error": "Error", "throw": "Exception"}
def emit(kind, text):
    print(json.dumps({"type": kind, "text": text, "time": datetime.now(timezone.utc).isoformat()}), flush=True)
for line in open(request["script"], encoding="utf-8-sig"):
    m = re.match(r"\s*(\S+)\s*(.*?)\s*$", line)
    if not m:
        continue
    verb, arg = m.groups()
    value = str(parameters.get(arg[1:], "")) if arg.startswith("$") else arg.strip("'")
    if verb == "Start-Sleep":
        time.sleep(float(os.environ.get("STAND_IN_SLEEP") or arg.split()[-1]))
    elif verb == "Console":
        print(value, flush=True)
    elif verb == "Exit":
        sys.stderr.write("something broke\n")
        sys.exit(int(value))
    elif verb in kinds:
        emit(kinds[verb], value)
        if verb == "throw":
            sys.exit(1)
'''


def write_source(root: Path) -> Path:
    for path, text in (("user/general/hello.ps1", HELLO_SCRIPT), ("org/general/broken.ps1", BROKEN_SCRIPT)):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text, encoding="utf-8")
    return root


def stand_in(folder: Path) -> Path:
    path = folder / "pwsh-stand-in"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n{STAND_IN}")
    path.chmod(0o755)
    return path
