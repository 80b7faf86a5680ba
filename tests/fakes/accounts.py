"""Constants shared by the account tests and their fixtures."""

from rjsync.accounts.azure import AzureSettings

SUBSCRIPTION = "6d3f1c2a-1b2c-4d5e-8f90-123456789abc"
GROUP = "rg-realmjoin"
NAME = "aa-realmjoin-test"
ARM_ID = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}/providers/"
          f"Microsoft.Automation/automationAccounts/{NAME}")

#: No waiting in tests: polls at once, imports paced over a tiny window, tiny retry backoff.
FAST = AzureSettings(polling_interval=0, provisioning_poll_interval=0, import_window=0.2,
                     retry_backoff_factor=0.001, retry_backoff_max=0.01, read_timeout=10)


def receipt_without_stamp(tags) -> dict:
    """The tags with the publish-time stamp taken out, after checking it is a UTC timestamp."""
    from datetime import datetime

    from rjsync.accounts.receipts import RECEIPT_TIME_TAG, TIME_FORMAT

    tags = dict(tags)
    stamp = tags.pop(RECEIPT_TIME_TAG)
    assert datetime.strptime(stamp, TIME_FORMAT)
    return tags


def write_storage_source(root) -> None:
    """A folder source in ``root`` with one runbook that requires Az.Storage 6.0.0 (which
    depends on Az.Accounts in the fake gallery): a sync of it imports two packages."""
    script = root / "user" / "general" / "storage.ps1"
    script.parent.mkdir(parents=True)
    script.write_text("#Requires -Modules @{ModuleName='Az.Storage'; ModuleVersion='6.0.0'}\n"
                      "<#\n.SYNOPSIS\nLists containers.\n#>\nparam([string] $Name)\nWrite-Output $Name\n")
