"""The sync pipeline (``rjsync.sync``): one apply path under the CLI, the fleet and the service.

The concurrency contract (``rjsync.settings``): ``--concurrency N`` keeps N requests in flight
and 4 x N runbook writes under way, whichever entry point runs the sync.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import threading
import time
from pathlib import Path

import pytest

from fakes.accounts import ARM_ID, FAST, write_storage_source
from fakes.arm import FakeEnvironment
from rjsync.accounts import open_account
from rjsync.accounts.azure import AzureAccount
from rjsync.accounts.local import LocalAccount
from rjsync.commands.fleet import run_fleet_apply
from rjsync.commands.sync import Progress
from rjsync.engine.policy import Policy
from rjsync.fleet import load_fleet
from rjsync.service.jobs import JobRunner
from rjsync.service.store import COMPLETED, Store
from rjsync.settings import AzureOptions, SourceSpec, SyncSettings, gallery_url, settings_from
from rjsync.sync import ApplyEvents, apply, default_opener, notes_to, prepare

RUNBOOKS = 40
HOLD = 0.15  # seconds each write takes, so that every write the pipeline lets start overlaps


def write_source(folder: Path, count: int = RUNBOOKS) -> Path:
    for n in range(count):
        path = folder / "user" / "general" / f"job-{n:02}.ps1"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"<#\n.SYNOPSIS\nJob {n}.\n#>\nparam([string] $Name)\nWrite-Output $Name\n",
                        encoding="utf-8")
    return folder


class Counting:
    """Opens directory accounts whose runbook writes take ``HOLD`` s and are counted in flight."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = self.writes = 0

    def __call__(self, settings: SyncSettings) -> LocalAccount:
        counter = self

        class Account(LocalAccount):
            def write_runbook(self, spec, **options):
                with counter.lock:
                    counter.now += 1
                    counter.writes += 1
                    counter.most = max(counter.most, counter.now)
                try:
                    time.sleep(HOLD)
                    return super().write_runbook(spec, **options)
                finally:
                    with counter.lock:
                        counter.now -= 1

        return Account(settings.target[len("local:"):], owned_prefix=settings.policy.prefix)


def settings_for(tmp_path: Path, concurrency: int, name: str = "acct") -> SyncSettings:
    return SyncSettings(source=SourceSpec(str(write_source(tmp_path / "src"))),
                        target=f"local:{tmp_path / name}", concurrency=concurrency)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_sync_apply_keeps_four_writes_per_request_slot_under_way(tmp_path, concurrency):
    counting = Counting()
    with prepare(settings_for(tmp_path, concurrency), opener=counting) as prepared:
        result = apply(prepared)
    assert result.ok and result.done == RUNBOOKS + 1  # + the runtime environment
    assert counting.writes == RUNBOOKS
    assert counting.most == 4 * concurrency


def test_fleet_apply_keeps_the_same_writes_under_way(tmp_path, capsys):
    write_source(tmp_path / "src")
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "acct.yaml").write_text(f"source:\n  path: {tmp_path / 'src'}\ntarget: local:{tmp_path / 'acct'}\n"
                                      "concurrency: 2\n", encoding="utf-8")
    counting = Counting()
    assert run_fleet_apply(load_fleet(folder), auto_approve=True, opener=counting) == 0
    assert counting.writes == RUNBOOKS and counting.most == 8


def test_service_job_keeps_the_same_writes_under_way(tmp_path):
    counting = Counting()
    store = Store(str(tmp_path / "jobs.db"))
    runner = JobRunner(store, accounts_at_once=1, opener=counting)
    try:
        job, _ = runner.start("acct", settings_for(tmp_path, 2), "test")
        assert runner.wait(job.id, timeout=60).status == COMPLETED
    finally:
        runner.close()
        store.close()
    assert counting.writes == RUNBOOKS and counting.most == 8


def test_default_opener_keeps_concurrency_requests_in_flight():
    target = ("/subscriptions/6d3f1c2a-1b2c-4d5e-8f90-123456789abc/resourceGroups/rg/providers/"
              "Microsoft.Automation/automationAccounts/aa-test")
    settings = dataclasses.replace(SyncSettings(SourceSpec("."), target), concurrency=3)
    with default_opener(settings) as account:
        assert isinstance(account, AzureAccount)
        assert account.settings.max_concurrent_requests == 3


def test_default_opener_opens_azure_accounts_on_the_gallery_it_resolves(monkeypatch):
    target = ("/subscriptions/6d3f1c2a-1b2c-4d5e-8f90-123456789abc/resourceGroups/rg/providers/"
              "Microsoft.Automation/automationAccounts/aa-test")
    monkeypatch.setenv("RJSYNC_GALLERY", "https://nexus.example/repository/psgallery/")
    settings = SyncSettings(SourceSpec("."), target)
    with default_opener(settings) as account:
        assert account.gallery.base_url == "https://nexus.example/repository/psgallery"
    mirror = dataclasses.replace(settings, azure=AzureOptions(gallery="https://proget.example/nuget/psgallery"))
    with default_opener(mirror) as account:
        assert account.gallery.base_url == "https://proget.example/nuget/psgallery"


def test_sync_apply_reports_each_step_and_the_result(tmp_path):
    started, ended = [], []
    with prepare(settings_for(tmp_path, 8), opener=Counting()) as prepared:
        result = apply(prepared, events=ApplyEvents(start=lambda *step: started.append(step),
                                                    outcome=ended.append))
    assert len(started) == len(ended) == RUNBOOKS + 1
    assert ("runtime_environment", "create", "RJ-PowerShell-7.4") in started
    assert {o.status for o in ended} == {"done"}
    assert result.counts() == {"done": RUNBOOKS + 1, "failed": 0, "skipped": 0} and result.problems == []
    with prepare(settings_for(tmp_path, 8), opener=Counting()) as again:
        assert not again.plan.has_changes  # converged


def test_sync_prepare_closes_the_account_when_planning_fails(tmp_path):
    closed = []

    class Failing(LocalAccount):
        def snapshot(self, scope=None):
            raise OSError("disk gone")

        def close(self):
            closed.append(True)

    with pytest.raises(OSError):
        prepare(settings_for(tmp_path, 2), opener=lambda s: Failing(tmp_path / "acct"))
    assert closed == [True]


def test_apply_progress_prints_the_notes_about_its_own_account_between_the_steps():
    """Waits the service imposes (the import window, throttling) are logged by the account code;
    apply prints those about its own account, in a fleet each account its own."""
    stream = io.StringIO()
    progress = Progress(3, stream)
    log = logging.getLogger("rjsync.accounts.azure")

    with notes_to(progress.note, "/subscriptions/s/aa-one"):
        log.info("Az.Storage waits %.0f s to be imported", 23.4, extra={"target": "/subscriptions/s/aa-one"})
        log.info("another account's wait", extra={"target": "/subscriptions/s/aa-two"})
    log.info("after the apply", extra={"target": "/subscriptions/s/aa-one"})

    assert stream.getvalue() == "note: Az.Storage waits 23 s to be imported\n"


# -- through the pipeline against the ARM emulator -------------------------------------------------


def emulator_opener(arm, credential):
    """Opens accounts as ``default_opener`` does (the gallery ``gallery_url`` picks, the
    concurrency of the settings), on the emulator with a static token and no waiting."""

    def open_(settings: SyncSettings):
        return open_account(settings.target, owned_prefix=settings.policy.prefix, arm_endpoint=arm.endpoint,
                            credential=credential, gallery_url=gallery_url(settings.azure),
                            settings=dataclasses.replace(FAST, max_concurrent_requests=settings.concurrency))

    return open_


def azure_settings(tmp_path: Path, policy: Policy | None = None) -> SyncSettings:
    return SyncSettings(source=SourceSpec(str(write_source(tmp_path / "src", 2))), target=ARM_ID,
                        policy=policy or Policy())


def environment_writes(arm) -> list:
    return [r for r in arm.server.requests(path="/runtimeEnvironments/RJ-PowerShell-7.4$") if r.method != "GET"]


def test_sync_creates_the_runtime_environment_with_az_by_default(tmp_path, arm, credential):
    opener = emulator_opener(arm, credential)
    with prepare(azure_settings(tmp_path), opener=opener) as prepared:
        assert prepared.plan.environment["default_packages"] == {"Az": "12.3.0"}
        assert apply(prepared).ok

    assert arm.account.environments["rj-powershell-7.4"].default_packages == {"Az": "12.3.0"}
    with prepare(azure_settings(tmp_path), opener=opener) as again:
        assert not again.plan.has_changes and again.plan.diagnostics == ()


def test_sync_creates_the_runtime_environment_with_the_policys_default_packages(tmp_path, arm, credential):
    policy = Policy(default_packages=(("Az", "11.6.0"), ("Azure CLI", "2.64.0")))
    with prepare(azure_settings(tmp_path, policy), opener=emulator_opener(arm, credential)) as prepared:
        assert apply(prepared).ok

    assert arm.account.environments["rj-powershell-7.4"].default_packages == {"Az": "11.6.0", "Azure CLI": "2.64.0"}


def test_sync_reports_an_existing_environment_with_other_default_packages_and_never_changes_it(
        tmp_path, arm, credential):
    arm.account.environments["rj-powershell-7.4"] = FakeEnvironment(
        "RJ-PowerShell-7.4", "PowerShell", "7.4", default_packages={"Az": "8.0.0"})

    with prepare(azure_settings(tmp_path), opener=emulator_opener(arm, credential)) as prepared:
        assert prepared.plan.environment is None
        assert [d.message for d in prepared.plan.diagnostics] == [
            "runtime environment RJ-PowerShell-7.4 has the default packages az 8.0.0, not Az 12.3.0 as the "
            "policy says; rjsync does not change an existing environment's default packages: change them in "
            "the portal, or set policy.default_packages to what it has"]
        assert apply(prepared).ok

    assert environment_writes(arm) == []
    assert arm.account.environments["rj-powershell-7.4"].default_packages == {"Az": "8.0.0"}


def test_sync_compares_the_lower_cased_default_packages_the_service_answers_equal(tmp_path, arm, credential):
    arm.account.environments["rj-powershell-7.4"] = FakeEnvironment(
        "RJ-PowerShell-7.4", "PowerShell", "7.4", default_packages={"Az": "12.3.0"})

    with prepare(azure_settings(tmp_path), opener=emulator_opener(arm, credential)) as prepared:
        assert prepared.snapshot.runtime_environment("RJ-PowerShell-7.4").default_packages == {"az": "12.3.0"}
        assert prepared.plan.environment is None and prepared.plan.diagnostics == ()
        assert apply(prepared).ok

    assert environment_writes(arm) == []


def test_sync_imports_modules_from_the_gallery_mirror_the_manifest_names(tmp_path, arm, gallery, credential,
                                                                          monkeypatch):
    mirror = gallery.serve_at("/repository/psgallery-proxy")
    gallery.redirects = False  # a mirror that serves the package itself: the links are on the mirror
    monkeypatch.setenv("RJSYNC_GALLERY", "https://127.0.0.1:9/not-this-one")  # the manifest comes first
    write_storage_source(tmp_path / "src")
    manifest = tmp_path / "acct.yaml"
    manifest.write_text(f"source: {{path: src}}\ntarget: {ARM_ID}\nazure: {{gallery: '{mirror}/'}}\n")
    settings = settings_from(manifest=str(manifest), source=None, ref=None, target=None)

    with prepare(settings, opener=emulator_opener(arm, credential)) as prepared:
        result = apply(prepared)

    assert result.ok, result.problems
    environment = arm.account.environments["rj-powershell-7.4"]
    assert {p.name: p.version for p in environment.packages.values()} == {"Az.Accounts": "2.13.2", "Az.Storage": "6.0.0"}
    links = sorted(p.content_uri for p in environment.packages.values())
    assert links == [f"{mirror}/package/Az.Accounts/2.13.2", f"{mirror}/package/Az.Storage/6.0.0"]
    looked_up = [r.path for r in gallery.server.requests("GET")]
    assert looked_up and all(path.startswith("/repository/psgallery-proxy/") for path in looked_up)
