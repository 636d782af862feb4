#!/bin/bash
# mscope incidents and mscope export on bad input: exit 1 with a message that
# names the file or directory; usage errors exit 2; --help exits 0.
set -uo pipefail
build=${MSCOPE_BUILD:?}
src=${MSCOPE_SRC:?}
mscope=$build/tools/mscope
work=$(mktemp -d /tmp/mscope-inc-bad.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0

expect() {  # status, message regexp, command...
	local want=$1 re=$2 got
	shift 2
	"$@" >"$work/out" 2>"$work/err"
	got=$?
	if [ "$got" -ne "$want" ] || ! grep -Eq -- "$re" "$work/err" "$work/out"; then
		echo "FAIL ($got, want $want, /$re/): $*"; cat "$work/err"; fail=1
	else
		echo "ok   $want: $*"
	fi
}

for cmd in incidents export; do
	expect 0 "usage: mscope $cmd" "$mscope" "$cmd" --help
	expect 2 "expected one directory|usage" "$mscope" "$cmd"
	expect 2 "unrecognized|usage" "$mscope" "$cmd" --bogus "$work"
	expect 2 "bad value for --from" "$mscope" "$cmd" --from xyz "$work"
	expect 1 "$work/missing: No such file" "$mscope" "$cmd" "$work/missing"
	mkdir -p "$work/empty"
	expect 1 "$work/empty: no trace files" "$mscope" "$cmd" "$work/empty"
done
expect 2 "bad value for --bin" "$mscope" incidents --bin 0 "$work"
expect 2 "bad value for --k" "$mscope" incidents --k -1 "$work"

# a corrupt file (not a trace): named, exit 1
"$mscope" sim "$src/tools/scenarios/fw-burst.json" -o "$work/run" --no-victims -q
cp -r "$work/run" "$work/corrupt"
head -c 4000 /dev/urandom >"$work/corrupt/fw1.mst"
expect 1 "corrupt/fw1.mst" "$mscope" incidents "$work/corrupt"
expect 1 "corrupt/fw1.mst" "$mscope" export "$work/corrupt"
# a truncated tail: a warning, what was complete is used
cp -r "$work/run" "$work/trunc"
sz=$(stat -c %s "$work/run/fw1.mst")
head -c $((sz * 2 / 3)) "$work/run/fw1.mst" >"$work/trunc/fw1.mst"
expect 0 "warning: .*trunc/fw1.mst" "$mscope" incidents "$work/trunc" --no-diagnose
# an unwritable output
expect 1 "cannot write" "$mscope" incidents "$work/run" --no-diagnose --json "$work/nodir/x.json"
expect 1 "cannot" "$mscope" export "$work/run" -o "$work/nodir/x.csv"
# one NF that sends on two ports has two source traces of one name (a real
# chain's traffic source): two nodes, as the analyzer names them, not an error
mktrace=$build/tests/traces/mktrace
cp -r "$work/run" "$work/twosrc"
"$mktrace" source "$work/twosrc/gen-src-p1q0-7.mst" 1
"$mktrace" source "$work/twosrc/gen-src-p0q0-7.mst" 0
expect 0 "scanned [0-9]+ nodes" "$mscope" incidents --no-diagnose "$work/twosrc"
if grep -q "two traces" "$work/err" "$work/out"; then
	echo "FAIL: two source ports of one NF taken for one node twice"; fail=1
fi
exit $fail
