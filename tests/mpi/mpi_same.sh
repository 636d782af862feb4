#!/bin/bash
# mscope-mpi gives the same report for 1, 2 and 4 ranks (and 3, and without
# mpirun) as mscope incidents:
# a 3 s chain with five faults, one at the middle, across the shard edge of 2
# and 4 ranks (checked; tests/mpi/shard-edges.json); text, --json and --html compared with cmp
# (only the CPU and wall times, which differ between any two runs, are masked).
set -euo pipefail
. "${MSCOPE_SRC:?}/tests/mpi/mpi_env.sh"
work=$(mktemp -d /tmp/mscope-mpi-same.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$mscope" sim "$src/tests/mpi/shard-edges.json" -o "$work/run" --no-victims -q
TMPDIR=$work "$mscope" incidents "$work/run" --json "$work/plain.json" --html "$work/plain.html" \
	>"$work/plain.txt"
n=$(jq '.incidents | length' "$work/plain.json")
[ "$n" -eq 5 ] && ok "plain: 5 incidents" || bad "plain: $n incidents, expected 5"
for f in txt json html; do normalise "$work/plain.$f" >"$work/plain.$f.n"; done
# the masked fields are the only difference: they are present
grep -q '"cpu_s": T' "$work/plain.json.n" && ok "timings masked" || bad "no cpu_s in the JSON"

for n in 1 2 4; do
	if ! TMPDIR=$work MSCOPE_MPI_STATS=1 mpirun_n "$n" "$mpi" incidents "$work/run" \
			--json "$work/r$n.json" --html "$work/r$n.html" >"$work/r$n.txt" 2>"$work/r$n.err"; then
		bad "$n ranks: exit status $?"; cat "$work/r$n.err"; continue
	fi
	[ "$(grep -c '^rank [0-9]*: scan' "$work/r$n.err")" -eq "$n" ] &&
		ok "$n ranks: per-rank figures" || { bad "$n ranks: per-rank figures"; cat "$work/r$n.err"; }
	if [ "$n" -gt 1 ]; then   # an incident runs across a shard edge
		edges=$(sed -nE 's/^rank [0-9]+: .*shard [0-9.]+-([0-9.]+) s$/\1/p' "$work/r$n.err" |
			head -n $((n - 1)) | paste -sd, -)
		jq -e --argjson e "[$edges]" '[.incidents[] | . as $i |
			$e[] | select($i.start_us / 1e6 < . and . < $i.end_us / 1e6)] | length > 0' \
			"$work/plain.json" >/dev/null && ok "$n ranks: an incident across an edge ($edges s)" ||
			bad "$n ranks: no incident across the edges $edges"
	fi
	for f in txt json html; do
		normalise "$work/r$n.$f" >"$work/r$n.$f.n"
		if cmp "$work/plain.$f.n" "$work/r$n.$f.n"; then
			ok "$n ranks: $f identical"
		else
			bad "$n ranks: $f differs"; diff "$work/plain.$f.n" "$work/r$n.$f.n" | head -20
		fi
	done
done
# without mpirun: one rank, the same report
TMPDIR=$work "$mpi" incidents "$work/run" --json "$work/single.json" -q || bad "singleton: exit status $?"
normalise "$work/single.json" >"$work/single.json.n"
cmp "$work/plain.json.n" "$work/single.json.n" && ok "without mpirun: json identical" ||
	bad "without mpirun: json differs"
# bins that double in width past 2^17 (10 us bins over 3 s), and a scan
# window: the same bins and incidents with an odd number of ranks
for args in "--bin 10us" "--from 0.6s --to 2.2s"; do
	"$mscope" incidents "$work/run" $args --no-diagnose --json "$work/pa.json" -q
	mpirun_n 3 "$mpi" incidents "$work/run" $args --no-diagnose --json "$work/ra.json" -q ||
		bad "3 ranks, $args: exit status $?"
	normalise "$work/pa.json" >"$work/pa.n"
	normalise "$work/ra.json" >"$work/ra.n"
	cmp "$work/pa.n" "$work/ra.n" && ok "3 ranks, $args: json identical" ||
		bad "3 ranks, $args: json differs"
	[ "$args" != "--bin 10us" ] || { jq -e '.scan.bin_us == 40' "$work/pa.json" >/dev/null &&
		ok "10 us bins doubled twice" || bad "bins not doubled: $(jq .scan.bin_us "$work/pa.json")"; }
done
# a stall longer than the first look-back across the edge of 2 ranks: the
# second rank scans again with a longer look-back, and the report is the same
"$mscope" sim "$src/tests/mpi/long-hold.json" -o "$work/hold" --no-victims -q
TMPDIR=$work "$mscope" incidents "$work/hold" --json "$work/ph.json" -q
TMPDIR=$work MSCOPE_MPI_STATS=1 mpirun_n 2 "$mpi" incidents "$work/hold" --json "$work/rh.json" \
	-q 2>"$work/rh.err" || bad "long hold, 2 ranks: exit status $?"
normalise "$work/ph.json" >"$work/ph.n"
normalise "$work/rh.json" >"$work/rh.n"
cmp "$work/ph.n" "$work/rh.n" && ok "long hold, 2 ranks: json identical" ||
	bad "long hold, 2 ranks: json differs"
grep -Eq "^rank 1: .*look-back rescans [1-9]" "$work/rh.err" && ok "rank 1 scanned again" ||
	{ bad "rank 1 did not lengthen its look-back"; cat "$work/rh.err"; }
# each rank scanned its shard: the 4 ranks' packet-hops add up to the total
total=$(jq '.scan.packet_hops' "$work/plain.json")
sum=$(sed -nE 's/^rank [0-9]+: scan ([0-9.]+) M hops.*/\1/p' "$work/r4.err" | paste -sd+ | bc)
python3 -c "import sys; t, s = $total / 1e6, $sum; sys.exit(abs(t - s) > 0.05 * 4)" &&
	ok "4 shards add up to $total packet-hops" || bad "4 shards: $sum M hops, total $total"
[ -z "$(ls "$work" | grep mscope-incidents || true)" ] && ok "no temporary cuts left" ||
	bad "temporary cuts left in $work"
exit $fail
