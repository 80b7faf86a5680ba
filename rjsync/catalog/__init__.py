"""The catalog: a runbook repository read into a typed, exact description (pure code)."""
