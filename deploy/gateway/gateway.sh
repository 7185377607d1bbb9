#!/usr/bin/env bash
# Renders the gateway config and runs nginx (installed from Debian's packages when missing).
# Usage: deploy/gateway/gateway.sh up|stop|render|status
# Settings: GATEWAY_PORT (8080), LEADS_PORT (8001), VISITS_PORT (8002), REVIEWS_PORT (8003),
# ROTATION_PORT (8004), <SERVICE>_HOST (127.0.0.1), GATEWAY_LISTEN (127.0.0.1), GATEWAY_RATE (200 r/s per client), GATEWAY_BURST (400),
# GATEWAY_CORS_ORIGINS (regex, default http://localhost(:port)?), GATEWAY_RUN_DIR (<repo>/var/gateway).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
run_dir="${GATEWAY_RUN_DIR:-$repo/var/gateway}"

install() {
  if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then return; fi
  echo "gateway.sh: installing nginx from Debian's packages..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null
}

nginx_bin() { command -v nginx 2>/dev/null || echo /usr/sbin/nginx; }

render() {
  mkdir -p "$run_dir"
  sed -e "s#@RUN_DIR@#$run_dir#g" \
      -e "s#@GATEWAY_PORT@#${GATEWAY_PORT:-8080}#g" \
      -e "s#@LISTEN@#${GATEWAY_LISTEN:-127.0.0.1}#g" \
      -e "s#@LEADS_HOST@#${LEADS_HOST:-127.0.0.1}#g" \
      -e "s#@VISITS_HOST@#${VISITS_HOST:-127.0.0.1}#g" \
      -e "s#@REVIEWS_HOST@#${REVIEWS_HOST:-127.0.0.1}#g" \
      -e "s#@ROTATION_HOST@#${ROTATION_HOST:-127.0.0.1}#g" \
      -e "s#@LEADS_PORT@#${LEADS_PORT:-8001}#g" \
      -e "s#@VISITS_PORT@#${VISITS_PORT:-8002}#g" \
      -e "s#@REVIEWS_PORT@#${REVIEWS_PORT:-8003}#g" \
      -e "s#@ROTATION_PORT@#${ROTATION_PORT:-8004}#g" \
      -e "s#@RATE@#${GATEWAY_RATE:-200}#g" \
      -e "s#@BURST@#${GATEWAY_BURST:-400}#g" \
      -e "s#@CORS_ORIGINS@#${GATEWAY_CORS_ORIGINS:-http://localhost(:[0-9]+)?}#g" \
      "$here/nginx.conf.template" > "$run_dir/nginx.conf"
  "$(nginx_bin)" -t -q -p "$run_dir" -c "$run_dir/nginx.conf"
}

running() { [ -f "$run_dir/nginx.pid" ] && kill -0 "$(cat "$run_dir/nginx.pid")" 2>/dev/null; }

case "${1:-}" in
  render) install; render ;;
  up)
    install; render
    if running; then echo "gateway.sh: already running"; exit 0; fi
    nohup "$(nginx_bin)" -p "$run_dir" -c "$run_dir/nginx.conf" >"$run_dir/stdout.log" 2>&1 &
    for _ in $(seq 1 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/${GATEWAY_PORT:-8080}") 2>/dev/null && break; sleep 0.1
    done
    echo "gateway.sh: gateway on http://127.0.0.1:${GATEWAY_PORT:-8080}" ;;
  run) install; render; exec "$(nginx_bin)" -p "$run_dir" -c "$run_dir/nginx.conf" ;;
  stop) if running; then kill -QUIT "$(cat "$run_dir/nginx.pid")"; fi; echo "gateway.sh: stopped" ;;
  status) if running; then echo running; else echo stopped; exit 1; fi ;;
  *) echo "usage: $0 up|run|stop|render|status" >&2; exit 2 ;;
esac
