#!/usr/bin/env bash
# The run command: installs everything, starts the local Kafka broker and every service that
# exists (SQLite stores under var/data), and stops them all on Ctrl-C.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
scripts/setup.sh
deploy/kafka/kafka.sh up
if [ "${IRONARMY_STORE:-sqlite}" = postgres ]; then deploy/postgres/postgres.sh up; fi
port=8001
pids=()
for service in leads visits reviews rotation; do
  if [ -f "services/$service/main.py" ]; then
    .venv/bin/uvicorn --factory "services.$service.main:create_app" --host 127.0.0.1 --port "$port" \
      --log-level warning &
    pids+=($!)
    echo "$service: http://127.0.0.1:$port/docs"
  fi
  port=$((port + 1))
done
trap 'kill "${pids[@]}" 2>/dev/null || true; wait; echo stopped' INT TERM
echo "Kafka on 127.0.0.1:9092. Ctrl-C stops the services (deploy/kafka/kafka.sh stop stops the broker)."
wait
