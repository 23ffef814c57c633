#!/usr/bin/env bash
# test/fuzz-smoke.sh [BUDGET]: run every Go fuzz target of the module for a
# short budget (default 20000x: twenty thousand executions each). Seed corpora
# already run under `go test`.
#
# The budget is a count, not a duration, on purpose: with a duration go1.26's
# fuzz coordinator can report a spurious "context deadline exceeded" failure
# at the deadline with no crashing input (golang/go#75804, fixed in go1.27).
# A count has no deadline to race. A duration still works if asked for.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
t=${1:-20000x}
pass=0 fail=0
for pkg in $(go list ./...); do
  if ! list=$(go test -list '^Fuzz' "$pkg" 2>&1); then
    echo "FAIL $pkg (cannot list its fuzz targets)"; tail -20 <<<"$list"; fail=$((fail+1)); continue
  fi
  for f in $(grep '^Fuzz' <<<"$list"); do
    if go test -run '^$' -fuzz "^${f}\$" -fuzztime "$t" "$pkg" >/tmp/fuzz-$f.log 2>&1; then
      echo "ok   $pkg $f"; pass=$((pass+1))
    else
      echo "FAIL $pkg $f"; tail -20 /tmp/fuzz-$f.log; fail=$((fail+1))
    fi
  done
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" = 0 ]
