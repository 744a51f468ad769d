#!/usr/bin/env bash
# Everything `make demo` and `make test` need on a fresh machine, idempotent and cached:
#   1. Debian packages: docker.io (engine), docker-registry (OCI registry), git, shellcheck (actionlint uses it),
#      debootstrap (builds the local Python base image the service template's Dockerfile is tested with),
#      chromium (the headless browser of the release approval test)
#   2. a Python venv in .venv with Stageflow and its pinned dependencies
#   3. Go tools built from the Go module proxy into ~/.cache/stageflow/tools (scripts/build-tools.sh)
#   4. GitHub's OpenAPI description (npm @octokit/openapi, pinned by tools/github-openapi/package-lock.json)
#      for the GitHub API stand-in the forge contract tests run against
#   5. playwright-core (npm, pinned by tools/browser/package-lock.json), which drives that chromium
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
say() { printf '[setup] %s\n' "$*" >&2; }

packages=(docker.io docker-registry git ca-certificates shellcheck debootstrap chromium)
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

# npm ci only when the lock file changed since the last install (a stamp inside node_modules), so
# later runs work offline; npm's own cache under ~/.cache/stageflow/npm makes a reinstall offline too.
openapi=tools/github-openapi
openapi_stamp=$openapi/node_modules/.stageflow-installed
openapi_want=$(sha256sum "$openapi/package-lock.json" | cut -c1-16)
if [ "$(cat "$openapi_stamp" 2>/dev/null)" != "$openapi_want" ]; then
  if command -v npm >/dev/null; then
    say "installing GitHub's OpenAPI description into $openapi/node_modules (npm ci)"
    (cd "$openapi" && npm ci --prefer-offline --no-audit --no-fund --ignore-scripts --loglevel=error \
        --cache "${STAGEFLOW_NPM_CACHE:-$HOME/.cache/stageflow/npm}" >/dev/null)
    echo "$openapi_want" > "$openapi_stamp"
  else
    say "npm not found: the GitHub forge contract tests will be skipped (install Node.js 18+ with npm)"
  fi
fi

# playwright-core (pinned by tools/browser/package-lock.json) drives Debian's chromium through the
# Prefect UI in the release approval test; it never downloads a browser of its own.
browser=tools/browser
browser_stamp=$browser/node_modules/.stageflow-installed
browser_want=$(sha256sum "$browser/package-lock.json" | cut -c1-16)
if [ "$(cat "$browser_stamp" 2>/dev/null)" != "$browser_want" ]; then
  if command -v npm >/dev/null; then
    say "installing playwright-core into $browser/node_modules (npm ci)"
    (cd "$browser" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefer-offline --no-audit --no-fund --ignore-scripts \
        --loglevel=error --cache "${STAGEFLOW_NPM_CACHE:-$HOME/.cache/stageflow/npm}" >/dev/null)
    echo "$browser_want" > "$browser_stamp"
  else
    say "npm not found: the release approval UI test will be skipped (install Node.js 20+ with npm)"
  fi
fi
say "ready: tools in ${STAGEFLOW_TOOLS_CACHE:-$HOME/.cache/stageflow/tools}/bin, Python in .venv"
