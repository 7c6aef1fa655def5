"""The ``moydom`` command."""

from __future__ import annotations

import logging
import sys
from contextlib import ExitStack
from enum import StrEnum
from typing import Annotated

import typer
from pydantic import ValidationError

from gateway.broker.config import render
from gateway.db import migrate
from gateway.demo import run_demo
from gateway.runtime import (
    StartupError,
    broker_config,
    run_roles,
    serve_api,
    wait_for_signal,
)
from gateway.settings import Settings, load_settings

app = typer.Typer(
    help="moydom — the home-services gateway (cameras, sensors, security, intercom, gates).",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
broker_app = typer.Typer(help="The MQTT broker.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(broker_app, name="broker")


class Role(StrEnum):
    API = "api"
    INGEST = "ingest"
    ALARMS = "alarms"
    RECORDER = "recorder"


def _settings() -> Settings:
    try:
        return load_settings()
    except ValidationError as exc:
        typer.echo(f"configuration error:\n{exc}", err=True)
        raise typer.Exit(2) from exc


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def run(
    role: Annotated[
        list[Role] | None,
        typer.Option("--role", help="run only this part (repeatable); default: everything"),
    ] = None,
) -> None:
    """Run the gateway: everything on one box, or the given roles."""
    _logging()
    wanted = set(role or Role)
    settings = _settings()
    try:
        with ExitStack() as stack:
            ctx = run_roles(settings, {r.value for r in wanted}, stack)
            if ctx is not None:
                serve_api(ctx)
            else:
                wait_for_signal()
    except StartupError as exc:
        typer.echo(f"cannot start: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def demo() -> None:
    """Run the gateway with a simulated home (sensors, keypad, siren, gate, intercom, camera)."""
    _logging()
    try:
        run_demo(_settings())
    except StartupError as exc:
        typer.echo(f"cannot start: {exc}", err=True)
        raise typer.Exit(1) from exc


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations to MOYDOM_DATABASE_URL (SQLite or PostgreSQL)."""
    settings = _settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.database_url, revision)
    typer.echo(f"database at revision {revision}")


@broker_app.command("config")
def broker_config_cmd() -> None:
    """Print the Mosquitto config moydom generates (for an external broker too)."""
    sys.stdout.write(render(broker_config(_settings())))


def main() -> None:
    app()
