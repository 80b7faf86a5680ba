"""The sync engine: plan (pure), render (pure) and apply (writes)."""
