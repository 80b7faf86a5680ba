"""The ARM emulator itself, driven through the real SDK: what the account tests rely on."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from fakes.accounts import GROUP, NAME

RUNBOOK = "rjgit-org_general_x"


@pytest.fixture
def client(sdk_client):
    return sdk_client(retry_backoff_factor=0.001)


def _create(client, name=RUNBOOK, runbook_type="PowerShell"):
    return client.runbook.create_or_update(GROUP, NAME, name, {
        "name": name, "location": "westeurope", "properties": {"runbookType": runbook_type, "draft": {}}})


def test_arm_emulator_runbook_states_walk_new_published_edit(client):
    states = [_create(client).properties.state]
    client.runbook_draft.begin_replace_content(GROUP, NAME, RUNBOOK, b"v1", content_type="text/powershell").result()
    states.append(client.runbook.get(GROUP, NAME, RUNBOOK).properties.state)
    client.runbook.begin_publish(GROUP, NAME, RUNBOOK).result()
    states.append(client.runbook.get(GROUP, NAME, RUNBOOK).properties.state)
    client.runbook_draft.begin_replace_content(GROUP, NAME, RUNBOOK, b"v2", content_type="text/powershell").result()
    states.append(client.runbook.get(GROUP, NAME, RUNBOOK).properties.state)
    published = b"".join(client.runbook.get_content(GROUP, NAME, RUNBOOK, stream=True))
    client.runbook_draft.undo_edit(GROUP, NAME, RUNBOOK)
    states.append(client.runbook.get(GROUP, NAME, RUNBOOK).properties.state)

    assert states == ["New", "New", "Published", "Edit", "Published"]
    assert published == b"v1"


def test_arm_emulator_refuses_a_runbook_type_change(client):
    _create(client)

    with pytest.raises(HttpResponseError) as caught:
        _create(client, runbook_type="PowerShell72")

    assert caught.value.status_code == 400


def test_arm_emulator_module_import_fails_for_a_missing_dependency_after_intermediate_states(client, arm, gallery):
    client.module.create_or_update(GROUP, NAME, "Az.Resources", {"properties": {"contentLink": {
        "uri": f"{gallery.base_url}/package/Az.Resources/6.12.0"}}})

    states = [client.module.get(GROUP, NAME, "Az.Resources").properties for _ in range(4)]

    assert [p.provisioning_state for p in states] == ["ContentDownloaded", "ContentValidated", "ModuleDataStored", "Failed"]
    assert states[-1].error.message == (
        "Orchestrator.Shared.AsyncModuleImport.ModuleImportException: Cannot import the module of name "
        "Az.Resources, as the module structure was invalid. The required module 'Az.Accounts' with version "
        "'2.13.2' was not loaded."
    )


def test_arm_emulator_module_import_fails_for_an_unknown_gallery_package(client, arm, gallery):
    arm.provisioning_steps = 0
    uri = f"{gallery.base_url}/package/Az.Nope/1.0.0"
    client.module.create_or_update(GROUP, NAME, "Az.Nope", {"properties": {"contentLink": {"uri": uri}}})

    module = client.module.get(GROUP, NAME, "Az.Nope")

    assert (module.properties.provisioning_state, module.properties.error.message) == (
        "Failed", "Orchestrator.Shared.AsyncModuleImport.ModuleImportException: The module content could not be "
                  f"downloaded from '{uri}': (404) Not Found.")


def test_arm_emulator_fault_by_exact_request_fires_once(client, arm):
    arm.server.fail(503, method="GET", path="/runbooks$", nth=2)

    for _ in range(3):
        list(client.runbook.list_by_automation_account(GROUP, NAME))

    assert [r.status for r in arm.server.requests("GET", "/runbooks$")] == [200, 503, 200, 200]


def test_arm_emulator_rate_faults_repeat_with_the_seed(client, arm):
    def run():
        arm.server.clear_log()
        arm.server.clear_faults()
        arm.server.seed(5)
        arm.server.fail(503, rate=0.3)
        for _ in range(10):
            list(client.runbook.list_by_automation_account(GROUP, NAME))
        return [r.status for r in arm.server.log]

    first = run()

    assert first == run()
    assert 503 in first
