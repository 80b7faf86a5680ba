"""The Azure account's module imports as the service answers them (issue 13): Created ends an
import, a version reported as Unknown satisfies, the content link is the package URL the gallery
redirects to, and an import's dependencies are read again right before its PUT leaves. The real
SDK talks to the ARM emulator."""

from __future__ import annotations

import json
import logging

from fakes.accounts import GROUP, NAME
from rjsync.accounts import ModuleImport


def _put_links(arm) -> list[tuple[str, str]]:
    return [(r.path.rsplit("/", 1)[1], json.loads(r.body)["properties"]["contentLink"]["uri"])
            for r in arm.server.requests("PUT", r"/(modules|packages)/[^/]+$")]


def test_azure_account_import_ends_at_created_as_at_succeeded(open_azure, arm):
    arm.import_steps, arm.import_final_state = ["Updating"], "Created"
    account = open_azure(provisioning_timeout=2)

    live = account.import_module(ModuleImport("Az.Resources", "6.12.0"))

    assert (live.name, live.version, live.provisioning_state) == ("Az.Resources", "6.12.0", "Created")
    assert [name for name, _ in _put_links(arm)] == ["Az.Accounts", "Az.Resources"]
    assert len(arm.server.requests("GET", "/modules/Az.Resources$")) == 2  # Updating, then Created


def test_azure_account_import_takes_a_dependency_of_unknown_version_as_loaded(azure_account, arm):
    arm.account.add_module("Az.Accounts", "Unknown")  # the service reports some modules so

    live = azure_account.import_module(ModuleImport("Az.Resources", "6.12.0"))

    assert live.provisioning_state == "Succeeded"
    assert [name for name, _ in _put_links(arm)] == ["Az.Resources"]


def test_azure_account_import_sends_the_package_url_the_gallery_redirects_to(azure_account, arm, gallery):
    azure_account.import_module(ModuleImport("Az.Resources", "6.12.0"))

    assert _put_links(arm) == [
        ("Az.Accounts", gallery.nupkg_url(gallery.find("Az.Accounts", "2.13.2"))),
        ("Az.Resources", gallery.nupkg_url(gallery.find("Az.Resources", "6.12.0"))),
    ]
    downloads = gallery.server.requests("GET", "/package/")
    assert [(r.path, r.status) for r in downloads] == [("/api/v2/package/Az.Accounts/2.13.2", 302),
                                                       ("/api/v2/package/Az.Resources/6.12.0", 302)]


def test_azure_account_import_keeps_the_gallery_url_of_a_gallery_that_does_not_redirect(azure_account, arm, gallery):
    gallery.redirects = False  # a mirror that serves the package itself

    azure_account.import_module(ModuleImport("Az.Accounts", "2.13.2"))

    assert _put_links(arm) == [("Az.Accounts", f"{gallery.base_url}/package/Az.Accounts/2.13.2")]


class _OnFirstRecord(logging.Handler):
    """Runs ``action`` once, when the first record is emitted (from the thread that emits it)."""

    def __init__(self, action):
        super().__init__()
        self.action = action

    def emit(self, record):
        action, self.action = self.action, None
        if action is not None:
            action()


def test_azure_account_import_reads_its_dependencies_again_after_waiting_for_the_import_window(
        open_azure, arm, gallery, sdk_client):
    """Az.Accounts is loaded when the set is resolved; while Az.Resources waits for the import
    window, someone else starts an upgrade of Az.Accounts. The PUT of Az.Resources leaves only
    once Az.Accounts is loaded again, instead of failing at the service."""
    arm.account.add_module("Az.Accounts", "2.13.2")
    gallery.add("RJ.First", "1.0.0")
    account = open_azure(imports_per_window=1, import_window=0.3, provisioning_poll_interval=0.05)
    account.import_module(ModuleImport("RJ.First", "1.0.0"))  # fills the window
    other = sdk_client()
    upgrade = _OnFirstRecord(lambda: other.module.create_or_update(GROUP, NAME, "Az.Accounts", {"properties": {
        "contentLink": {"uri": f"{gallery.base_url}/package/Az.Accounts/3.0.0"}}}))
    pacing = logging.getLogger("rjsync.accounts.pacing")
    pacing.addHandler(upgrade)
    pacing.setLevel(logging.INFO)
    try:
        live = account.import_module(ModuleImport("Az.Resources", "6.12.0"))
    finally:
        pacing.removeHandler(upgrade)
        pacing.setLevel(logging.NOTSET)

    assert upgrade.action is None  # the upgrade was started while Az.Resources waited
    assert (live.name, live.provisioning_state) == ("Az.Resources", "Succeeded")
    [started] = arm.server.requests("PUT", "/modules/Az.Accounts$")
    [resources] = arm.server.requests("PUT", "/modules/Az.Resources$")
    reads = [r.time for r in arm.server.requests("GET", "/modules/Az.Accounts$") if r.time > started.time]
    assert len(reads) == arm.provisioning_steps + 1  # read until the upgrade ended (one state per read) ...
    assert started.time < reads[-1] < resources.time  # ... and only then the PUT
    assert arm.account.modules["az.accounts"].version == "3.0.0"
