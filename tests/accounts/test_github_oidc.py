"""``--auth github-oidc``: a new GitHub ID token for every Azure token, so a sync outlives both.

Against loopback fakes of GitHub Actions' ID token endpoint and Entra ID's token endpoint
(``fakes.oidc``), through azure-identity's real ``ClientAssertionCredential`` and the ARM
emulator, which accepts the tokens the fake Entra ID issues.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential

from fakes.accounts import ARM_ID, FAST
from fakes.oidc import AUDIENCE, CLIENT, REQUEST_TOKEN, TENANT, FakeActionsIdTokens, FakeEntra
from rjsync.accounts import open_account
from rjsync.accounts.credentials import CLOUDS, make_credential
from rjsync.accounts.github_oidc import GitHubActionsCredential, GitHubIdToken
from rjsync.errors import AccountError
from rjsync.settings import SourceSpec, SyncSettings
from rjsync.sync import apply, prepare

SCOPE = CLOUDS["public"].scope
AZURE_ENV = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in AZURE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def github(tls, monkeypatch):
    fake = FakeActionsIdTokens(tls)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_path))
    yield fake
    fake.close()
    assert not fake.server.errors, fake.server.errors[0]


@pytest.fixture
def entra(tls, github):
    fake = FakeEntra(tls, github)
    yield fake
    fake.close()
    assert not fake.server.errors, fake.server.errors[0]


@pytest.fixture
def in_a_job(github, monkeypatch):
    """The variables of a GitHub Actions job with ``id-token: write`` and the identity's ids."""
    for name, value in {**github.env, "AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": CLIENT}.items():
        monkeypatch.setenv(name, value)


def credential_for(entra) -> GitHubActionsCredential:
    """``--auth github-oidc`` as ``make_credential`` builds it, signing in at the fake Entra ID."""
    return make_credential("github-oidc", cloud=dataclasses.replace(CLOUDS["public"], authority=entra.url))


def write_source(folder: Path, count: int = 6) -> Path:
    for n in range(count):
        path = folder / "user" / "general" / f"job-{n}.ps1"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"<#\n.SYNOPSIS\nJob {n}.\n#>\nparam([string] $Name)\nWrite-Output $Name\n", encoding="utf-8")
    return folder


# -- the sync that outlives its first token ---------------------------------------------------------------


def test_github_oidc_sync_outlives_the_first_id_token_and_the_first_access_token(
        tmp_path, arm, gallery, github, entra, in_a_job, monkeypatch):
    github.lifetime = 1.0  # GitHub's last minutes: here a second, so a kept one would be refused
    entra.expires_in = 2  # Entra's last an hour or more: here 2 s
    entra.on_token = lambda token: arm.tokens.__setitem__(token, "contributor")
    del arm.tokens["test-token"]  # Resource Manager accepts only what Entra ID issued
    seen: list[str] = []  # the bearer tokens Resource Manager was sent, in order
    app = arm.server.app
    monkeypatch.setattr(arm.server, "app", lambda request: (seen.append(request.headers["authorization"][7:]),
                                                            app(request))[1])
    credential = credential_for(entra)

    def opener(settings: SyncSettings):
        return open_account(settings.target, owned_prefix=settings.policy.prefix, arm_endpoint=arm.endpoint,
                            credential=credential, gallery_url=gallery.base_url,
                            settings=dataclasses.replace(FAST, max_concurrent_requests=settings.concurrency))

    settings = SyncSettings(source=SourceSpec(str(write_source(tmp_path / "src"))), target=ARM_ID)
    with prepare(settings, opener=opener) as prepared:
        first = entra.issued[0]
        time.sleep(max(0.0, first.expires - time.time() + 0.5))  # a slow sync: the first token runs out halfway
        result = apply(prepared)

    assert result.ok and result.done == 7, result.problems  # 6 runbooks and the runtime environment
    assert len(arm.account.runbooks) == 6
    assert len(entra.issued) >= 2 and entra.refusals == []
    # each Azure token came from its own new ID token, and no ID token was asked for in vain
    assert [t.assertion for t in entra.issued] == [t.value for t in github.issued]
    assert all(t.issued <= a.issued < t.expires for t, a in zip(github.issued, entra.issued))
    assert set(seen) <= {t.value for t in entra.issued}
    assert seen[0] == first.value and seen[-1] != first.value  # apply ran on a renewed token
    # azure-identity asks Entra ID for tokens only: no discovery or metadata request goes anywhere
    assert {(r.method, r.path) for r in entra.server.requests()} == {("POST", f"/{TENANT}/oauth2/v2.0/token")}
    assert {(r.method, r.query["audience"]) for r in github.server.requests()} == {("GET", AUDIENCE)}


def test_github_oidc_fake_entra_refuses_an_id_token_kept_past_its_expiry(github, entra):
    """The failure the credential avoids (Azure/azure-cli#28708): one ID token kept for a second
    Azure token is refused. A check of the fakes, so it passes with or without the credential."""
    github.lifetime = 1.0
    entra.expires_in = 1
    kept = GitHubIdToken(github.request_url, REQUEST_TOKEN)()
    credential = ClientAssertionCredential(TENANT, CLIENT, lambda: kept, authority=entra.url)
    credential.get_token(SCOPE)
    time.sleep(max(0.0, github.issued[0].expires - time.time() + 0.2))

    with pytest.raises(ClientAuthenticationError, match="AADSTS700024"):
        credential.get_token(SCOPE)


def test_github_oidc_asks_for_one_token_when_many_requests_find_it_expired(github, entra, in_a_job):
    from concurrent.futures import ThreadPoolExecutor

    entra.expires_in = 2  # azure-identity counts whole seconds: a token is good for 1 to 2 s
    credential = credential_for(entra)
    credential.get_token(SCOPE)
    time.sleep(max(0.0, entra.issued[0].expires - time.time() + 1.0))

    with ThreadPoolExecutor(8) as pool:
        tokens = set(pool.map(lambda _: credential.get_token(SCOPE).token, range(8)))

    assert len(tokens) == 1 and len(entra.issued) == len(github.issued) == 2


# -- make_credential ------------------------------------------------------------------------------


@pytest.mark.parametrize("cloud, authority, audience", [
    ("public", "https://login.microsoftonline.com", "api://AzureADTokenExchange"),
    ("china", "https://login.chinacloudapi.cn", "api://AzureADTokenExchangeChina"),
    ("usgovernment", "https://login.microsoftonline.us", "api://AzureADTokenExchangeUSGov"),
])
def test_make_credential_github_oidc_signs_in_at_the_authority_of_the_cloud(in_a_job, cloud, authority, audience):
    credential = make_credential("github-oidc", cloud=CLOUDS[cloud])

    assert isinstance(credential, GitHubActionsCredential) and isinstance(credential, ClientAssertionCredential)
    assert (credential.tenant_id, credential.client_id) == (TENANT, CLIENT)
    assert (credential.authority, credential.id_token.audience) == (authority, audience)


def test_make_credential_github_oidc_takes_the_client_id_option(in_a_job, monkeypatch):
    monkeypatch.delenv("AZURE_CLIENT_ID")

    assert make_credential("github-oidc", client_id="c-from-option").client_id == "c-from-option"


@pytest.mark.parametrize("unset, message", [
    (("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
     "--auth github-oidc asks GitHub Actions for ID tokens through ACTIONS_ID_TOKEN_REQUEST_URL and "
     "ACTIONS_ID_TOKEN_REQUEST_TOKEN, which GitHub sets only in a job of a workflow with "
     "`permissions: id-token: write`; missing: ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN."),
    (("ACTIONS_ID_TOKEN_REQUEST_TOKEN",),
     "--auth github-oidc asks GitHub Actions for ID tokens through ACTIONS_ID_TOKEN_REQUEST_URL and "
     "ACTIONS_ID_TOKEN_REQUEST_TOKEN, which GitHub sets only in a job of a workflow with "
     "`permissions: id-token: write`; missing: ACTIONS_ID_TOKEN_REQUEST_TOKEN."),
    (("AZURE_CLIENT_ID",),
     "--auth github-oidc needs the environment variables AZURE_TENANT_ID and AZURE_CLIENT_ID; missing: "
     "AZURE_CLIENT_ID."),
])
def test_make_credential_github_oidc_names_what_is_missing(in_a_job, monkeypatch, unset, message):
    for name in unset:
        monkeypatch.delenv(name)

    with pytest.raises(AccountError) as caught:
        make_credential("github-oidc")

    assert str(caught.value) == message


def test_make_credential_github_oidc_refuses_a_plain_http_request_url(in_a_job, monkeypatch):
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "http://127.0.0.1:1/idtoken?api-version=2.0")

    with pytest.raises(AccountError, match=r"^ACTIONS_ID_TOKEN_REQUEST_URL is not an https:// URL, so "
                                           r"--auth github-oidc cannot ask GitHub for an ID token with it\.$"):
        make_credential("github-oidc")


# -- GitHub's ID token endpoint --------------------------------------------------------------------


def test_github_id_token_retries_what_fails_on_the_way(github):
    github.server.fail(503, times=1)
    github.server.fail(429, times=1, retry_after="0")
    github.server.drop(times=1)

    token = GitHubIdToken(github.request_url, REQUEST_TOKEN, backoff=0)()

    assert token == github.issued[0].value
    assert [r.status for r in github.server.requests()] == [503, 429, None, 200]


def test_github_id_token_refused_by_github_is_a_sentence_without_the_request_token(github):
    with pytest.raises(ClientAuthenticationError) as caught:
        GitHubIdToken(github.request_url, "not-the-request-token", backoff=0)()

    assert caught.value.message == (
        "GitHub refused to issue an ID token (HTTP 401: Unauthorized: the request token is not valid); the "
        "workflow must grant this job `permissions: id-token: write`.")
    assert "not-the-request-token" not in str(caught.value)


def test_github_id_token_endpoint_that_keeps_failing_is_a_sentence(github):
    github.server.fail(502)

    with pytest.raises(ClientAuthenticationError) as caught:
        GitHubIdToken(github.request_url, REQUEST_TOKEN, retries=2, backoff=0)()

    assert caught.value.message == ("GitHub's ID token endpoint kept failing (HTTP 502) after 3 tries; run the "
                                    "job again.")
    assert len(github.server.requests()) == 3


def test_github_id_token_endpoint_out_of_reach_is_a_sentence(github):
    url = github.request_url
    github.close()

    with pytest.raises(ClientAuthenticationError) as caught:
        GitHubIdToken(url, REQUEST_TOKEN, retries=1, backoff=0)()

    assert caught.value.message == ("Cannot reach GitHub's ID token endpoint at 127.0.0.1 (connection failed) "
                                    "after 2 tries; run the job again.")


def test_github_id_token_answer_without_a_token_is_a_sentence(github):
    github.server.fail(200, times=1)  # a JSON answer, but not GitHub's

    with pytest.raises(ClientAuthenticationError) as caught:
        GitHubIdToken(github.request_url, REQUEST_TOKEN)()

    assert caught.value.message == ("GitHub's ID token endpoint answered without an ID token (no \"value\" in "
                                    "its JSON answer).")


# -- failures as the Azure account shows them -------------------------------------------------------


def test_github_oidc_refused_by_entra_is_one_sentence_without_tokens(open_azure, github, entra, in_a_job):
    github.subject = "repo:contoso/runbooks:pull_request"  # not the federated credential's subject

    with pytest.raises(AccountError) as caught:
        open_azure(credential=credential_for(entra)).snapshot()

    assert str(caught.value) == (
        "Could not get an Azure access token (--auth custom credential): Microsoft Entra ID refused GitHub's ID "
        f"token for client {CLIENT} in tenant {TENANT} (AADSTS70021: No matching federated identity record found "
        "for presented assertion. Assertion Issuer: 'https://token.actions.githubusercontent.com'. Assertion "
        "Subject: 'repo:contoso/runbooks:pull_request'. Assertion Audience: 'api://AzureADTokenExchange'); check "
        "the identity's federated credential: issuer https://token.actions.githubusercontent.com, the workflow's "
        "subject (e.g. repo:OWNER/NAME:ref:refs/heads/main) and audience api://AzureADTokenExchange.")
    assert entra.refusals == ["AADSTS70021"]
    assert github.issued[0].value not in str(caught.value) and REQUEST_TOKEN not in str(caught.value)


def test_github_oidc_refused_by_github_is_one_sentence_from_the_account(open_azure, github, entra, in_a_job,
                                                                        monkeypatch):
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "expired-request-token")

    with pytest.raises(AccountError) as caught:
        open_azure(credential=credential_for(entra)).snapshot()

    assert str(caught.value) == (
        "Could not get an Azure access token (--auth custom credential): GitHub refused to issue an ID token "
        "(HTTP 401: Unauthorized: the request token is not valid); the workflow must grant this job "
        "`permissions: id-token: write`.")
    assert entra.server.requests() == []
