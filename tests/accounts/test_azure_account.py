"""Azure-specific behaviour of the Azure account: paging, long-running operations, retries under
faults, errors as sentences, module imports. The real SDK talks to the ARM emulator."""

from __future__ import annotations

import json
import socket
import time

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from fakes.accounts import ARM_ID, FAST, GROUP, NAME, SUBSCRIPTION, receipt_without_stamp
from fakes.arm import StaticTokenCredential
from rjsync.accounts import ModuleImport, RunbookWrite, open_account
from rjsync.errors import AccountError

RUNBOOK = "rjgit-user_security_reset-password"


def spec(name=RUNBOOK, content=b"Write-Output 1\r\n", **fields):
    fields.setdefault("receipt", {"rjsync.sha256": f"sha-of-{name}"})
    return RunbookWrite(name, content, description="Reset a password.", **fields)


def test_azure_account_snapshot_follows_paging_over_250_runbooks(azure_account, arm):
    for i in range(250):
        arm.account.add_runbook(f"rjgit-org_general_runbook-{i:03}", b"x")

    snapshot = azure_account.snapshot()

    assert [r.name for r in snapshot.runbooks] == [f"rjgit-org_general_runbook-{i:03}" for i in range(250)]
    pages = arm.server.requests("GET", r"/runbooks$")
    assert [p.query.get("$skip") for p in pages] == [None, "100", "200"]


def test_azure_account_write_runbook_waits_for_each_long_running_operation(azure_account, arm):
    arm.lro_polls = 3

    azure_account.write_runbook(spec())

    steps = [(r.method, r.path.rsplit("/", 2)[-2:] if "operationResults" in r.path else r.path.split(NAME)[1], r.status)
             for r in arm.server.log]
    assert steps == [
        ("GET", "", 200),
        ("PUT", f"/runbooks/{RUNBOOK}", 201),
        ("PUT", f"/runbooks/{RUNBOOK}/draft/content", 202),
        ("GET", ["operationResults", "op-1"], 202),
        ("GET", ["operationResults", "op-1"], 202),
        ("GET", ["operationResults", "op-1"], 202),
        ("GET", ["operationResults", "op-1"], 200),
        ("POST", f"/runbooks/{RUNBOOK}/publish", 202),
        ("GET", ["operationResults", "op-2"], 202),
        ("GET", ["operationResults", "op-2"], 202),
        ("GET", ["operationResults", "op-2"], 202),
        ("GET", ["operationResults", "op-2"], 200),
        ("PATCH", f"/runbooks/{RUNBOOK}", 200),
    ]



def test_azure_account_changes_an_existing_runbook_in_place_without_a_put(azure_account, arm):
    arm.account.add_runbook(RUNBOOK, b"v1", runtime_environment=None)

    live = azure_account.write_runbook(spec(content=b"v2", exists=True))

    steps = [(r.method, r.path.split(NAME)[1], r.status) for r in arm.server.log if "operationResults" not in r.path]
    assert steps == [
        ("GET", "", 200),
        ("PATCH", f"/runbooks/{RUNBOOK}", 200),
        ("PUT", f"/runbooks/{RUNBOOK}/draft/content", 202),
        ("POST", f"/runbooks/{RUNBOOK}/publish", 202),
        ("PATCH", f"/runbooks/{RUNBOOK}", 200),
    ]
    assert (live.state, live.description) == ("Published", "Reset a password.")
    assert azure_account.read_content(RUNBOOK) == b"v2"


def test_azure_account_update_of_a_runbook_deleted_since_the_plan_creates_it(azure_account, arm):
    live = azure_account.write_runbook(spec(exists=True))

    steps = [(r.method, r.path.split(NAME)[1], r.status) for r in arm.server.log if "operationResults" not in r.path]
    assert steps[1:3] == [("PATCH", f"/runbooks/{RUNBOOK}", 404), ("PUT", f"/runbooks/{RUNBOOK}", 201)]
    assert (live.name, live.state) == (RUNBOOK, "Published")

def test_azure_account_long_running_operations_honour_retry_after(azure_account, arm):
    arm.lro_retry_after_ms = "150"

    azure_account.write_runbook(spec())

    for op in ("op-1", "op-2"):  # upload, publish: the first poll at once, the next after Retry-After
        polls = arm.server.requests("GET", rf"operationResults/{op}$")
        assert [p.status for p in polls] == [202, 200]
        assert polls[1].time - polls[0].time >= 0.14


def test_azure_account_writes_survive_20_percent_throttling_and_503_without_duplicates(azure_account, arm):
    arm.server.seed(20)
    arm.server.fail(429, rate=0.10, retry_after="0.001", message="Too many requests (injected).")
    arm.server.fail(503, rate=0.11)
    names = [f"rjgit-user_general_runbook-{i:02}" for i in range(40)]

    for name in names:
        azure_account.write_runbook(spec(name, content=f"Write-Output '{name}'\r\n".encode()))
    snapshot = azure_account.snapshot()

    faulted = arm.server.requests(fault=True)
    assert 0.15 < len(faulted) / len(arm.server.log) < 0.25
    assert {r.status for r in faulted} == {429, 503}
    assert [r.name for r in snapshot.runbooks] == names
    for runbook in snapshot.runbooks:
        assert (runbook.state, runbook.tags["rjsync.sha256"]) == ("Published", f"sha-of-{runbook.name}")
        assert arm.account.runbook(runbook.name).published == f"Write-Output '{runbook.name}'\r\n".encode()
    for method, path in [("PUT", r"/runbooks/[^/]+$"), ("PUT", "/draft/content$"), ("POST", "/publish$"), ("PATCH", "")]:
        carried_out = arm.server.requests(method, path, fault=False)
        assert len(carried_out) == len(names), (method, path)


def test_azure_account_write_survives_dropped_connections(azure_account, arm):
    arm.server.drop(method="PUT", path=r"/runbooks/[^/]+$", nth=1, after=True)  # done, answer lost
    arm.server.drop(method="PUT", path=r"/draft/content$", nth=1)  # reset before it was carried out
    arm.server.drop(method="POST", path=r"/publish$", nth=1)
    arm.server.drop(method="PATCH", nth=1)

    live = azure_account.write_runbook(spec(content=b"after the storm"))

    assert [r.fault for r in arm.server.requests(fault=True)] == ["drop-after", "drop", "drop", "drop"]
    assert (live.state, receipt_without_stamp(live.tags)) == ("Published", {"rjsync.sha256": f"sha-of-{RUNBOOK}"})
    assert azure_account.read_content(RUNBOOK) == b"after the storm"
    assert len(arm.account.runbooks) == 1


def test_azure_account_survives_latency(open_azure, arm):
    arm.server.delay(0.3, method="GET", path=r"/runbooks$")

    started = time.monotonic()
    open_azure().snapshot()

    assert time.monotonic() - started >= 0.3


def test_azure_account_receipt_is_not_written_when_publish_fails(azure_account, arm):
    azure_account.write_runbook(spec(content=b"v1"))
    arm.server.fail(400, method="POST", path="/publish$", code="BadRequest",
                    message="The runbook has a syntax error at line 3.")

    with pytest.raises(AccountError) as caught:
        azure_account.write_runbook(spec(content=b"v2", receipt={"rjsync.sha256": "sha-of-v2"}))

    assert str(caught.value) == (
        f"Azure refused publishing runbook '{RUNBOOK}' (HTTP 400, BadRequest: The runbook has a syntax "
        "error at line 3)."
    )
    live = azure_account.snapshot().runbook(RUNBOOK)
    assert "rjsync.sha256" not in live.tags  # no valid receipt: the next plan compares content
    assert live.state == "Edit"


def test_azure_account_exhausted_throttling_is_a_sentence(open_azure, arm):
    arm.server.fail(429, retry_after="0.001", message="Rate limit exceeded.")

    with pytest.raises(AccountError) as caught:
        open_azure(retry_status=2).snapshot()

    assert str(caught.value) == (
        "Azure kept throttling requests while listing the runbooks and the retries ran out "
        "(TooManyRequests: Rate limit exceeded). Wait a few minutes and run again."
    )
    assert len(arm.server.log) == 3


def test_azure_account_rejected_token_is_a_sentence(open_azure, arm):
    account = open_azure(credential=StaticTokenCredential("expired-token"))

    with pytest.raises(AccountError) as caught:
        account.snapshot()

    assert str(caught.value) == (
        "Azure rejected the credentials while listing the runbooks (InvalidAuthenticationToken: "
        "The access token is invalid). Check --auth, and that the identity belongs to the tenant of "
        f"subscription {SUBSCRIPTION}."
    )


def test_azure_account_credential_that_cannot_get_a_token_is_a_sentence(open_azure, arm):
    class NotSignedIn:
        def get_token(self, *scopes, **kwargs) -> AccessToken:
            raise ClientAuthenticationError("AzureCliCredential: Please run 'az login' to set up an account")

    with pytest.raises(AccountError) as caught:
        open_azure(credential=NotSignedIn()).snapshot()

    assert str(caught.value) == (
        "Could not get an Azure access token (--auth custom credential): AzureCliCredential: Please run "
        "'az login' to set up an account"
    )


def test_azure_account_write_without_the_role_is_a_sentence(azure_account, arm):
    arm.tokens["test-token"] = "reader"

    with pytest.raises(AccountError) as caught:
        azure_account.write_runbook(spec())

    assert str(caught.value) == (
        f"Access denied while creating or updating runbook '{RUNBOOK}' in automation account '{NAME}' "
        "(AuthorizationFailed: The client 'reader-client' with object id "
        "'00000000-0000-0000-0000-000000000006' does not have authorization to perform action "
        "'Microsoft.Automation/automationAccounts/runbooks/write' over scope "
        f"'{ARM_ID}/runbooks/{RUNBOOK}' or the scope is invalid. If access was recently granted, please "
        "refresh your credentials). Give the identity the Automation Contributor role on the account."
    )
    assert arm.account.runbooks == {}


def test_azure_account_read_without_any_role_is_a_sentence(azure_account, arm):
    arm.tokens["test-token"] = "none"

    with pytest.raises(AccountError, match=r"^Access denied while listing the runbooks in automation "
                                           r"account 'aa-realmjoin-test' \(AuthorizationFailed: .*Give the identity "
                                           r"the Automation Contributor role on the account\.$"):
        azure_account.snapshot()


def test_azure_account_unknown_account_is_a_sentence(open_azure, arm):
    target = ARM_ID.replace(NAME, "aa-realmjoin-typo")

    with pytest.raises(AccountError) as caught:
        open_azure(target).snapshot()

    assert str(caught.value) == (
        f"Automation account 'aa-realmjoin-typo' was not found in resource group '{GROUP}' of subscription "
        f"{SUBSCRIPTION} (ResourceNotFound). Check the ARM id, and that the identity has access to the "
        "subscription."
    )


def test_azure_account_unknown_resource_group_is_a_sentence(open_azure, arm):
    with pytest.raises(AccountError) as caught:
        open_azure(ARM_ID.replace(GROUP, "rg-other")).write_runbook(spec())

    assert str(caught.value) == (
        f"Automation account '{NAME}' was not found in resource group 'rg-other' of subscription "
        f"{SUBSCRIPTION} (ResourceGroupNotFound). Check the ARM id, and that the identity has access to the "
        "subscription."
    )


def test_azure_account_unreachable_endpoint_is_a_sentence(arm, gallery, credential):
    from rjsync.accounts import open_account

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    account = open_account(ARM_ID, arm_endpoint=f"https://127.0.0.1:{port}", credential=credential, settings=FAST)

    with pytest.raises(AccountError) as caught:
        account.snapshot()

    assert str(caught.value).startswith(
        f"Cannot reach Azure Resource Manager at https://127.0.0.1:{port}/ while listing the runbooks: "
    )
    assert str(caught.value).endswith(
        "Check the network, --cloud/--arm-endpoint and the CA bundle (REQUESTS_CA_BUNDLE)."
    )


def test_azure_account_asks_for_the_scope_of_its_cloud(open_azure, arm):
    public, china = StaticTokenCredential(), StaticTokenCredential()

    open_azure(credential=public).snapshot()
    from rjsync.accounts import open_account
    open_account(ARM_ID, cloud="china", arm_endpoint=arm.endpoint, credential=china, settings=FAST).snapshot()

    assert set(public.scopes) == {("https://management.azure.com/.default",)}
    assert set(china.scopes) == {("https://management.chinacloudapi.cn/.default",)}


def test_azure_account_never_puts_the_token_in_a_message(open_azure, arm):
    arm.tokens["s3cr3t-token-value"] = "reader"
    account = open_azure(credential=StaticTokenCredential("s3cr3t-token-value"))

    with pytest.raises(AccountError) as caught:
        account.write_runbook(spec())

    assert "s3cr3t" not in str(caught.value)


# -- modules and packages ------------------------------------------------------------------------


def test_azure_account_import_module_imports_dependencies_first_through_provisioning(azure_account, arm):
    live = azure_account.import_module(ModuleImport("Az.Websites", "3.1.0"))

    puts = [r.path.rsplit("/", 1)[1] for r in arm.server.requests("PUT", "/modules/")]
    assert puts == ["Az.Accounts", "Az.Storage", "Az.Websites"]
    assert (live.name, live.version, live.provisioning_state) == ("Az.Websites", "3.1.0", "Succeeded")
    assert {(m.name, m.version) for m in azure_account.snapshot().modules} == {
        ("Az.Accounts", "2.13.2"), ("Az.Storage", "6.0.0"), ("Az.Websites", "3.1.0")}
    polls = arm.server.requests("GET", "/modules/Az.Websites$")
    assert len(polls) == arm.provisioning_steps + 1  # every intermediate state, then Succeeded


def test_azure_account_import_module_skips_dependencies_already_satisfied(azure_account, arm):
    arm.account.add_module("Az.Accounts", "3.0.0")

    azure_account.import_module(ModuleImport("Az.Resources", "6.12.0"))

    assert [r.path.rsplit("/", 1)[1] for r in arm.server.requests("PUT", "/modules/")] == ["Az.Resources"]


def test_azure_account_import_module_upgrades_an_older_dependency(azure_account, arm):
    arm.account.add_module("Az.Accounts", "2.12.1")

    azure_account.import_module(ModuleImport("Az.Resources", "6.12.0"))

    assert azure_account.snapshot().module("Az.Accounts").version == "2.13.2"


def test_azure_account_failed_module_import_shows_the_service_error(azure_account, arm):
    arm.import_failures["exchangeonlinemanagement"] = (
        "Orchestrator.Shared.AsyncModuleImport.ModuleImportException: The module exceeds the size limit of 100 MB."
    )

    with pytest.raises(AccountError) as caught:
        azure_account.import_module(ModuleImport("ExchangeOnlineManagement", "3.4.0"))

    assert str(caught.value) == (
        f"Importing module 'ExchangeOnlineManagement' 3.4.0 into automation account '{NAME}' failed: "
        "Orchestrator.Shared.AsyncModuleImport.ModuleImportException: The module exceeds the size limit of 100 MB."
    )
    assert azure_account.snapshot().module("ExchangeOnlineManagement").provisioning_state == "Failed"


def test_azure_account_failed_package_import_names_the_runtime_environment(azure_account, arm):
    azure_account.ensure_runtime_environment()
    arm.import_failures["microsoft.graph.authentication"] = "The package could not be extracted."

    with pytest.raises(AccountError) as caught:
        azure_account.import_module(ModuleImport("Microsoft.Graph.Users", "2.15.0", runtime_environment="RJ-PowerShell-7.4"))

    assert str(caught.value) == (
        "Importing package 'Microsoft.Graph.Authentication' 2.15.0 into runtime environment "
        f"'RJ-PowerShell-7.4' of automation account '{NAME}' failed: The package could not be extracted."
    )
    assert arm.server.requests("PUT", "/packages/Microsoft.Graph.Users$") == []


def test_azure_account_import_module_unknown_to_the_gallery_is_a_sentence(azure_account, arm, gallery):
    with pytest.raises(AccountError) as caught:
        azure_account.import_module(ModuleImport("Az.Nope", "1.0.0"))

    assert str(caught.value) == (
        f"Module 'Az.Nope' version 1.0.0 is not in the PowerShell Gallery ({gallery.base_url}): check the "
        "module name and version."
    )
    assert arm.server.requests("PUT") == []


def test_azure_account_import_module_into_a_missing_environment_is_a_sentence(azure_account, arm):
    with pytest.raises(AccountError) as caught:
        azure_account.import_module(ModuleImport("Az.Accounts", "2.13.2", runtime_environment="RJ-PowerShell-7.4"))

    assert str(caught.value) == (
        f"Runtime environment 'RJ-PowerShell-7.4' does not exist in automation account '{NAME}': create it "
        "first (rjsync creates RJ-PowerShell-7.4 when it is missing)."
    )


def test_azure_account_paces_module_imports_to_the_service_limit(open_azure, arm, gallery):
    for i in range(7):
        gallery.add(f"RJ.Module{i}", "1.0.0")
    account = open_azure(imports_per_window=5, import_window=0.4)

    for i in range(7):
        account.import_module(ModuleImport(f"RJ.Module{i}", "1.0.0"))

    stamps = [r.time for r in arm.server.requests("PUT", "/modules/")]
    assert len(stamps) == 7
    assert all(later - earlier >= 0.3 for earlier, later in zip(stamps, stamps[5:]))  # not ~10 ms


def test_azure_account_ensure_runtime_environment_creates_powershell_74(azure_account, arm):
    azure_account.ensure_runtime_environment()
    azure_account.ensure_runtime_environment()

    created = arm.server.requests("PUT", "/runtimeEnvironments/")
    assert len(created) == 1
    import json
    body = json.loads(created[0].body)
    assert body["properties"]["runtime"] == {"language": "PowerShell", "version": "7.4"}
    assert body["location"] == arm.account.location


def test_azure_account_ensure_runtime_environment_sends_az_and_reads_the_names_lower_cased(azure_account, arm):
    created = azure_account.ensure_runtime_environment()

    body = json.loads(arm.server.requests("PUT", "/runtimeEnvironments/")[0].body)
    assert body["properties"]["defaultPackages"] == {"Az": "12.3.0"}
    assert arm.account.environments["rj-powershell-7.4"].default_packages == {"Az": "12.3.0"}
    # the service answers the names in lower case (shared notes, "Runtime environments")
    assert created.default_packages == {"az": "12.3.0"}
    assert azure_account.snapshot().runtime_environment("RJ-PowerShell-7.4").default_packages == {"az": "12.3.0"}


def test_azure_account_keeps_at_most_max_concurrent_requests_in_flight(open_azure, arm):
    from concurrent.futures import ThreadPoolExecutor

    for i in range(8):
        arm.account.add_runbook(f"rjgit-user_general_r{i}", b"Write-Output 1")
    account = open_azure(max_concurrent_requests=2)
    arm.server.delay(0.2, path=r"/content$")

    with ThreadPoolExecutor(8) as pool:
        contents = list(pool.map(account.read_content, [f"rjgit-user_general_r{i}" for i in range(8)]))

    assert contents == [b"Write-Output 1"] * 8
    arrived = sorted(r.time for r in arm.server.requests(path=r"/content$"))
    # two at a time: every third request arrived only after one of the first two finished
    assert all(arrived[i + 2] - arrived[i] >= 0.19 for i in range(len(arrived) - 2)), arrived


def test_azure_account_import_from_a_mirror_never_shows_the_credentials_in_its_url(arm, gallery, credential):
    mirror = gallery.serve_at("/repository/psgallery").replace("https://", "https://ci:tok3n@")
    gallery.redirects = False  # a mirror that serves the package itself: the link is on the mirror
    link = f"{mirror}/package/Az.Accounts/2.13.2"
    arm.import_failures["az.accounts"] = (
        f"Orchestrator.Shared.AsyncModuleImport.ModuleImportException: The module content could not be "
        f"downloaded from '{link}': (401) Unauthorized.")
    account = open_account(ARM_ID, arm_endpoint=arm.endpoint, credential=credential, gallery_url=mirror, settings=FAST)
    try:
        with pytest.raises(AccountError) as caught:
            account.import_module(ModuleImport("Az.Accounts", "2.13.2"))
    finally:
        account.close()

    assert json.loads(arm.server.requests("PUT", "/modules/")[0].body)["properties"]["contentLink"]["uri"] == link
    assert "tok3n" not in str(caught.value)
    assert str(caught.value).endswith(
        f"downloaded from '{link.replace('ci:tok3n@', '***@')}': (401) Unauthorized.")
