"""The ARM emulator itself, driven through the real SDK: what the account tests rely on."""

from __future__ import annotations

import time
from datetime import datetime, timezone

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


def _content_link(gallery, name: str, version: str) -> dict:
    return {"properties": {"contentLink": {"uri": f"{gallery.base_url}/package/{name}/{version}"}}}


def test_arm_emulator_module_put_answers_creating_without_a_version_until_the_import_ends(client, arm, gallery):
    arm.provisioning_steps = 1

    answer = client.module.create_or_update(GROUP, NAME, "Az.Accounts", _content_link(gallery, "Az.Accounts", "2.13.2"))
    polls = [client.module.get(GROUP, NAME, "Az.Accounts").properties for _ in range(2)]

    assert (answer.properties.provisioning_state, answer.properties.version) == ("Creating", None)
    assert [(p.provisioning_state, p.version) for p in polls] == [("ContentDownloaded", None), ("Succeeded", "2.13.2")]


def test_arm_emulator_module_import_can_end_created_and_loads_its_dependants(client, arm, gallery):
    arm.import_steps, arm.import_final_state = ["Updating"], "Created"
    client.module.create_or_update(GROUP, NAME, "Az.Accounts", _content_link(gallery, "Az.Accounts", "2.13.2"))
    states = [client.module.get(GROUP, NAME, "Az.Accounts").properties.provisioning_state for _ in range(2)]

    client.module.create_or_update(GROUP, NAME, "Az.Resources", _content_link(gallery, "Az.Resources", "6.12.0"))
    client.module.get(GROUP, NAME, "Az.Resources")

    assert states == ["Updating", "Created"]
    assert client.module.get(GROUP, NAME, "Az.Resources").properties.provisioning_state == "Created"


def test_arm_emulator_module_import_fails_while_its_dependency_is_being_upgraded(client, arm, gallery):
    arm.provisioning_steps = 0
    arm.account.add_module("Az.Accounts", "2.13.2")
    client.module.create_or_update(GROUP, NAME, "Az.Accounts", _content_link(gallery, "Az.Accounts", "3.0.0"))

    client.module.create_or_update(GROUP, NAME, "Az.Resources", _content_link(gallery, "Az.Resources", "6.12.0"))

    failed = client.module.get(GROUP, NAME, "Az.Resources").properties
    assert (failed.provisioning_state, failed.error.message) == ("Failed", (
        "Orchestrator.Shared.AsyncModuleImport.ModuleImportException: Cannot import the module of name "
        "Az.Resources, as the module structure was invalid. The required module 'Az.Accounts' with version "
        "'2.13.2' was not loaded."))


def test_arm_emulator_module_import_takes_the_package_url_the_gallery_redirects_to(client, arm, gallery):
    arm.provisioning_steps = 0
    uri = gallery.nupkg_url(gallery.find("Az.Accounts", "2.13.2"))

    client.module.create_or_update(GROUP, NAME, "Az.Accounts", {"properties": {"contentLink": {"uri": uri}}})

    module = client.module.get(GROUP, NAME, "Az.Accounts").properties
    assert (module.provisioning_state, module.version, module.content_link.uri) == ("Succeeded", "2.13.2", uri)


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


# -- job schedules and webhooks hang on a runbook's name --------------------------------------------


def _link(client, name=RUNBOOK, job_schedule="0f1e2d3c-0000-4000-8000-000000000001", webhook="wh-x"):
    client.job_schedule.create(GROUP, NAME, job_schedule, {"properties": {
        "schedule": {"name": "daily"}, "runbook": {"name": name}, "parameters": {"UserName": "alice"}}})
    client.webhook.create_or_update(GROUP, NAME, webhook, {"name": webhook, "properties": {
        "isEnabled": True, "runbook": {"name": name}, "parameters": {"Mode": "fast"}}})


def _links(client):
    # a job schedule's parameters come only with a GET of it: the list leaves them out
    listed = list(client.job_schedule.list_by_automation_account(GROUP, NAME))
    assert all(j.properties.parameters is None for j in listed)
    got = [client.job_schedule.get(GROUP, NAME, j.properties.job_schedule_id) for j in listed]
    return ([(j.properties.runbook.name, j.properties.schedule.name, j.properties.parameters) for j in got],
            [(w.name, w.properties.runbook.name, w.properties.parameters)
             for w in client.webhook.list_by_automation_account(GROUP, NAME)])


def test_arm_emulator_job_schedules_and_webhooks_stay_through_patch_draft_and_publish(client):
    _create(client)
    _link(client)

    client.runbook.update(GROUP, NAME, RUNBOOK, {"tags": {"a": "b"}, "properties": {"description": "X."}})
    client.runbook_draft.begin_replace_content(GROUP, NAME, RUNBOOK, b"v2", content_type="text/powershell").result()
    client.runbook.begin_publish(GROUP, NAME, RUNBOOK).result()

    assert _links(client) == ([(RUNBOOK, "daily", {"UserName": "alice"})], [("wh-x", RUNBOOK, {"Mode": "fast"})])
    job_schedule = client.job_schedule.get(GROUP, NAME, "0f1e2d3c-0000-4000-8000-000000000001")
    assert job_schedule.properties.job_schedule_id == "0f1e2d3c-0000-4000-8000-000000000001"


def test_arm_emulator_job_schedules_and_webhooks_go_with_a_deleted_runbook(client):
    _create(client)
    _create(client, "rjgit-org_general_y")
    _link(client)
    _link(client, "rjgit-org_general_y", "0f1e2d3c-0000-4000-8000-000000000002", "wh-y")

    client.runbook.delete(GROUP, NAME, RUNBOOK.upper())

    assert _links(client) == ([("rjgit-org_general_y", "daily", {"UserName": "alice"})],
                              [("wh-y", "rjgit-org_general_y", {"Mode": "fast"})])


def test_arm_emulator_a_put_on_an_existing_runbook_drops_its_job_schedules_and_webhooks(client):
    _create(client)
    _link(client)

    _create(client)  # the worst case of the re-PUT hazard

    assert _links(client) == ([], [])


def test_arm_emulator_links_only_an_existing_runbook(client):
    with pytest.raises(HttpResponseError) as caught:
        _link(client)

    assert caught.value.status_code == 404


# -- runbook jobs (fakes.arm_jobs) ---------------------------------------------------------------


def test_arm_emulator_job_put_answers_201_new_and_a_name_that_exists_200_which_the_sdk_refuses(arm, client):
    from fakes.arm_jobs import JobScript

    arm.account.add_runbook(RUNBOOK, b"Write-Output 1", runtime_environment="PowerShell-7.2")
    arm.script_job(RUNBOOK, JobScript(duration=60))
    body = {"properties": {"runbook": {"name": RUNBOOK}, "parameters": {"A": "1"}, "runOn": ""}}
    job = client.job.create(GROUP, NAME, "0f5e8f4e-3f0a-4d7e-9c56-1a2b3c4d5e6f", body)
    p = job.properties
    assert (p.status, p.provisioning_state, p.start_time, p.parameters) == ("New", "Processing", None, {"A": "1"})
    assert p.job_runtime_environment.runtime_environment_name == "PowerShell-7.2"
    assert client.job.get(GROUP, NAME, job.name).properties.status == "Running"
    with pytest.raises(HttpResponseError) as caught:  # createJob's only success code is 201
        client.job.create(GROUP, NAME, job.name, {"properties": {"runbook": {"name": RUNBOOK}}})
    assert caught.value.status_code == 200 and caught.value.response.json()["properties"]["parameters"] == {"A": "1"}


def test_arm_emulator_job_streams_list_without_text_and_output_as_text_plain(arm, client):
    from fakes.arm_jobs import JobScript, StreamScript

    arm.account.add_runbook(RUNBOOK, b"")
    arm.script_job(RUNBOOK, JobScript(streams=[StreamScript("Output", "one"), StreamScript("Verbose", "two"),
                                               StreamScript("Output", "three")]))
    client.job.create(GROUP, NAME, "0f5e8f4e-3f0a-4d7e-9c56-1a2b3c4d5e6f", {"properties": {"runbook": {"name": RUNBOOK}}})
    listed = list(client.job_stream.list_by_job(GROUP, NAME, "0f5e8f4e-3f0a-4d7e-9c56-1a2b3c4d5e6f"))
    assert [(s.properties.stream_type, s.properties.stream_text) for s in listed] == [
        ("Output", None), ("Verbose", None), ("Output", None)]
    assert listed[0].properties.job_stream_id.startswith("0f5e8f4e-3f0a-4d7e-9c56-1a2b3c4d5e6f_")
    one = client.job_stream.get(GROUP, NAME, "0f5e8f4e-3f0a-4d7e-9c56-1a2b3c4d5e6f", listed[1].properties.job_stream_id)
    assert (one.properties.stream_text, one.properties.summary) == ("two", "two")
    assert client.job.get_output(GROUP, NAME, "0f5e8f4e-3f0a-4d7e-9c56-1a2b3c4d5e6f") == "one\nthree"
    assert arm.server.requests("GET", "/output$")[0].status == 200


def test_arm_emulator_account_has_a_system_assigned_identity_unless_removed(client, arm):
    from fakes.arm import TENANT_ID, system_identity

    account = client.automation_account.get(GROUP, NAME)
    assert (account.identity.type.value, account.identity.principal_id, account.identity.tenant_id) == (
        "SystemAssigned", system_identity(NAME), TENANT_ID)

    arm.account.identity = None
    assert client.automation_account.get(GROUP, NAME).identity is None


def test_arm_emulator_job_list_filters_pages_and_leaves_out_what_the_list_does(client, arm):
    from fakes.arm_jobs import JobScript

    account = arm.account
    account.add_runbook("rjgit-a", b"'a'")
    done = [account.add_job("rjgit-a", JobScript(status="Failed", exception="boom")) for _ in range(3)]
    time.sleep(0.01)
    since = datetime.now(timezone.utc)
    queued = [account.add_job("rjgit-a", JobScript(queued=60)) for _ in range(3)]
    arm.page_size = 2
    arm.server.clear_log()

    listed = list(client.job.list_by_automation_account(
        GROUP, NAME, filter=f"properties/creationTime ge {since.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}"))

    assert [j.name for j in listed] == [j.name for j in reversed(queued)]  # newest first
    pages = arm.server.requests("GET", r"/jobs$")
    assert len(pages) == 2 and pages[1].query["$filter"] == pages[0].query["$filter"]  # the next page keeps it
    every = list(client.job.list_by_automation_account(GROUP, NAME))
    assert len(every) == 6 and {j.properties.status for j in every} == {"New", "Failed"}
    assert {key for j in every for key in dict(j.properties)} == {  # listJobsByAutomationAccount.json
        "jobId", "runbook", "provisioningState", "status", "creationTime", "startTime", "lastModifiedTime", "endTime",
        "jobRuntimeEnvironment"}
    # Az.Automation's clauses (GetJobFilterString): a job not started has no startTime (null: no match)
    failed = client.job.list_by_automation_account(
        GROUP, NAME, filter=f"properties/status eq 'Failed' and properties/runbook/name eq 'rjgit-a' and "
                            f"properties/startTime ge {done[0].created_at.isoformat().replace('+00:00', 'Z')}")
    assert sorted(j.name for j in failed) == sorted(j.name for j in done)
    offset = list(client.job.list_by_automation_account(  # the SDK sends a '+' of an offset as %2B
        GROUP, NAME, filter=f"properties/creationTime ge {since.isoformat()}"))
    assert [j.name for j in offset] == [j.name for j in listed]
    with pytest.raises(HttpResponseError) as caught:  # a clause the emulator does not know (answer assumed)
        list(client.job.list_by_automation_account(GROUP, NAME, filter="properties/jobId eq 'x'"))
    assert caught.value.status_code == 400
