#!/usr/bin/env bash
# Install everything into ./.venv: PyTorch + torchvision (pinned; pip takes them from the local
# wheel cache where there is one), then the pipeline package with its test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
echo "installed into .venv (activate with: . .venv/bin/activate)"
