"""One module per subcommand; each exposes ``run(...) -> exit code``."""
