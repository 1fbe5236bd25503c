"""The `minio3` command: options in, one pipeline call, a summary out.

Every command turns a `Minio3Error` into one line on stderr (exit code 2) instead of a traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from minio3_data import __version__
from minio3_data.errors import Minio3Error

app = typer.Typer(
    name="minio3",
    help="Mini-o3 as software: build VisualProbe-style data, synthesise cold-start trajectories, "
    "export to LLaMA-Factory, train and evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
exemplars_app = typer.Typer(help="Check and render exemplar sets.", no_args_is_help=True)
app.add_typer(exemplars_app, name="exemplars")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"minio3 {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """minio3: the Mini-o3 recipe (VisualProbe, cold-start synthesis, SFT, masked GRPO, Avg@k)."""


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a Minio3Error as one line and exit 2; Ctrl-C exits 130 without a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Minio3Error as e:
            typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.secho("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


# --- build-visualprobe ----------------------------------------------------------------------------------

# --- exemplars ------------------------------------------------------------------------------------------

# --- synth-coldstart ------------------------------------------------------------------------------------

# --- export-llamafactory / train-sft --------------------------------------------------------------------

# --- quickstart -----------------------------------------------------------------------------------------


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
