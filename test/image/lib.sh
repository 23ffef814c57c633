# shellcheck shell=bash
# test/image/lib.sh: results for test/image/run.sh (PASS/FAIL lines and the closing
# "N passed, M failed"). The Go suites count with test/tally instead.
PASS=0 FAIL=0 FAILED=()
now_ms() { echo $(($(date +%s%N) / 1000000)); }
log() { echo "# $*" >&2; }
die() { echo "image: $*" >&2; exit 1; }
section() { echo; echo "== $*"; }
ok() { echo "  PASS $*"; PASS=$((PASS + 1)); }
bad() { echo "  FAIL $*"; FAIL=$((FAIL + 1)); FAILED+=("$*"); }
show() { sed 's/^/      | /' <<<"$1" | head -40; }
# check NAME PATTERN TEXT: pass when TEXT contains the fixed string PATTERN.
check() { if grep -qF -- "$2" <<<"$3"; then ok "$1"; else bad "$1 (missing '$2')"; show "$3"; fi; }
# check_eq NAME WANT GOT
check_eq() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (want '$2', got '$3')"; fi; }
summary() {
  echo
  if [ "$FAIL" -gt 0 ]; then echo "Failed checks:"; printf '  - %s\n' "${FAILED[@]}"; fi
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]
}
