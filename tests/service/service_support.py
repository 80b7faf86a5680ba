"""Helpers of the service tests: a real uvicorn server on loopback, directory accounts in tmp_path."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from rjsync.service import ServiceConfig
from rjsync.service.auth import Authenticator, Credential, Principal, hash_secret

EXAMPLE = Path(__file__).resolve().parents[2] / "runbooks"
PASSWORD, TOKEN = "portal-secret", "ci-token-0123456789"


def authenticator() -> Authenticator:
    cheap = {"iterations": 1000}
    return Authenticator(
        {"portal": Credential(Principal("portal", frozenset({"*"})), hash_secret(PASSWORD, **cheap)),
         "alpha-only": Credential(Principal("alpha-only", frozenset({"alpha"})), hash_secret("a-secret", **cheap))},
        [Credential(Principal("ci", frozenset({"alpha", "beta"})), hash_secret(TOKEN, **cheap))])


def write_manifests(folder: Path, names=("alpha", "beta")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.yaml").write_text(
            f"source:\n  path: {EXAMPLE}\ntarget: local:{folder.parent / 'accounts' / name}\n", encoding="utf-8")
    return folder


class Server:
    """uvicorn serving ``app`` on a free loopback port until ``stop``."""

    def __init__(self, app) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.port}"

    def client(self, auth=("portal", PASSWORD), **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=auth, **{"timeout": 60, **kwargs})

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def make_config(tmp_path: Path, **changes) -> ServiceConfig:
    return ServiceConfig(manifests=str(write_manifests(tmp_path / "manifests")), database=str(tmp_path / "jobs.db"),
                         authenticator=authenticator(), **changes)
