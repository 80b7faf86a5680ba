"""rjsync: keep Azure Automation accounts in sync with a Git repository of PowerShell runbooks."""

__version__ = "0.1.0"
