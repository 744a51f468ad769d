#!/usr/bin/env bash
# Runs once when the Dev Container is created: the service's dev dependencies and Telepresence
# (no Dev Container Feature ships it, so it comes from its GitHub release).
set -euo pipefail
python -m pip install --user -e '.[dev]'
if ! command -v telepresence >/dev/null; then
  arch="$(dpkg --print-architecture)"
  sudo curl -fsSL -o /usr/local/bin/telepresence \
    "https://github.com/telepresenceio/telepresence/releases/latest/download/telepresence-linux-${arch}"
  sudo chmod a+x /usr/local/bin/telepresence
fi
telepresence version --client-only 2>/dev/null || telepresence version || true
