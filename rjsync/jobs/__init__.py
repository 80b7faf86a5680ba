"""Runbook jobs: what is checked before a job starts (parameters, operator access)."""
