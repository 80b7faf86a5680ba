from click.testing import CliRunner

from rjsync.cli import cli


def test_cli_help_lists_the_catalog_command():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "catalog" in result.output
    assert "rjgit-" in result.output
