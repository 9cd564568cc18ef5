#!/usr/bin/env bash
# The full test suite: installs and starts what it needs (MariaDB, PostgreSQL, helm), then runs
# every test of the workspace (unit, store conformance on the three databases, apiserver through
# kubectl/helm/kube-rs, e2e) against real processes.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=ensure-services.sh
. scripts/ensure-services.sh
# A whole-suite build is not iterated on: incremental caches would only double the disk used.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo build --workspace --bins
cargo test --workspace --no-fail-fast "$@"
