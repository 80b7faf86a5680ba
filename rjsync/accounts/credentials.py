"""Which identity talks to Azure, and to which cloud.

``--auth`` picks an ``azure-identity`` credential; the environment variables are the ones
azure-identity itself reads. Nothing here logs, prints or puts into a message a secret or a
token: messages name missing variables, never their values.

=====================  ===================================  ======================================
``--auth``             credential                           needs
=====================  ===================================  ======================================
default                DefaultAzureCredential               (tries environment, workload identity,
                                                            managed identity, Azure CLI, ...)
managed-identity       ManagedIdentityCredential            ``--client-id`` for a user-assigned one
workload-identity      WorkloadIdentityCredential           AZURE_TENANT_ID, AZURE_CLIENT_ID,
                                                            AZURE_FEDERATED_TOKEN_FILE
cli                    AzureCliCredential                   ``az login``
client-secret          ClientSecretCredential               AZURE_TENANT_ID, AZURE_CLIENT_ID,
                                                            AZURE_CLIENT_SECRET
certificate            CertificateCredential                AZURE_TENANT_ID, AZURE_CLIENT_ID,
                                                            AZURE_CLIENT_CERTIFICATE_PATH
                                                            (AZURE_CLIENT_CERTIFICATE_PASSWORD)
github-oidc            GitHubActionsCredential              AZURE_TENANT_ID, AZURE_CLIENT_ID, and
                       (``accounts/github_oidc.py``)        a job with ``id-token: write``
=====================  ===================================  ======================================

``github-oidc`` signs in from a GitHub Actions job through a federated credential, like
``azure/login`` with OpenID Connect, but asks GitHub for a fresh ID token each time it needs an
Azure token. GitHub's ID tokens expire after minutes, so a sign-in that keeps the first one (the
Azure CLI's after ``azure/login``: Azure/azure-cli#28708, "AADSTS700024: Client assertion is not
within its valid time range") cannot renew its Azure token during a long sync.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from rjsync.errors import AccountError

AUTH_KINDS = ("default", "managed-identity", "workload-identity", "cli", "client-secret", "certificate",
              "github-oidc")


@dataclass(frozen=True)
class Cloud:
    """Where Resource Manager is, the token scope it wants, and who issues tokens."""

    name: str
    arm_endpoint: str
    scope: str
    authority: str
    #: Whether Automation offers runtime environments there ("Manage runtime environment",
    #: prerequisites: not in Azure Government clouds).
    runtime_environments: bool = True
    #: Microsoft Graph there (national cloud deployments: graph.microsoft.us for US Government
    #: L4/L5, microsoftgraph.chinacloudapi.cn for 21Vianet) and its token scope.
    graph_endpoint: str = "https://graph.microsoft.com/"
    graph_scope: str = "https://graph.microsoft.com/.default"


CLOUDS = {
    "public": Cloud("public", "https://management.azure.com/", "https://management.azure.com/.default",
                    "login.microsoftonline.com"),
    "china": Cloud("china", "https://management.chinacloudapi.cn/", "https://management.chinacloudapi.cn/.default",
                   "login.chinacloudapi.cn", graph_endpoint="https://microsoftgraph.chinacloudapi.cn/",
                   graph_scope="https://microsoftgraph.chinacloudapi.cn/.default"),
    "usgovernment": Cloud("usgovernment", "https://management.usgovcloudapi.net/",
                          "https://management.core.usgovcloudapi.net/.default", "login.microsoftonline.us",
                          runtime_environments=False, graph_endpoint="https://graph.microsoft.us/",
                          graph_scope="https://graph.microsoft.us/.default"),
}


def resolve_cloud(cloud: str = "public", arm_endpoint: str | None = None,
                  graph_endpoint: str | None = None) -> Cloud:
    """The cloud named by ``--cloud``, with its Resource Manager replaced by ``--arm-endpoint``
    and its Microsoft Graph by ``graph_endpoint`` (tests, a proxy).

    The token scopes and authority stay those of the cloud.
    """
    key = (cloud or "public").lower().replace("-", "").replace(" ", "")
    key = {"azurecloud": "public", "azurechinacloud": "china", "azureusgovernment": "usgovernment",
           "usgov": "usgovernment"}.get(key, key)
    if key not in CLOUDS:
        raise AccountError(f"Unknown cloud '{cloud}': choose one of {', '.join(CLOUDS)}.")
    base = CLOUDS[key]
    for what, endpoint in (("Resource Manager", arm_endpoint), ("Microsoft Graph", graph_endpoint)):
        if endpoint is not None and not endpoint.lower().startswith("https://"):
            raise AccountError(
                f"The {what} endpoint '{endpoint}' must be an https:// URL "
                "(tokens are never sent over plain HTTP)."
            )
    if arm_endpoint is not None:
        base = dataclasses.replace(base, arm_endpoint=arm_endpoint.rstrip("/") + "/")
    if graph_endpoint is not None:
        base = dataclasses.replace(base, graph_endpoint=graph_endpoint.rstrip("/") + "/")
    return base


def check_runtime_environments(cloud: str, runtime_environment: str | None) -> None:
    """Refuse a runtime environment in a cloud that does not offer them (before any request)."""
    if runtime_environment is not None and not resolve_cloud(cloud).runtime_environments:
        raise AccountError(
            f"Runtime environments (here '{runtime_environment}') are not offered in Azure Government "
            "clouds: set 'runtime: classic' in the manifest or pass --runtime classic for Windows "
            "PowerShell 5.1 runbooks."
        )


def make_credential(auth: str = "default", *, client_id: str | None = None, cloud: Cloud = CLOUDS["public"]):
    """Build the azure-identity credential ``--auth`` names; no token is requested yet."""
    import azure.identity as identity

    kind = (auth or "default").lower()
    env = os.environ
    authority = cloud.authority

    def need(*names: str) -> dict[str, str]:
        missing = [n for n in names if not env.get(n) and not (n == "AZURE_CLIENT_ID" and client_id)]
        if missing:
            raise AccountError(
                f"--auth {kind} needs the environment variables {_join(names)}; missing: {_join(missing)}."
            )
        values = {n: env.get(n, "") for n in names}
        if client_id and "AZURE_CLIENT_ID" in values:
            values["AZURE_CLIENT_ID"] = client_id
        return values

    try:
        if kind == "default":
            return identity.DefaultAzureCredential(authority=authority, managed_identity_client_id=client_id)
        if kind == "managed-identity":
            return identity.ManagedIdentityCredential(client_id=client_id) if client_id else identity.ManagedIdentityCredential()
        if kind == "workload-identity":
            v = need("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE")
            return identity.WorkloadIdentityCredential(
                tenant_id=v["AZURE_TENANT_ID"], client_id=v["AZURE_CLIENT_ID"],
                token_file_path=v["AZURE_FEDERATED_TOKEN_FILE"], authority=authority,
            )
        if kind == "cli":
            tenant = env.get("AZURE_TENANT_ID")
            return identity.AzureCliCredential(tenant_id=tenant) if tenant else identity.AzureCliCredential()
        if kind == "client-secret":
            v = need("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET")
            return identity.ClientSecretCredential(
                v["AZURE_TENANT_ID"], v["AZURE_CLIENT_ID"], v["AZURE_CLIENT_SECRET"], authority=authority
            )
        if kind == "certificate":
            v = need("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_CERTIFICATE_PATH")
            return identity.CertificateCredential(
                v["AZURE_TENANT_ID"], v["AZURE_CLIENT_ID"],
                certificate_path=v["AZURE_CLIENT_CERTIFICATE_PATH"],
                password=env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD") or None,
                authority=authority,
            )
        if kind == "github-oidc":
            from rjsync.accounts.github_oidc import GitHubActionsCredential, GitHubIdToken

            v = need("AZURE_TENANT_ID", "AZURE_CLIENT_ID")
            return GitHubActionsCredential(
                v["AZURE_TENANT_ID"], v["AZURE_CLIENT_ID"], GitHubIdToken.from_environment(cloud.name),
                authority=authority,
            )
    except (ValueError, OSError) as err:
        # azure-identity's own messages name settings, not secret values
        raise AccountError(f"Cannot set up --auth {kind}: {err}") from None
    raise AccountError(f"Unknown --auth '{auth}': choose one of {', '.join(AUTH_KINDS)}.")


def _join(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
