#!/bin/bash
# Second start of the embedded default (model already in the store), spawn to the "edgevolve is
# ready" line, through `npm start` and through `node src/cli/bin.js run` (what npm start runs,
# without npm), alternating, ROUNDS rounds (default 3). Run from a checkout after one `npm start`
# has seeded ./.state; prints the load average before and after. README "The daemon".
#   scripts/bench-npm-start.sh [ROUNDS]
set -euo pipefail
rounds=${1:-3}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

measure() {
  local label=$1 t0 t1 pid rc=0
  shift
  t0=$(date +%s%N)
  setsid "$@" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 1000); do
    grep -q 'edgevolve is ready' "$log" && break
    sleep 0.01
  done
  t1=$(date +%s%N)
  grep -q 'edgevolve is ready' "$log" || { echo "$label: not ready after 10 s" >&2; kill -TERM -- "-$pid"; exit 1; }
  # SIGTERM to the daemon's whole process group, as a service manager would (npm itself then exits 143).
  kill -TERM -- "-$pid"
  wait "$pid" || rc=$?
  printf '%-28s %5d ms (exit %d)\n' "$label" $(((t1 - t0) / 1000000)) "$rc"
}

uptime
for _ in $(seq 1 "$rounds"); do
  measure 'npm start' npm start
  measure 'node src/cli/bin.js run' node src/cli/bin.js run --config config/embedded.yaml
done
uptime
