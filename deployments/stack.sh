#!/usr/bin/env bash
# The local service: `make stack` (up) and `make stack-down` (down).
#
# up:   PostgreSQL and Redis (started if needed); a Prefect server on 127.0.0.1:4200 (on
#       PostgreSQL when MPT_DATABASE_URL is set, else SQLite under .stack/); work pools cpu
#       and gpu and the deployments of prefect.yaml; one process worker per pool; the facade
#       on 127.0.0.1:8080. Each process's PID is recorded in .stack/*.pid; a component whose
#       recorded process is alive is left alone, so running `up` twice starts nothing twice.
# down: stops exactly the recorded processes (and their children), never anything by name.
# MPT_STACK_DIR, MPT_STACK_PREFECT_PORT and MPT_STACK_API_PORT move it (the tests do).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/.venv/bin
STATE=${MPT_STACK_DIR:-$ROOT/.stack}
mkdir -p "$STATE/logs"

PREFECT_PORT=${MPT_STACK_PREFECT_PORT:-4200}
API_PORT=${MPT_STACK_API_PORT:-8080}
UI_PORT=${MPT_STACK_UI_PORT:-8501}
MCP_PORT=${MPT_STACK_MCP_PORT:-8081}
export PREFECT_API_URL=http://127.0.0.1:$PREFECT_PORT/api
export PREFECT_HOME=${PREFECT_HOME:-$STATE/prefect-home}
export PREFECT_SERVER_ANALYTICS_ENABLED=false
# Flow runs' stage logs (our loggers, at INFO) go to the run's Logs tab in the UI.
export PREFECT_LOGGING_EXTRA_LOGGERS=${PREFECT_LOGGING_EXTRA_LOGGERS:-tasks,blocks,flows}
export MPT_OUTPUT_ROOT=${MPT_OUTPUT_ROOT:-$ROOT/output}
export MPT_REDIS_URL=${MPT_REDIS_URL:-redis://127.0.0.1:6379/0}
# Signed file URLs are absolute with it: a browser plays videos straight from the facade.
export MPT_PUBLIC_API_URL=${MPT_PUBLIC_API_URL:-http://127.0.0.1:$API_PORT}
if [ -n "${MPT_DATABASE_URL:-}" ]; then
  # Prefect's server speaks asyncpg; the catalog speaks psycopg: one database, two schemas.
  pg_url=${MPT_DATABASE_URL#postgresql://}
  pg_url=${pg_url#postgres://}
  export PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://$pg_url
else
  export MPT_DATABASE_URL=postgresql://mpt:mpt@127.0.0.1:5432/mpt
fi

COMPONENTS=(server worker-cpu worker-gpu worker-batch api ui mcp)
# Workers look for new runs every second (Prefect's default is 10 s, which left a burst of
# API requests waiting with both cores idle).
export PREFECT_WORKER_QUERY_SECONDS=${PREFECT_WORKER_QUERY_SECONDS:-1}
export PREFECT_WORKER_PREFETCH_SECONDS=${PREFECT_WORKER_PREFETCH_SECONDS:-5}

pid_of() { cat "$STATE/$1.pid" 2>/dev/null || true; }
alive() {
  local pid
  pid=$(pid_of "$1")
  # The PID must still be ours: alive, and started from this checkout's venv.
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q "$BIN" "/proc/$pid/cmdline" 2>/dev/null
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_http() {  # URL SECONDS NAME
  for _ in $(seq $(($2 * 5))); do
    if "$BIN/python" -c "import sys,urllib.request as u; u.urlopen(sys.argv[1], timeout=2)" "$1" \
      2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "error: $3 did not answer at $1 in $2 s; see $STATE/logs/$3.log" >&2
  return 1
}

wait_port() {  # PORT SECONDS NAME
  for _ in $(seq $(($2 * 5))); do port_open "$1" && return 0; sleep 0.2; done
  echo "error: $3 did not listen on port $1 in $2 s; see $STATE/logs/$3.log" >&2
  return 1
}

start() {  # NAME PORT CMD...
  local name=$1 port=$2
  shift 2
  if alive "$name"; then
    echo "$name: already running (pid $(pid_of "$name"))"
    return 0
  fi
  if [ "$port" != "-" ] && port_open "$port"; then
    echo "error: port $port is taken by a process this stack did not start; stop it first" >&2
    exit 1
  fi
  # setsid: a process group of its own, so `down` stops its children (flow runs) with it.
  setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/$name.pid"
  echo "$name: started (pid $!, log $STATE/logs/$name.log)"
}

up() {
  [ -x "$BIN/python" ] || { echo "error: run make first (no .venv)" >&2; exit 1; }
  bash deployments/start-services.sh
  start server "$PREFECT_PORT" "$BIN/prefect" server start --host 127.0.0.1 --port "$PREFECT_PORT"
  wait_http "$PREFECT_API_URL/health" 120 server
  "$BIN/python" -m deployments.setup
  start worker-cpu - "$BIN/prefect" worker start --pool cpu --type process --name "cpu-$(hostname)"
  start worker-gpu - "$BIN/prefect" worker start --pool gpu --type process --name "gpu-$(hostname)"
  start worker-batch - "$BIN/prefect" worker start --pool batch --type process \
    --name "batch-$(hostname)"
  start api "$API_PORT" "$BIN/mpt" serve --host 127.0.0.1 --port "$API_PORT"
  wait_http "http://127.0.0.1:$API_PORT/docs" 60 api
  MPT_WEBUI__API_URL=http://127.0.0.1:$API_PORT start ui "$UI_PORT" "$BIN/mpt" ui \
    --host 127.0.0.1 --port "$UI_PORT"
  wait_http "http://127.0.0.1:$UI_PORT/_stcore/health" 60 ui
  MPT_API_URL=http://127.0.0.1:$API_PORT start mcp "$MCP_PORT" "$BIN/mpt" mcp --http \
    --host 127.0.0.1 --port "$MCP_PORT"
  wait_port "$MCP_PORT" 60 mcp
  cat <<MSG
stack up:
  Prefect UI   http://127.0.0.1:$PREFECT_PORT
  API          http://127.0.0.1:$API_PORT/api/v1   (OpenAPI: http://127.0.0.1:$API_PORT/docs)
  web UI       http://127.0.0.1:$UI_PORT
  MCP          http://127.0.0.1:$MCP_PORT/mcp   (streamable HTTP; stdio: .venv/bin/mpt mcp)
  a key:       .venv/bin/mpt keys create --role creator
MSG
}

down() {
  local name pid
  for name in mcp ui api worker-batch worker-gpu worker-cpu server; do
    pid=$(pid_of "$name")
    if [ -z "$pid" ]; then continue; fi
    if alive "$name"; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL -- "-$pid" 2>/dev/null || true
      echo "$name: stopped (pid $pid)"
    fi
    rm -f "$STATE/$name.pid"
  done
}

status() {
  for name in "${COMPONENTS[@]}"; do
    if alive "$name"; then echo "$name: running (pid $(pid_of "$name"))"; else echo "$name: stopped"; fi
  done
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
