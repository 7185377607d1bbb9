"""The `ironarmy` command: run the system, watch its topics, issue tokens."""

from __future__ import annotations

import typer

from shared.cli import audit, replay, simulate, system, topics
from shared.runtime import tune_gc

app = typer.Typer(
    help="Iron Army: run, watch and audit the event-sourced sales backend.", no_args_is_help=True
)
system.register(app)
topics.register(app)
audit.register(app)
replay.register(app)
simulate.register(app)


def main() -> None:
    tune_gc()  # replay and simulate hold as much as a service does
    app()
