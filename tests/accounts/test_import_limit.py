"""The service's import limit (5 module imports per 30 s per account), with the window shrunk:
the emulator enforces it when ``arm.import_limit`` is set, the client's pacing keeps under it,
and a client whose import someone else's imports crowd out waits for the window (429 +
Retry-After, azure-core's RetryPolicy) instead of failing. The real SDK talks to the emulator."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import HttpResponseError

from fakes.accounts import GROUP, NAME, SUBSCRIPTION
from rjsync.accounts import ModuleImport
from rjsync.errors import AccountError

WINDOW = 1.0  # seconds: the service's 30 s, shrunk
FOREIGN_WINDOW = 2.0  # the client's import must reach the emulator while the others' still fill it
LIMIT = 5
ENVIRONMENT = "PowerShell-7.2"  # built into every emulated account


@pytest.fixture
def client(sdk_client):
    """A bare SDK client that does not retry: it sees every refusal."""
    return sdk_client(retry_total=0)


@pytest.fixture
def modules(gallery):
    """``modules(n, prefix)``: n single-version modules published in the gallery; their names."""

    def publish(count: int, prefix: str = "RJ.Module") -> list[str]:
        names = [f"{prefix}{i}" for i in range(count)]
        for name in names:
            gallery.add(name, "1.0.0")
        return names

    return publish


def _body(gallery, name: str) -> dict:
    return {"properties": {"contentLink": {"uri": f"{gallery.base_url}/package/{name}/1.0.0", "version": "1.0.0"}}}


def _import(client, gallery, name: str, environment: str | None = None, *, account: str = NAME):
    if environment is None:
        return client.module.create_or_update(GROUP, account, name, _body(gallery, name))
    return client.package.create_or_update(GROUP, account, environment, name, _body(gallery, name))


def _import_puts(arm) -> list:
    return arm.server.requests("PUT", r"/(modules|packages)/[^/]+$")


# -- the emulator ----------------------------------------------------------------------------------


def test_import_limit_is_off_by_default(client, arm, gallery, modules):
    assert arm.import_limit is None

    for name in modules(LIMIT + 3):
        _import(client, gallery, name)

    assert len(arm.account.import_starts) == LIMIT + 3
    assert arm.import_refusals == []


def test_import_limit_refuses_the_sixth_import_in_the_window_until_the_oldest_leaves_it(client, arm, gallery, modules):
    arm.import_limit = (LIMIT, WINDOW)
    names = modules(LIMIT + 2)
    for i, name in enumerate(names[:LIMIT]):  # modules and packages count alike
        _import(client, gallery, name, ENVIRONMENT if i % 2 else None)

    with pytest.raises(HttpResponseError) as caught:
        _import(client, gallery, names[LIMIT], ENVIRONMENT)

    refused = caught.value
    assert refused.status_code == 429
    assert refused.error.code == "TooManyRequests"
    assert f"at most {LIMIT} are allowed" in refused.error.message
    retry_after = int(refused.response.headers["Retry-After"])
    assert retry_after == 1  # whole seconds, at least 1
    assert [(r.account, r.method, r.path, r.retry_after) for r in arm.import_refusals] == [
        (NAME, "PUT", f"/runtimeEnvironments/{ENVIRONMENT}/packages/{names[LIMIT]}", 1)]
    environment = arm.account.environments[ENVIRONMENT.lower()]
    assert names[LIMIT].lower() not in environment.packages  # a refused import is not carried out
    assert len(arm.account.import_starts) == LIMIT

    time.sleep(retry_after)
    _import(client, gallery, names[LIMIT], ENVIRONMENT)
    _import(client, gallery, names[LIMIT + 1])  # the window has room again (all 5 left it)

    assert names[LIMIT].lower() in environment.packages
    assert len(arm.import_refusals) == 1
    assert [r.status for r in _import_puts(arm)] == [201] * LIMIT + [429, 201, 201]


def test_import_limit_is_per_account(client, arm, gallery, modules):
    arm.import_limit = (LIMIT, WINDOW)
    arm.add_account(SUBSCRIPTION, GROUP, "aa-other")
    names = modules(LIMIT + 1)
    for name in names[:LIMIT]:
        _import(client, gallery, name)

    _import(client, gallery, names[LIMIT], account="aa-other")

    assert arm.import_refusals == []


def test_import_limit_retry_after_counts_seconds_until_the_oldest_import_leaves(client, arm, gallery, modules):
    arm.import_limit = (LIMIT, 3.0)
    now = time.monotonic()
    arm.account.import_starts.extend([now - 0.5] * LIMIT)  # someone else, half a second ago

    with pytest.raises(HttpResponseError) as caught:
        _import(client, gallery, modules(1)[0])

    assert caught.value.response.headers["Retry-After"] == "3"  # ceil(2.5 s)


# -- the client ------------------------------------------------------------------------------------


def test_client_pacing_stays_under_the_service_limit(open_azure, arm, modules):
    arm.import_limit = (LIMIT, WINDOW)
    names = modules(LIMIT + 2)
    account = open_azure(imports_per_window=LIMIT, import_window=WINDOW)
    started = time.monotonic()

    for name in names:
        assert account.import_module(ModuleImport(name, "1.0.0")).provisioning_state == "Succeeded"

    puts = _import_puts(arm)
    first_tries = [next(r for r in puts if r.path.endswith(f"/{name}")) for name in names]
    assert first_tries[LIMIT].time - started >= WINDOW
    assert first_tries[LIMIT].time - first_tries[0].time >= WINDOW - 0.1  # a window after the 1st, give or take the wire
    assert [r.status for r in puts if r.status != 429] == [201] * (LIMIT + 2)
    starts = arm.account.import_starts  # as the service took them: never 6 in one window
    assert all(later - earlier >= WINDOW for earlier, later in zip(starts, starts[LIMIT:]))
    assert arm.import_refusals == []


@pytest.mark.parametrize("hold_up", ["slow answer", "503 retried", "answer lost, PUT re-sent"])
def test_client_pacing_leaves_a_margin_for_the_wire(open_azure, arm, modules, hold_up):
    arm.import_limit = (LIMIT, WINDOW)
    names = modules(LIMIT + 2)
    first = rf"/modules/{names[0]}$"
    if hold_up == "slow answer":  # the service takes the 1st import 0.3 s after the client sent it
        arm.server.delay(0.3, method="PUT", path=first)
    elif hold_up == "503 retried":
        arm.server.fail(503, method="PUT", path=first, times=1, retry_after="0.3")
    else:  # carried out, the answer lost: RetryPolicy sends the PUT again, a second import
        arm.server.drop(method="PUT", path=first, times=1, after=True)
    account = open_azure(imports_per_window=LIMIT, import_window=WINDOW)

    for name in names:
        assert account.import_module(ModuleImport(name, "1.0.0")).provisioning_state == "Succeeded"

    assert arm.import_refusals == []


def test_client_pacing_counts_modules_and_packages_against_one_account_limit(open_azure, arm, modules):
    arm.import_limit = (LIMIT, WINDOW)
    names = modules(LIMIT + 2)
    account = open_azure(imports_per_window=LIMIT, import_window=WINDOW)

    for i, name in enumerate(names):
        account.import_module(ModuleImport(name, "1.0.0", runtime_environment=ENVIRONMENT if i % 2 else None))

    assert arm.import_refusals == []
    assert [r.status for r in _import_puts(arm)] == [201] * (LIMIT + 2)


def test_client_waits_out_imports_someone_else_started_in_the_window(azure_account, arm, client, gallery, modules):
    arm.import_limit = (LIMIT, FOREIGN_WINDOW)
    for name in modules(LIMIT, "Foreign.Module"):  # the portal, another tool: the window is full
        _import(client, gallery, name)
    mine = modules(1, "RJ.Mine")[0]

    live = azure_account.import_module(ModuleImport(mine, "1.0.0"))

    assert (live.name, live.provisioning_state) == (mine, "Succeeded")
    assert [r.path for r in arm.import_refusals] == [f"/modules/{mine}"]
    puts = arm.server.requests("PUT", f"/modules/{mine}$")
    assert [r.status for r in puts] == [429, 201]
    retry_after = arm.import_refusals[0].retry_after
    assert retry_after == FOREIGN_WINDOW
    assert puts[1].time - puts[0].time >= retry_after  # azure-core's RetryPolicy waited Retry-After


def test_client_throttled_import_after_the_retries_is_a_sentence(open_azure, arm, client, gallery, modules):
    arm.import_limit = (LIMIT, FOREIGN_WINDOW)
    for name in modules(LIMIT, "Foreign.Module"):
        _import(client, gallery, name)
    mine = modules(1, "RJ.Mine")[0]

    with pytest.raises(AccountError) as caught:
        open_azure(retry_status=0).import_module(ModuleImport(mine, "1.0.0"))

    assert str(caught.value) == (
        f"Azure kept throttling requests while importing module '{mine}' 1.0.0 into automation account "
        f"'{NAME}' and the retries ran out (TooManyRequests: The automation account '{NAME}' has started "
        f"{LIMIT} module imports in the last {FOREIGN_WINDOW:g} seconds; at most {LIMIT} are allowed. Retry "
        f"after {FOREIGN_WINDOW:g} seconds). Wait a few minutes and run again."
    )


def test_client_says_which_import_waits_for_the_window_and_how_long(open_azure, arm, modules, caplog):
    names = modules(LIMIT + 1)
    account = open_azure(imports_per_window=LIMIT, import_window=WINDOW)

    with caplog.at_level("INFO", logger="rjsync.accounts"):
        for name in names:
            account.import_module(ModuleImport(name, "1.0.0"))

    notes = [(r.getMessage(), r.target) for r in caplog.records if r.name == "rjsync.accounts.pacing"]
    assert notes == [(f"{names[LIMIT]} waits 1 s to be imported: the service starts at most {LIMIT} "
                      f"module imports per {WINDOW:g} s", account.target)]
