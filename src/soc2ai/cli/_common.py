"""Shared CLI plumbing: config loading, JSON output, exit codes, error rendering.

Exit codes scripts rely on: 0 ok, 1 finding / failed check, 2 usage or config error.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from soc2ai.config import Config, load_config
from soc2ai.errors import ConfigError, KeyMaterialError, Soc2AIError, UsageError, VerificationError

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_USAGE = 2

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

ConfigOption = typer.Option(None, "--config", "-c", help="Path to soc2ai.toml (default: ./soc2ai.toml).")
JsonOption = typer.Option(False, "--json", help="Machine-readable JSON output.")


def get_config(path: Path | None) -> Config:
    """Load the config or exit 2 with the file/line/field message."""
    try:
        return load_config(path)
    except ConfigError as exc:
        err_console.print(f"[red]config error:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_USAGE) from exc


def print_json(data: Any) -> None:
    """Write JSON to stdout (dates and paths rendered as strings)."""
    sys.stdout.write(orjson.dumps(data, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Map soc2ai errors to exit codes and one clear line on stderr instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (ConfigError, KeyMaterialError, UsageError) as exc:
            err_console.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(EXIT_USAGE) from exc
        except VerificationError as exc:
            err_console.print(f"[red]FAIL:[/] {escape(str(exc))}")
            raise typer.Exit(EXIT_FINDING) from exc
        except Soc2AIError as exc:
            err_console.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(EXIT_FINDING) from exc
        except OSError as exc:  # an output path that cannot be written, a file that cannot be read
            err_console.print(f"[red]error:[/] {escape(str(exc))}")
            raise typer.Exit(EXIT_USAGE) from exc

    return wrapper
