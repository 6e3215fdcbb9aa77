"""Entry point: global options, error handling, and the command tree."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from hydraquant import __version__
from hydraquant.cli.context import AppContext
from hydraquant.config import load_config
from hydraquant.errors import HydraError

app = typer.Typer(
    name="hydraquant",
    help="Raw exchange data -> calibrated, leak-free, backtested ML trading signals.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hydraquant {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    lake: Annotated[
        Path | None,
        typer.Option("--lake", help="Lake directory (else config lake.root, else $HYDRAQUANT_LAKE, else ./lake)."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML config file (validated; unknown keys are rejected).")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config key: --set section.key=value (repeatable).")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks and debug logs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Global options apply to every command."""
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=Console(stderr=True), show_path=debug, show_time=debug)],
        force=True,
    )
    for noisy in ("httpx", "httpcore", "numba", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    cfg = load_config(config, overrides=set_ or [], lake=lake)
    # Piped or captured output (logs, CI) gets wide tables instead of truncated columns.
    width = None if sys.stdout.isatty() else 200
    ctx.obj = AppContext(config=cfg, debug=debug, console=Console(width=width), err=Console(stderr=True, width=width))


def _register_commands() -> None:
    from hydraquant.cli import (
        backtest_cmd,
        bars_cmd,
        data_cmd,
        models_cmd,
        research_cmd,
        run_cmd,
        simulate_cmd,
    )

    data_cmd.register(app)
    bars_cmd.register(app)
    research_cmd.register(app)
    simulate_cmd.register(app)
    run_cmd.register(app)
    backtest_cmd.register(app)
    models_cmd.register(app)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; library errors become one clear message and a non-zero exit."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    err = Console(stderr=True)
    try:
        app(args=args, prog_name="hydraquant")  # standalone: exits via SystemExit
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except HydraError as exc:
        if debug:
            err.print_exception()
        # messages are plain text: escape them so "[file x, row 3]" is printed, not eaten as markup
        err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
        if exc.hint:
            err.print(f"  [yellow]->[/] {escape(exc.hint)}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except Exception as exc:
        if debug:
            raise
        err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc}", highlight=False)
        err.print("  -> re-run with --debug for the traceback and please report it")
        return 1
    return 0


def entry() -> None:
    sys.exit(main())
