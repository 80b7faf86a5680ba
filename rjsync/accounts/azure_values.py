"""The Azure SDK's models as the account protocol's live values (``rjsync.accounts.base``)."""

from __future__ import annotations

from enum import Enum

from rjsync.accounts.base import LiveModule, LiveRunbook


def live_module(m) -> LiveModule:
    p = m.properties
    error = p.error.message if p is not None and p.error is not None and p.error.message else None
    return LiveModule(
        name=m.name,
        version=(p.version or None) if p else None,
        provisioning_state=text(p.provisioning_state) if p else "",
        error=error,
    )


def live_runbook(rb) -> LiveRunbook:
    p = rb.properties
    return LiveRunbook(
        name=rb.name,
        runbook_type=text(p.runbook_type) if p else "",
        runtime_environment=(p.runtime_environment or None) if p else None,
        state=text(p.state) if p else "",
        description=(p.description or "") if p else "",
        tags=dict(rb.tags or {}),
        last_modified=p.last_modified_time if p else None,
    )


def text(value) -> str:
    """An SDK enum or string as the plain string the service sent."""
    if value is None:
        return ""
    return str(value.value if isinstance(value, Enum) else value)
