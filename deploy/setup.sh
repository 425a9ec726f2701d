#!/usr/bin/env bash
# Install what the CRM needs on a fresh Debian machine: system packages, a virtualenv, the kernel and every addon.
#   deploy/setup.sh          runtime only
#   deploy/setup.sh --test   plus test tools, and start PostgreSQL / Redis if they are down
#   deploy/setup.sh --bench  plus what bench/ and the cluster's proxy use: Caddy and wrk (with --test: both)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WITH_TEST=0
WITH_BENCH=0
for arg in "$@"; do
  case "$arg" in
    --test) WITH_TEST=1 ;;
    --bench) WITH_BENCH=1 ;;
    *) echo "deploy/setup.sh: unknown option $arg (use --test and/or --bench)" >&2; exit 2 ;;
  esac
done

need_apt=()
dpkg -s libpango-1.0-0 >/dev/null 2>&1 || need_apt+=(libpango-1.0-0 libpangoft2-1.0-0)
dpkg -s libharfbuzz-subset0 >/dev/null 2>&1 || need_apt+=(libharfbuzz-subset0)   # 60x faster PDF fonts
fc-list :lang=zh-cn family 2>/dev/null | grep -q . || need_apt+=(fonts-wqy-microhei)  # Chinese in PDFs
if [ "$WITH_TEST" = 1 ]; then
  command -v pdftotext >/dev/null || need_apt+=(poppler-utils)
  [ -x /usr/bin/chromium ] || need_apt+=(chromium)
  [ -x /usr/sbin/dovecot ] || need_apt+=(dovecot-imapd)   # crm_service mail tests start their own IMAP server
fi
if [ "$WITH_BENCH" = 1 ]; then
  command -v caddy >/dev/null || need_apt+=(caddy)   # CLUSTER_PROXY_PORT in deploy/cluster.sh, bench/api_throughput.py
  command -v wrk >/dev/null || need_apt+=(wrk)       # HTTP load in bench/
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing system packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
extras=""; [ "$WITH_TEST" = 1 ] && extras="[test]"
addon_args=()
# With --test, each addon's own [test] extra too (erp_bridge's pulls a real trytond for its tests).
for d in addons/*/; do [ -f "$d/pyproject.toml" ] && addon_args+=(-e "${d%/}$extras"); done
# pip's and setuptools' chatter goes to a log; a failed install still stops here (set -o pipefail).
.venv/bin/python -m pip install -q -e ".$extras" "${addon_args[@]}" > .venv/install.log 2>&1 \
  || { tail -30 .venv/install.log >&2; echo "pip install failed (full log: .venv/install.log)" >&2; exit 1; }
.venv/bin/python -c "import core" || { echo "install failed" >&2; exit 1; }

if [ "$WITH_TEST" = 1 ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /tmp --logfile /tmp/redis-ci.log
  fi
  # RabbitMQ: the second job broker the tests run on (Debian's rabbitmq-server; already running on CI machines)
  if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && command -v rabbitmq-server >/dev/null; then
    echo "starting RabbitMQ"
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 \
      && (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break
    sleep 1
  done
fi
echo "ready: $ROOT/.venv"
