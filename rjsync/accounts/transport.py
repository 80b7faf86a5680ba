"""What the Resource Manager and Microsoft Graph clients share: azure-core's retry and timeout
knobs, and the CA bundle their connections verify against. The defaults suit the real services;
tests shrink the waits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TransportSettings:
    retry_total: int = 10
    retry_status: int = 6
    retry_connect: int = 3
    retry_read: int = 3
    retry_backoff_factor: float = 0.8
    retry_backoff_max: float = 60.0
    read_timeout: float = 120.0
    #: CA bundle path, True (system store) or False; None reads REQUESTS_CA_BUNDLE, then
    #: SSL_CERT_FILE, else the default store.
    connection_verify: str | bool | None = None

    def retries(self) -> dict[str, Any]:
        """azure-core's ``RetryPolicy`` keywords."""
        return {"retry_total": self.retry_total, "retry_status": self.retry_status,
                "retry_connect": self.retry_connect, "retry_read": self.retry_read,
                "retry_backoff_factor": self.retry_backoff_factor, "retry_backoff_max": self.retry_backoff_max}

    def verify(self) -> str | bool:
        """What a connection verifies the server's certificate against."""
        if self.connection_verify is not None:
            return self.connection_verify
        return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or True
