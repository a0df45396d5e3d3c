#!/usr/bin/env bash
# The README's first command: set everything up (scripts/setup.sh), then bring up the
# one-machine lab and print its hosts, pods and pod×pod connectivity matrix.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/src/cmd/twill-lab.js up "$@"
