#!/bin/bash
# End to end on simulator scenarios with known causes (tools/scenarios):
#   burst into a firewall       -> the source, and the burst flow
#   NAT interrupt seen at a VPN -> the NAT's processing, not the VPN's
#   16-NF graph, nat2 interrupt -> nat2's processing
#   16-NF graph, vpn4 slowdown  -> vpn4's processing
# and per-victim: >= 90% of the simulator's labelled victims have the true
# culprit on top of their own list (--relations, identity wire_id + tsc).
set -euo pipefail
build=${MSCOPE_BUILD:?}
src=${MSCOPE_SRC:?}
mscope=$build/tools/mscope
work=$(mktemp -d /tmp/mscope-an-e2e.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0

check() {   # scenario, expected nf, kind, flow substring or ""
	local s=$1 nf=$2 kind=$3 flow=$4 d=$work/$1
	"$mscope" sim "$src/tools/scenarios/$s.json" -o "$d" >/dev/null
	"$mscope" analyze "$d" --threshold 50us -q --json "$d.json" --relations "$d.rel" 2>"$d.err" || {
		echo "FAIL $s: analyze exited $?"; cat "$d.err"; fail=1; return; }
	local top
	top=$(jq -r '.culprits[0] | "\(.nf) \(.kind)"' "$d.json")
	if [ "$top" != "$nf $kind" ]; then
		echo "FAIL $s: top culprit '$top', expected '$nf $kind'"
		jq -c '.culprits[0:3][] | [.nf, .kind, .flow, .share]' "$d.json"
		fail=1
	else
		echo "ok   $s: top culprit $top"
	fi
	if [ -n "$flow" ]; then
		# the flow must be named by one of the top source rules
		if jq -r --arg nf "$nf" --arg k "$kind" \
				'[.culprits[] | select(.nf == $nf and .kind == $k)][0:3][] | .flow' \
				"$d.json" | grep -q -- "$flow"; then
			echo "ok   $s: culprit flow $flow named"
		else
			echo "FAIL $s: culprit flow $flow not among the top rules"
			fail=1
		fi
	fi
	# per-victim accuracy on the simulator's labels
	# Every shipped scenario with a fault has labelled victims, in every build
	# (tests/sim/victims_pinned.sh pins them): none would mean a broken
	# simulator, not a case to skip.
	local acc nlab ntruth
	nlab=$(wc -l < "$d/victims.jsonl")
	ntruth=$(jq '[.faults[].victims] | add // 0' "$d/truth.json")
	if [ "$nlab" -eq 0 ] || [ "$nlab" -ne "$ntruth" ]; then
		echo "FAIL $s: victims.jsonl has $nlab labels, truth.json counts $ntruth"
		fail=1
		return
	fi
	acc=$(jq -s -r --slurpfile rel "$d.rel" --arg nf "$nf" --arg k "$kind" '
		(map({key: "\(.wire_id)/\(.tsc)", value: 1}) | from_entries) as $truth
		| [$rel[] | select($truth["\(.wire_id)/\(.tsc)"] != null)] as $d
		| ([$d[] | select((.culprits | length) > 0 and .culprits[0].nf == $nf
			and .culprits[0].kind == $k)] | length) as $ok
		| if ($d | length) == 0 then 0 else ($ok * 100 / ($truth | length)) end' \
		"$d/victims.jsonl")
	if awk -v a="$acc" 'BEGIN { exit !(a >= 90) }'; then
		echo "ok   $s: per-victim accuracy ${acc}%"
	else
		echo "FAIL $s: per-victim accuracy ${acc}% < 90%"
		fail=1
	fi
}

check fw-burst source source "10.0.0.1:1234"
check nat-interrupt-vpn nat1 processing ""
check eval16-interrupt nat2 processing ""
check eval16-slow vpn4 processing ""

# identical input, identical output (1 and 2 threads)
"$mscope" analyze "$work/eval16-interrupt" -q --threads 1 --json "$work/t1.json" --relations "$work/t1.rel"
"$mscope" analyze "$work/eval16-interrupt" -q --threads 2 --json "$work/t2.json" --relations "$work/t2.rel"
if cmp -s "$work/t1.json" "$work/t2.json" && cmp -s "$work/t1.rel" "$work/t2.rel"; then
	echo "ok   deterministic across thread counts"
else
	echo "FAIL output differs between 1 and 2 threads"
	fail=1
fi

# one packet explained: the first labelled victim of the burst, at the firewall
w=$(head -1 "$work/fw-burst.rel" | jq -r .wire_id)
node=$(head -1 "$work/fw-burst.rel" | jq -r '.queued_at[0].node')
if "$mscope" analyze "$work/fw-burst" --packet "$node@$w" | grep -q "queuing period"; then
	echo "ok   --packet explains $node@$w"
else
	echo "FAIL --packet $node@$w"
	fail=1
fi

# usage and bad input exit codes
set +e
"$mscope" analyze >/dev/null 2>&1; [ $? -eq 2 ] || { echo "FAIL no args: want exit 2"; fail=1; }
"$mscope" analyze "$work/eval16-interrupt" --dag nonsense >/dev/null 2>&1; [ $? -eq 2 ] || { echo "FAIL bad --dag: want exit 2"; fail=1; }
"$mscope" analyze "$work/nonexistent" >/dev/null 2>&1; [ $? -eq 1 ] || { echo "FAIL missing dir: want exit 1"; fail=1; }
"$mscope" analyze --help | grep -q -- "--relations" || { echo "FAIL --help"; fail=1; }
set -e
exit $fail
