#!/usr/bin/env bash
# Hostile-input cases, one folder each (the jansson test suite's layout):
#   tests/invalid/<kind>/<case>/input      the input
#   tests/invalid/<kind>/<case>/expected   line 1: the exit status; each further
#                                           non-empty line: text stderr must contain
# Kinds and what runs on `input` (in the case's folder, so messages name "input"):
#   scenario   mscope sim --dry-run --json input
#   report     mscope report input --html OUT.html
#   trace      mscope dump input
#   chain      tools/mscope-chain --dry-run: on the scenario cases of issue 16
#              (d8-*, d9-*) and of the launcher's fields (launch-*, recording-*)
#              that must fail (the launcher refuses them with the same status and
#              message: it runs the same validator), and on chain/<case>, what
#              only real processes cannot run (IPv6, testpmd with two inputs, ...)
# A case fails on a different exit status, a missing text, or any sanitizer
# report or Python traceback. Adding a case is adding a folder.
# Usage: run.sh MSCOPE KIND [CASES_DIR]   (CASES_DIR: default this script's folder)
set -uo pipefail
M=$1
KIND=$2
HERE=$(cd "$(dirname "$0")" && pwd)
CASES=${3:-$HERE}
CHAIN=${MSCOPE_CHAIN:-$HERE/../../tools/mscope-chain}
T=$(mktemp -d /tmp/mscope-invalid.XXXXXX)
trap 'rm -rf "$T"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

[ -d "$CASES/$KIND" ] || { echo "FAIL: no folder $CASES/$KIND"; exit 1; }
list=("$CASES/$KIND"/*/)
if [ "$KIND" = chain ]; then
	list+=("$CASES"/scenario/d8-*/ "$CASES"/scenario/d9-*/ "$CASES"/scenario/launch-*/
		"$CASES"/scenario/recording-*/)
fi
n=0 bad=0
for c in "${list[@]}"; do
	c=${c%/}
	name=$(basename "$(dirname "$c")")/$(basename "$c")
	if [ ! -f "$c/input" ] || [ ! -f "$c/expected" ]; then
		echo "FAIL $name: needs input and expected"
		bad=$((bad + 1))
		continue
	fi
	want=$(head -n 1 "$c/expected")
	[ "$KIND" = chain ] && [ "$want" != 1 ] && continue
	rm -f "$T/out.html"
	case $KIND in
	scenario) (cd "$c" && "$M" sim --dry-run --json input) >"$T/out" 2>"$T/err" ;;
	report) (cd "$c" && "$M" report input --html "$T/out.html") >"$T/out" 2>"$T/err" ;;
	trace) (cd "$c" && "$M" dump input) >"$T/out" 2>"$T/err" ;;
	chain) (cd "$c" && python3 "$CHAIN" input -o "$T/run" --dry-run --no-collector \
		--mscope "$M") >"$T/out" 2>"$T/err" ;;
	*) echo "FAIL: unknown kind $KIND"; exit 1 ;;
	esac
	rc=$?
	n=$((n + 1))
	why=""
	[ "$rc" = "$want" ] || why="exit status $rc, expected $want"
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		grep -qF -- "$line" "$T/err" || why="${why:+$why; }stderr lacks \"$line\""
	done < <(tail -n +2 "$c/expected")
	if grep -qE "Sanitizer|runtime error:|Traceback \(most recent" "$T/err"; then
		why="${why:+$why; }sanitizer report or traceback"
	fi
	if [ -n "$why" ]; then
		echo "FAIL $name: $why"
		sed 's/^/    /' "$T/err" | head -20
		bad=$((bad + 1))
	else
		echo "ok   $name (exit $rc)"
	fi
done
echo "$KIND: $n cases, $bad failed"
[ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
