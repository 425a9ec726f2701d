#!/usr/bin/env bash
# One command on a fresh machine: install everything, then start the CRM with demo data (SQLite, in-process jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh
exec .venv/bin/crm demo "$@"
