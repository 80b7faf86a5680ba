"""Opening an account from a target string, and choosing the identity and the cloud."""

from __future__ import annotations

import pytest
import trustme
from azure.identity import (
    AzureCliCredential,
    CertificateCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

from fakes.accounts import ARM_ID, GROUP, NAME, SUBSCRIPTION
from rjsync.accounts import open_account
from rjsync.accounts.azure import AzureAccount
from rjsync.accounts.credentials import make_credential, resolve_cloud
from rjsync.accounts.local import LocalAccount
from rjsync.accounts.targets import ArmId, LocalTarget
from rjsync.errors import AccountError

FORM = ("/subscriptions/<subscription-id>/resourceGroups/<group>/providers/"
        "Microsoft.Automation/automationAccounts/<account>")
SUB = SUBSCRIPTION
AZURE_ENV = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
             "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD")


@pytest.fixture(autouse=True)
def _clean_azure_environment(monkeypatch):
    for name in AZURE_ENV:
        monkeypatch.delenv(name, raising=False)


def test_open_account_local_target_opens_a_directory_account(tmp_path):
    account = open_account(f"local:{tmp_path}/acc")

    assert isinstance(account, LocalAccount)
    assert account.path == tmp_path / "acc"


def test_open_account_arm_id_opens_an_azure_account_without_contacting_it():
    account = open_account(ARM_ID.replace("resourceGroups", "resourcegroups"), auth="cli")

    assert isinstance(account, AzureAccount)
    assert (account.arm_id.subscription, account.arm_id.resource_group, account.arm_id.account) == (SUB, GROUP, NAME)
    assert account.target == ARM_ID


def test_open_account_takes_a_target_already_parsed(tmp_path):
    local = open_account(LocalTarget(f"{tmp_path}/acc"))
    azure = open_account(ArmId(SUB, GROUP, NAME), auth="cli")

    assert isinstance(local, LocalAccount) and local.path == tmp_path / "acc"
    assert isinstance(azure, AzureAccount) and azure.target == ARM_ID


@pytest.mark.parametrize("target, message", [
    ("", f"No target given: use local:PATH for a directory account, or an automation account's ARM id {FORM}."),
    ("local:", "The target 'local:' names no folder: use local:PATH, e.g. local:./account."),
    ("aa-realmjoin-test", "Unknown target 'aa-realmjoin-test': use local:PATH for a directory account, or an "
                          f"automation account's ARM id {FORM}."),
])
def test_open_account_refuses_a_target_it_cannot_read(target, message):
    with pytest.raises(AccountError) as caught:
        open_account(target)

    assert str(caught.value) == message


@pytest.mark.parametrize("arm_id, why", [
    (f"/subscriptions/{SUB}/resourceGroups/{GROUP}/providers/Microsoft.Automation/automationAccounts",
     "the account name is missing"),
    (f"/subscriptions/{SUB}/resourceGroups/{GROUP}", "'providers' is missing"),
    (f"/subscriptions/{SUB}/resourceGroups/{GROUP}/providers/Microsoft.Automation/automationAccounts/{NAME}/overview",
     "remove the trailing '/overview'; the id ends with the account name"),
    (f"/subscriptions/{SUB}/resourceGroups/{GROUP}/providers/Microsoft.Web/sites/{NAME}",
     "it names a Microsoft.Web resource, not Microsoft.Automation"),
    (f"/subscriptions/{SUB}/resourceGroups/{GROUP}/providers/Microsoft.Automation/runbooks/{NAME}",
     "it names Microsoft.Automation/runbooks, not an automation account"),
    (f"/subscription/{SUB}/resourceGroups/{GROUP}/providers/Microsoft.Automation/automationAccounts/{NAME}",
     "expected 'subscriptions' where it says 'subscription'"),
    (f"/subscriptions/my-subscription/resourceGroups/{GROUP}/providers/Microsoft.Automation/automationAccounts/{NAME}",
     "the subscription id 'my-subscription' is not a GUID"),
    (f"/subscriptions/{SUB}/resourceGroups/rg%20x/providers/Microsoft.Automation/automationAccounts/{NAME}",
     "'rg%20x' is not a valid resource group name"),
    (f"/subscriptions/{SUB}/resourceGroups/{GROUP}/providers/Microsoft.Automation/automationAccounts/aa_1",
     "'aa_1' is not a valid automation account name (6-50 letters, digits and hyphens, starting with a letter)"),
    (f"https://portal.azure.com/#@contoso/resource/subscriptions/{SUB}/resourceGroups/{GROUP}",
     "it is a URL; use the part from /subscriptions/ on"),
])
def test_open_account_bad_arm_id_says_what_is_wrong(arm_id, why):
    with pytest.raises(AccountError) as caught:
        open_account(arm_id)

    assert str(caught.value) == f"'{arm_id}' is not an automation account's ARM id: {why}. Expected {FORM}."


# -- --auth ---------------------------------------------------------------------------------------


def test_make_credential_default_is_default_azure_credential():
    assert isinstance(make_credential(), DefaultAzureCredential)


def test_make_credential_managed_identity_takes_a_client_id():
    credential = make_credential("managed-identity", client_id="11111111-2222-3333-4444-555555555555")

    assert isinstance(credential, ManagedIdentityCredential)


def test_make_credential_cli_is_the_azure_cli():
    assert isinstance(make_credential("cli"), AzureCliCredential)


def test_make_credential_client_secret_reads_the_azure_identity_variables(monkeypatch):
    monkeypatch.setenv("AZURE_TENANT_ID", "contoso.onmicrosoft.com")
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "very-secret")

    assert isinstance(make_credential("client-secret"), ClientSecretCredential)


def test_make_credential_workload_identity_reads_the_federated_token_file(monkeypatch, tmp_path):
    (tmp_path / "token").write_text("eyJ...")
    monkeypatch.setenv("AZURE_TENANT_ID", "contoso.onmicrosoft.com")
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555")
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(tmp_path / "token"))

    assert isinstance(make_credential("workload-identity"), WorkloadIdentityCredential)


def test_make_credential_certificate_reads_the_certificate(monkeypatch, tmp_path):
    pem = tmp_path / "client.pem"
    client = trustme.CA().issue_cert("rjsync-client", key_type=trustme.KeyType.RSA)
    client.private_key_and_cert_chain_pem.write_to_path(str(pem))
    monkeypatch.setenv("AZURE_TENANT_ID", "contoso.onmicrosoft.com")
    monkeypatch.setenv("AZURE_CLIENT_ID", "11111111-2222-3333-4444-555555555555")
    monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PATH", str(pem))

    assert isinstance(make_credential("certificate"), CertificateCredential)


@pytest.mark.parametrize("auth, present, message", [
    ("client-secret", {"AZURE_TENANT_ID": "t"},
     "--auth client-secret needs the environment variables AZURE_TENANT_ID, AZURE_CLIENT_ID and "
     "AZURE_CLIENT_SECRET; missing: AZURE_CLIENT_ID and AZURE_CLIENT_SECRET."),
    ("workload-identity", {"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c"},
     "--auth workload-identity needs the environment variables AZURE_TENANT_ID, AZURE_CLIENT_ID and "
     "AZURE_FEDERATED_TOKEN_FILE; missing: AZURE_FEDERATED_TOKEN_FILE."),
    ("certificate", {},
     "--auth certificate needs the environment variables AZURE_TENANT_ID, AZURE_CLIENT_ID and "
     "AZURE_CLIENT_CERTIFICATE_PATH; missing: AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_CERTIFICATE_PATH."),
    ("password", {}, "Unknown --auth 'password': choose one of default, managed-identity, workload-identity, cli, "
                     "client-secret, certificate, github-oidc."),
])
def test_make_credential_names_what_is_missing(monkeypatch, auth, present, message):
    for name, value in present.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(AccountError) as caught:
        make_credential(auth)

    assert str(caught.value) == message


def test_make_credential_unreadable_certificate_is_a_sentence_without_the_password(monkeypatch, tmp_path):
    monkeypatch.setenv("AZURE_TENANT_ID", "t")
    monkeypatch.setenv("AZURE_CLIENT_ID", "c")
    monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PATH", str(tmp_path / "missing.pem"))
    monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PASSWORD", "hunter2-password")

    with pytest.raises(AccountError) as caught:
        make_credential("certificate")

    assert str(caught.value).startswith("Cannot set up --auth certificate: ")
    assert "hunter2" not in str(caught.value)


# -- --cloud and --arm-endpoint ---------------------------------------------------------------------


@pytest.mark.parametrize("cloud, endpoint, scope", [
    ("public", "https://management.azure.com/", "https://management.azure.com/.default"),
    ("AzureChinaCloud", "https://management.chinacloudapi.cn/", "https://management.chinacloudapi.cn/.default"),
    ("usgovernment", "https://management.usgovcloudapi.net/", "https://management.core.usgovcloudapi.net/.default"),
])
def test_resolve_cloud_gives_endpoint_and_scope(cloud, endpoint, scope):
    resolved = resolve_cloud(cloud)

    assert (resolved.arm_endpoint, resolved.scope) == (endpoint, scope)


def test_resolve_cloud_arm_endpoint_replaces_the_endpoint_and_keeps_the_scope():
    resolved = resolve_cloud("china", "https://arm.contoso.example")

    assert (resolved.arm_endpoint, resolved.scope) == ("https://arm.contoso.example/",
                                                       "https://management.chinacloudapi.cn/.default")


@pytest.mark.parametrize("cloud, endpoint, message", [
    ("mars", None, "Unknown cloud 'mars': choose one of public, china, usgovernment."),
    ("public", "http://127.0.0.1:8080",
     "The Resource Manager endpoint 'http://127.0.0.1:8080' must be an https:// URL (tokens are never sent "
     "over plain HTTP)."),
])
def test_resolve_cloud_refuses_what_it_cannot_use(cloud, endpoint, message):
    with pytest.raises(AccountError) as caught:
        resolve_cloud(cloud, endpoint)

    assert str(caught.value) == message
