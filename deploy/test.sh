#!/usr/bin/env bash
# One command on a fresh machine: install test needs, start PostgreSQL/Redis if down, lint, type-check, test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/setup.sh --test
.venv/bin/ruff check core addons bench tests
.venv/bin/lint-imports  # addon boundaries: contracts in pyproject.toml [tool.importlinter]
.venv/bin/mypy
exec .venv/bin/pytest -q "$@"
