"""Resource Manager's errors as sentences: every SDK error an Azure account meets becomes an
``AccountError`` that says what failed, what the service answered and what to do (401, 403,
unknown account, throttling that outlasted the retries, network). The token never appears.
"""

from __future__ import annotations

from dataclasses import dataclass

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from rjsync.errors import AccountError


@dataclass(frozen=True)
class Where:
    """The account an error happened at, as its sentences name it."""

    account: str  # the automation account's name
    subscription: str
    auth: str  # --auth, or "custom credential"
    arm_endpoint: str


def translate(err: AzureError, action: str, where: Where) -> AccountError:
    """The sentence for ``err``, met while ``action`` (e.g. "publishing runbook 'x'")."""
    acc = where.account
    if isinstance(err, ClientAuthenticationError) and getattr(err, "response", None) is None:
        reason = (err.message or str(err)).strip().splitlines()[0] if (err.message or str(err)) else ""
        return AccountError(
            f"Could not get an Azure access token (--auth {where.auth}): {reason}"
        )
    if isinstance(err, HttpResponseError) and err.status_code is not None:
        code, message = service_error(err)
        message = message.rstrip(".")
        detail = f"{code}: {message}" if code else (message or f"HTTP {err.status_code}")
        if err.status_code == 401:
            return AccountError(
                f"Azure rejected the credentials while {action} ({detail}). Check --auth, and that "
                f"the identity belongs to the tenant of subscription {where.subscription}."
            )
        if err.status_code == 403:
            return AccountError(
                f"Access denied while {action} in automation account '{acc}' ({detail}). Give the "
                "identity the Automation Contributor role on the account."
            )
        if err.status_code == 429:
            return AccountError(
                f"Azure kept throttling requests while {action} and the retries ran out "
                f"({detail}). Wait a few minutes and run again."
            )
        return AccountError(f"Azure refused {action} (HTTP {err.status_code}, {detail}).")
    if isinstance(err, ServiceRequestError):
        return AccountError(
            f"Cannot reach Azure Resource Manager at {where.arm_endpoint} while {action}: "
            f"{first_line(err)}. Check the network, --cloud/--arm-endpoint and the CA bundle "
            "(REQUESTS_CA_BUNDLE)."
        )
    if isinstance(err, ServiceResponseError):
        return AccountError(
            f"The connection to Azure Resource Manager broke while {action}: {first_line(err)}. "
            "Run again; a re-run completes what was left undone."
        )
    return AccountError(f"Azure failed while {action}: {first_line(err)}.")


class Translate:
    """A ``with`` block that turns SDK errors into ``AccountError``s; ``passthrough`` (an error
    type, e.g. not found) passes through, unless it is a 401, 403 or 429."""

    def __init__(self, where: Where, action: str, passthrough=None):
        self.where, self.action, self.passthrough = where, action, passthrough

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or not isinstance(exc, AzureError):
            return False
        if self.passthrough is not None and isinstance(exc, self.passthrough):
            if not (isinstance(exc, HttpResponseError) and exc.status_code in (401, 403, 429)):
                return False
        raise translate(exc, self.action, self.where) from None


def service_error(err: HttpResponseError) -> tuple[str, str]:
    """The ``error.code`` and ``error.message`` the service sent, as far as they can be read."""
    odata = getattr(err, "error", None)
    code = getattr(odata, "code", None) or ""
    message = getattr(odata, "message", None) or ""
    if not message:
        response = getattr(err, "response", None)
        try:
            body = response.json() if response is not None else None
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                code = code or body["error"].get("code") or ""
                message = body["error"].get("message") or ""
        except Exception:  # noqa: BLE001 - not JSON: fall back to the reason phrase
            message = getattr(err, "reason", None) or ""
    return str(code), str(message).strip()


def first_line(err: Exception) -> str:
    text = (getattr(err, "message", None) or str(err) or type(err).__name__).strip()
    return text.splitlines()[0] if text else type(err).__name__
