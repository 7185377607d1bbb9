#!/usr/bin/env bash
# The test command: installs everything, starts the real Kafka broker and PostgreSQL,
# checks lint, types and event schemas, then runs the whole test suite.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
scripts/setup.sh
deploy/kafka/kafka.sh up
deploy/postgres/postgres.sh up
.venv/bin/python -m shared.events.schemas --check
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
