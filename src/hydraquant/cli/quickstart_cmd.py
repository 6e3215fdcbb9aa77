"""`hydraquant quickstart`: the offline demo `make quickstart` runs."""

from __future__ import annotations

import typer

from hydraquant.cli.context import app_context


def quickstart_cmd(ctx: typer.Context) -> None:
    """Offline, under a minute: simulate a market, ingest it, build 250 ms and 1 m bars, summarise."""
    from hydraquant.pipeline.quickstart import run_quickstart

    app = app_context(ctx)
    run_quickstart(app.lake, app.config.quickstart, console=app.console)


def register(app: typer.Typer) -> None:
    app.command("quickstart")(quickstart_cmd)
