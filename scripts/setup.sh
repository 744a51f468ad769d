#!/usr/bin/env bash
# Everything `make demo` and `make test` need on a fresh machine, idempotent and cached:
#   1. Debian packages: docker.io (engine), docker-registry (OCI registry), git
#   2. a Python venv in .venv with Stageflow and its pinned dependencies
#   3. Go tools built from the Go module proxy into ~/.cache/stageflow/tools (scripts/build-tools.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
say() { printf '[setup] %s\n' "$*" >&2; }

packages=(docker.io docker-registry git ca-certificates)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${missing[*]} — run as root or: sudo apt-get install ${missing[*]}"; exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { say "Go is required to build the Kubernetes tools (https://go.dev/doc/install)"; exit 1; }

python=${PYTHON:-python3}
stamp=.venv/.stageflow-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "creating the Python environment in .venv"
  "$python" -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  echo "$want" > "$stamp"
fi

bash scripts/build-tools.sh >/dev/null
say "ready: tools in ${STAGEFLOW_TOOLS_CACHE:-$HOME/.cache/stageflow/tools}/bin, Python in .venv"
