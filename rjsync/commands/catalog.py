"""``rjsync catalog``: read a source and print its catalog."""

from __future__ import annotations

import click

from rjsync.catalog import render
from rjsync.catalog.build import build_catalog
from rjsync.catalog.model import Catalog
from rjsync.source import open_source


def load_catalog(source: str, ref: str | None = None) -> Catalog:
    checkout = open_source(source, ref)
    return build_catalog(checkout.info, checkout.files, diagnostics=checkout.diagnostics)


def run(source: str, *, ref: str | None = None, fmt: str = "text") -> int:
    catalog = load_catalog(source, ref)
    if fmt == "json":
        click.echo(render.to_json(catalog), nl=False)
    else:
        click.echo(render.to_text(catalog), nl=False)
    return 1 if catalog.errors else 0
