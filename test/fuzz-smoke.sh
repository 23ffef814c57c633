#!/usr/bin/env bash
# test/fuzz-smoke.sh [DURATION]: run every Go fuzz target of the module for a
# short time (default 5s each). Seed corpora already run under `go test`.
set -uo pipefail
cd "$(dirname "$0")/.."
t=${1:-5s}
pass=0 fail=0
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz'); do
    if go test -run '^$' -fuzz "^${f}\$" -fuzztime "$t" "$pkg" >/tmp/fuzz-$f.log 2>&1; then
      echo "ok   $pkg $f"; pass=$((pass+1))
    else
      echo "FAIL $pkg $f"; tail -20 /tmp/fuzz-$f.log; fail=$((fail+1))
    fi
  done
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" = 0 ]
