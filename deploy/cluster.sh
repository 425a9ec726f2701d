#!/usr/bin/env bash
# The production shape on one machine, for trying and testing: 2 web processes, 3 job workers and 2 schedulers
# on PostgreSQL and Redis (or RabbitMQ: set CRM_RABBITMQ_URL). Across machines it is the same processes with the
# same settings (docs/operations.md, "Scaling out").
#
#   CRM_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/crm deploy/cluster.sh start
#   deploy/cluster.sh status
#   deploy/cluster.sh stop
#
# Settings (environment): CRM_DATABASE_URL (PostgreSQL, required to start), CRM_REDIS_URL (default
# redis://127.0.0.1:6379/0), any other CRM_* setting; CLUSTER_DIR (pids and logs, default var/cluster),
# CLUSTER_WEB_PORTS ("8001 8002"), CLUSTER_WORKERS (3), CLUSTER_SCHEDULERS (2), CRM (the crm command).
# CLUSTER_PROXY_PORT (e.g. 8000): also start Caddy (Debian's `caddy`) on 127.0.0.1:PORT in front of the web
# processes (round robin, /healthz checks, a request to a dead one tried on the other); without it, put your own
# proxy in front (deploy/Caddyfile: reverse_proxy 127.0.0.1:8001 127.0.0.1:8002).
set -euo pipefail
cd "$(dirname "$0")/.."
CRM=${CRM:-.venv/bin/crm}
DIR=${CLUSTER_DIR:-var/cluster}
WEB_PORTS=${CLUSTER_WEB_PORTS:-"8001 8002"}
WORKERS=${CLUSTER_WORKERS:-3}
SCHEDULERS=${CLUSTER_SCHEDULERS:-2}
PROXY_PORT=${CLUSTER_PROXY_PORT:-}

launch() {  # name, crm arguments…
  local name=$1
  shift
  nohup "$CRM" "$@" >"$DIR/$name.log" 2>&1 &
  echo $! >"$DIR/$name.pid"
}

proxy() {  # Caddy in front of the web ports: its config and state stay in $DIR (no admin API, plain HTTP)
  command -v caddy >/dev/null || { echo "CLUSTER_PROXY_PORT is set but caddy is not installed (apt-get install caddy)" >&2; return 1; }
  local upstreams="" port
  for port in $WEB_PORTS; do upstreams="$upstreams 127.0.0.1:$port"; done
  cat >"$DIR/Caddyfile" <<CADDY
{
	admin off
	auto_https off
	storage file_system $(realpath "$DIR")/caddy
}
http://:$PROXY_PORT {
	bind 127.0.0.1
	reverse_proxy$upstreams {
		lb_policy round_robin
		lb_try_duration 5s
		health_uri /healthz
		health_interval 2s
	}
}
CADDY
  XDG_DATA_HOME="$DIR/caddy" XDG_CONFIG_HOME="$DIR/caddy" nohup caddy run --config "$DIR/Caddyfile" \
    --adapter caddyfile >"$DIR/proxy.log" 2>&1 &
  echo $! >"$DIR/proxy.pid"
}

pids() { cat "$DIR"/*.pid 2>/dev/null || true; }

stop() {
  local pid left
  for pid in $(pids); do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 100); do  # 20 s for workers to finish the jobs they hold
    left=0
    for pid in $(pids); do kill -0 "$pid" 2>/dev/null && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.2
  done
  for pid in $(pids); do kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "$DIR"/*.pid
  echo "stopped"
}

start() {
  case "${CRM_DATABASE_URL:-}" in
    postgres*) ;;
    *) echo "CRM_DATABASE_URL must name a PostgreSQL database (several processes share it)" >&2; exit 2 ;;
  esac
  export CRM_REDIS_URL=${CRM_REDIS_URL:-redis://127.0.0.1:6379/0}
  export CRM_DATA_DIR=${CRM_DATA_DIR:-$DIR/data}
  mkdir -p "$DIR" "$CRM_DATA_DIR"
  if [ -n "$(pids)" ]; then echo "already running (pids in $DIR): $0 stop first" >&2; exit 1; fi
  # the schema once, before any process starts (a rolling upgrade does the same: docs/operations.md)
  "$CRM" init >"$DIR/init.log" 2>&1 || { cat "$DIR/init.log" >&2; exit 1; }
  "$CRM" addons upgrade >>"$DIR/init.log" 2>&1 || { cat "$DIR/init.log" >&2; exit 1; }
  local port n
  for port in $WEB_PORTS; do launch "web-$port" serve --host 127.0.0.1 --port "$port"; done
  for n in $(seq 1 "$WORKERS"); do launch "worker-$n" worker --threads 4; done
  for n in $(seq 1 "$SCHEDULERS"); do launch "scheduler-$n" scheduler; done
  for port in $WEB_PORTS; do
    for _ in $(seq 1 300); do
      curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && continue 2
      sleep 0.2
    done
    echo "web on port $port did not answer /healthz in 60 s:" >&2
    tail -20 "$DIR/web-$port.log" >&2
    stop >/dev/null
    exit 1
  done
  if [ -n "$PROXY_PORT" ]; then
    proxy || { stop >/dev/null; exit 1; }
    for _ in $(seq 1 100); do
      curl -fs "http://127.0.0.1:$PROXY_PORT/healthz" >/dev/null 2>&1 && break
      sleep 0.2
    done
    curl -fs "http://127.0.0.1:$PROXY_PORT/healthz" >/dev/null 2>&1 || { echo "proxy on port $PROXY_PORT did not answer:" >&2; tail -20 "$DIR/proxy.log" >&2; stop >/dev/null; exit 1; }
  fi
  for name in $(cd "$DIR" && ls -- *.pid | sed 's/\.pid$//'); do
    kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null || { echo "$name exited:" >&2; tail -20 "$DIR/$name.log" >&2; stop >/dev/null; exit 1; }
  done
  echo "up: web on 127.0.0.1 ports $WEB_PORTS${PROXY_PORT:+ behind Caddy on 127.0.0.1:$PROXY_PORT}, $WORKERS workers, $SCHEDULERS schedulers (pids and logs in $DIR)"
}

status() {
  local f code=0
  for f in "$DIR"/*.pid; do
    [ -e "$f" ] || { echo "not running"; return 3; }
    if kill -0 "$(cat "$f")" 2>/dev/null; then echo "$(basename "$f" .pid) running (pid $(cat "$f"))"
    else echo "$(basename "$f" .pid) DEAD (log: ${f%.pid}.log)"; code=1; fi
  done
  return $code
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
