"""Where the local PostgreSQL is (the one .ci/run and deploy/postgres/postgres.sh start), and the
store environments of a database on it or of a SQLite file: for the tests and the benchmarks
alike. No side effects on import (tests/conftest.py turns the codec check on; a benchmark must
not)."""

from __future__ import annotations

import os
from pathlib import Path

PG = {
    "host": os.environ.get("IRONARMY_POSTGRES_HOST", "127.0.0.1"),
    "port": os.environ.get("IRONARMY_POSTGRES_PORT", "5433"),
    "user": os.environ.get("IRONARMY_POSTGRES_USER", "ironarmy"),
    "password": os.environ.get("IRONARMY_POSTGRES_PASSWORD", "ironarmy"),
}


def sqlite_env(path: Path) -> dict[str, str]:
    """The store environment of a SQLite database in a file."""
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}


def postgres_env(dbname: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_HOST": PG["host"],
        "POSTGRES_PORT": PG["port"],
        "POSTGRES_USER": PG["user"],
        "POSTGRES_PASSWORD": PG["password"],
        "POSTGRES_DBNAME": dbname,
        "CREATE_TABLE": "y",
    }
