#!/bin/bash
# mscope-mpi when a rank fails: a trace damaged in the second half of the
# recording makes the rank of that shard fail; the run exits 1 and the
# message names the rank, its shard and the file, with no report written.
# A missing directory fails every rank, each named; a rank that crashes is
# named. Usage errors exit 2.
set -uo pipefail
. "${MSCOPE_SRC:?}/tests/mpi/mpi_env.sh"
work=$(mktemp -d /tmp/mscope-mpi-fail.XXXXXX)
trap 'rm -rf "$work"' EXIT

expect() {  # ranks, status, message regexp, mscope-mpi arguments...
	local n=$1 want=$2 re=$3 got
	shift 3
	mpirun_n "$n" "$mpi" "$@" >"$work/out" 2>"$work/err"
	got=$?
	if [ "$got" -ne "$want" ] || { [ -n "$re" ] && ! grep -Eq -- "$re" "$work/err"; }; then
		bad "($got, want $want, /$re/): $n ranks: $*"; cat "$work/err"
	else
		ok "$want: $n ranks: $*: $(grep -E -- "${re:-.}" "$work/err" | head -1)"
	fi
}

"$mscope" sim "$src/tests/mpi/shard-edges.json" -o "$work/run" --no-victims -q
cp -r "$work/run" "$work/bad"
# damage a frame at 85% of vpn1's trace: in the last shard of 2 and of 4 ranks
f=$work/bad/vpn1.mst
size=$(stat -c %s "$f")
printf 'XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX' |
	dd of="$f" bs=1 seek=$((size * 85 / 100)) conv=notrunc status=none
expect 2 1 "rank 1 \(shard 1\.[0-9]{3}-3\.[0-9]{3} s\): damaged trace: .*bad/vpn1.mst: offset [0-9]+" \
	incidents "$work/bad" --json "$work/r2.json"
[ ! -e "$work/r2.json" ] && ok "no report written" || bad "a report was written"
grep -q "rank 0" "$work/err" && bad "rank 0 blamed" || ok "only the failed rank named"
expect 4 1 "rank 3 \(shard 2\.[0-9]{3}-3\.[0-9]{3} s\): damaged trace: .*bad/vpn1.mst" \
	incidents "$work/bad"
# every rank fails to list a missing directory: each is named
expect 2 1 "rank 1 \(listing the traces\): .*missing: No such file" incidents "$work/missing"
grep -q "rank 0 (listing the traces)" "$work/err" && ok "rank 0 named too" || bad "rank 0 not named"
expect 2 2 "bad value for --bin" incidents --bin 0 "$work/run"
# a rank that crashes (SIGSEGV in rank 1 while it works): named with its
# shard, the run fails, no report
# (a test hook raises SIGSEGV in rank 1 once it knows its shard: a kill
# timed from outside raced the run's end on a quiet machine)
MSCOPE_TEST_MPI_CRASH_RANK=1 TMPDIR=$work mpirun_n 2 "$mpi" incidents "$work/run" \
	--json "$work/crash.json" >"$work/out" 2>"$work/err"
got=$?
if [ "$got" -ne 0 ] && grep -Eq "rank 1 \((shard [0-9.]+-[0-9.]+ s|listing the traces)\): crashed" \
		"$work/err" && [ ! -e "$work/crash.json" ]; then
	ok "crashed rank 1 named, exit $got: $(grep crashed "$work/err")"
else
	bad "crash of rank 1: exit $got"; cat "$work/err"
fi
# the healthy recording still works with the same ranks
expect 2 0 "" incidents "$work/run" -q
exit $fail
