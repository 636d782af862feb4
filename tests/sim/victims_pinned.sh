#!/usr/bin/env bash
# Victim labels are a pure function of the scenario and seed: the same bytes in
# every build (sanitized or release, any compiler optimisation), for any
# thread count and whatever malloc leaves in fresh memory. A build in which an
# undefined read or a race changes the model (as reported once: an empty
# victims.jsonl under ASan/UBSan) fails here, against digests recorded from a
# release build in victims_pinned.txt.
#
# Usage: victims_pinned.sh [--update]   (--update rewrites victims_pinned.txt
# after an intentional model change; review the new counts before committing)
# Env: MSCOPE_BUILD, MSCOPE_SRC (meson test_env); MSCOPE_SIM_OTHER_BUILD=DIR
# also runs DIR/tools/mscope and requires the same bytes from it.
set -euo pipefail
M="$MSCOPE_BUILD/tools/mscope"
pinned="$MSCOPE_SRC/tests/sim/victims_pinned.txt"
scenarios=(fw-burst nat-interrupt-vpn nat-mon-interrupt eval16-interrupt eval16-slow)
T=$(mktemp -d /tmp/mscope-sim-pin.XXXXXX)
trap 'rm -rf "$T"' EXIT
update=0
[ "${1:-}" = --update ] && update=1
fail=0

# "<scenario> <victims per fault, comma separated> <sha256 victims.jsonl> <sha256 truth.json>"
summary() {
	local name=$1 d=$2
	local counts
	counts=$(jq -r '[.faults[] | "\(.id):\(.victims)"] | join(",")' "$d/truth.json")
	echo "$name $counts $(sha256sum < "$d/victims.jsonl" | cut -c1-64)" \
		"$(sha256sum < "$d/truth.json" | cut -c1-64)"
}

out=()
for name in "${scenarios[@]}"; do
	f="$MSCOPE_SRC/tools/scenarios/$name.json"
	d="$T/$name"
	"$M" sim "$f" -o "$d" -q
	lines=$(wc -l < "$d/victims.jsonl")
	total=$(jq '[.faults[].victims] | add // 0' "$d/truth.json")
	if [ "$lines" -eq 0 ]; then
		echo "FAIL $name: victims.jsonl is empty (truth.json says $total)"
		fail=1
	elif [ "$lines" -ne "$total" ]; then
		echo "FAIL $name: victims.jsonl has $lines lines, truth.json says $total"
		fail=1
	fi
	# One thread (re-runs after the main run, no writer thread) and other
	# malloc fill bytes: the same bytes.
	MALLOC_PERTURB_=165 "$M" sim "$f" -o "$d.j1" -q -j 1
	for x in victims.jsonl truth.json; do
		cmp -s "$d/$x" "$d.j1/$x" || { echo "FAIL $name: $x differs with -j 1"; fail=1; }
	done
	if [ -n "${MSCOPE_SIM_OTHER_BUILD:-}" ]; then
		"$MSCOPE_SIM_OTHER_BUILD/tools/mscope" sim "$f" -o "$d.other" -q
		for x in victims.jsonl truth.json; do
			cmp -s "$d/$x" "$d.other/$x" ||
				{ echo "FAIL $name: $x differs from $MSCOPE_SIM_OTHER_BUILD's"; fail=1; }
		done
	fi
	out+=("$(summary "$name" "$d")")
done

if [ $update -eq 1 ]; then
	{
		echo "# scenario  fault:victims,...  sha256(victims.jsonl)  sha256(truth.json)"
		echo "# written by tests/sim/victims_pinned.sh --update (release build)"
		printf '%s\n' "${out[@]}"
	} > "$pinned"
	echo "wrote $pinned"
	exit $fail
fi

for line in "${out[@]}"; do
	name=${line%% *}
	want=$(grep "^$name " "$pinned" || true)
	if [ -z "$want" ]; then
		echo "FAIL $name: not in $pinned"
		fail=1
	elif [ "$want" != "$line" ]; then
		echo "FAIL $name: output differs from the pinned one"
		echo "  want $want"
		echo "  got  $line"
		echo "  (an intentional model or scenario change: run $0 --update on a release build)"
		fail=1
	else
		echo "ok   $name: victims $(echo "$line" | cut -d' ' -f2), bytes as pinned"
	fi
done
exit $fail
