#!/usr/bin/env bash
# Runs every fuzz target of the module (each `func FuzzXxx(f *testing.F)` in
# a _test.go file), one after the other, each for FUZZTIME, and lists the
# targets that failed. A failing input is kept by `go test` under the
# package's testdata/fuzz/FuzzXxx/, so that the normal test run (which runs
# every seed and kept input) repeats it until the bug is fixed.
#
#   scripts/fuzz.sh                        # FUZZTIME=30s, every target
#   FUZZTIME=5m scripts/fuzz.sh ./imap/... # longer, some packages only
#   scripts/fuzz.sh -list                  # the targets, not run
#
# PARALLEL (default 1) is go test's -parallel: the fuzzing processes.
# MINIMIZE (default 5s) is -fuzzminimizetime: Go's default (60s) can spend
# a whole short run shrinking new inputs instead of fuzzing.
set -eu
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
PARALLEL=${PARALLEL:-1}
MINIMIZE=${MINIMIZE:-5s}
list=
if [ "${1:-}" = "-list" ]; then
  list=1
  shift
fi
[ $# -gt 0 ] || set -- ./...

failed=()
count=0
for dir in $(go list -f '{{.Dir}}' "$@"); do
  targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*(' "$dir"/*_test.go 2>/dev/null | sed 's/^func //; s/($//' | sort -u || true)
  [ -n "$targets" ] || continue
  pkg=./${dir#"$PWD"/}
  for t in $targets; do
    count=$((count + 1))
    if [ -n "$list" ]; then
      echo "$pkg $t"
      continue
    fi
    echo "== $pkg $t ($FUZZTIME)"
    if ! go test -run '^$' -fuzz "^$t\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$MINIMIZE" -parallel "$PARALLEL" "$pkg"; then
      failed+=("$pkg $t")
    fi
  done
done
[ -n "$list" ] && exit 0
echo "fuzz.sh: $count targets, ${#failed[@]} failed"
for f in "${failed[@]}"; do
  echo "  FAILED: $f"
done
[ ${#failed[@]} -eq 0 ]
