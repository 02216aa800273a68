#!/usr/bin/env bash
# Makes the directory of a new test run under the cache and prints its path.
# The end-to-end harness keeps there the API server's audit log of every
# environment it starts and the chart installs of the operator, when the run
# names the directory in SSM_OPERATOR_AUDIT_RUN (`make test` does); the RBAC
# check that runs after the suite (deploy/tests/test_rbac_used.py) reads them.
#
#   run=$(testenv/audit-run.sh)
#
# Old runs are removed: all but the newest few, except a run still being
# written (another clone's `make test` may share the cache).
set -euo pipefail

cache=${SSM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ssm-operator}
runs="$cache/audit-runs"
keep=3
busy_minutes=120

mkdir -p "$runs"
# Newest first, by name: each starts with its UTC start time.
mapfile -t old < <(find "$runs" -mindepth 1 -maxdepth 1 -type d -name '20*' | sort -r | tail -n +"$((keep + 1))")
for run in "${old[@]}"; do
  if [ -z "$(find "$run" -mmin "-$busy_minutes" -print -quit)" ]; then
    rm -rf "$run"
  fi
done
mktemp -d "$runs/$(date -u +%Y%m%dT%H%M%SZ).XXXXXX"
