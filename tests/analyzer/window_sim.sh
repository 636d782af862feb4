#!/bin/bash
# Windowed analysis (--from/--to) on a simulated 16-NF run: the frames the
# index points at give exactly the results of reading every trace whole
# (--no-index): same victims, culprits, scores, periods, relations. Also:
# wall-clock windows, the no-victims message, a window without victims.
set -euo pipefail
build=${MSCOPE_BUILD:?}
src=${MSCOPE_SRC:?}
mscope=$build/tools/mscope
work=$(mktemp -d /tmp/mscope-an-window.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0

d=$work/run
"$mscope" sim "$src/tools/scenarios/eval16.json" -o "$d" >/dev/null

# the parts compared: everything but warnings and the files read
strip='del(.summary.warnings, .summary.frames_read, .summary.frames_total, .nodes[].file)'
same() {    # label, analyze options...
	local label=$1
	shift
	"$mscope" analyze "$d" -q --no-index "$@" --json "$work/full.json" --relations "$work/full.rel" 2>/dev/null
	"$mscope" analyze "$d" -q "$@" --json "$work/win.json" --relations "$work/win.rel" 2>/dev/null
	if [ "$(jq .summary.victims "$work/win.json")" -eq 0 ]; then
		echo "FAIL $label: no victims in the window (test needs some)"
		fail=1
	fi
	if cmp -s <(jq -S "$strip" "$work/full.json") <(jq -S "$strip" "$work/win.json") &&
			cmp -s "$work/full.rel" "$work/win.rel"; then
		echo "ok   $label: windowed = whole read ($(jq .summary.victims "$work/win.json") victims," \
			"$(jq .summary.frames_read "$work/win.json") of $(jq .summary.frames_total "$work/win.json") frames)"
	else
		echo "FAIL $label: windowed and whole read differ"
		diff <(jq -S "$strip" "$work/full.json") <(jq -S "$strip" "$work/win.json") | head -20
		fail=1
	fi
	local fr ft
	fr=$(jq .summary.frames_read "$work/win.json")
	ft=$(jq .summary.frames_total "$work/win.json")
	if [ "$fr" -ge "$ft" ]; then
		echo "FAIL $label: the window read $fr of $ft frames"
		fail=1
	fi
}
# the four faults of eval16 are at 20, 60, 100 and 140 ms
same "window 95-110ms" --from 95ms --to 110ms --context 5ms
same "window 55-70ms, 2 threads" --from 55ms --to 70ms --context 10ms --threads 2
same "window 138-150ms, threshold" --from 138ms --to 150ms --context 5ms --threshold 50us

# a wall-clock window (ISO 8601, UTC) gives the same as the same window from the start
start_ns=$(jq .summary.start_realtime_ns "$work/win.json")
t=$(( start_ns + 138000000 ))
from=$(date -u -d "@$(( t / 1000000000 ))" +%Y-%m-%dT%H:%M:%S).$(printf %09d $(( t % 1000000000 )))Z
"$mscope" analyze "$d" -q --from "$from" --to 150ms --context 5ms --threshold 50us \
	--json "$work/clock.json" --relations "$work/clock.rel" 2>/dev/null
if cmp -s "$work/clock.rel" "$work/win.rel"; then
	echo "ok   wall-clock --from $from = --from 138ms"
else
	echo "FAIL wall-clock --from $from differs from --from 138ms"
	fail=1
fi

# no victims: the threshold and how it was chosen, and how to change it
out=$("$mscope" analyze "$d" --from 170ms --to 175ms --threshold 10s 2>/dev/null)
if grep -q "no victims" <<<"$out" && grep -q -- "--threshold" <<<"$out" && grep -q -- "--percentile" <<<"$out"; then
	echo "ok   no victims: the message says the threshold and the options"
else
	echo "FAIL no victims message missing"
	echo "$out" | tail -5
	fail=1
fi
set +e
"$mscope" analyze "$d" -q --from 2019-12-31T10:00:00Z --to 2019-12-31T11:00:00Z >/dev/null 2>"$work/err"
rc=$?
set -e
if [ $rc -ne 1 ] || ! grep -q "before the run started" "$work/err"; then
	echo "FAIL a window before the run: exit $rc, $(cat "$work/err")"
	fail=1
fi
# The issue's case: a NAT stall at 100 ms sets the run's p99; a VPN slow-down
# at 300 ms had "0 victims" in --from 300ms --to 380ms. The window's own
# percentile finds them, and the VPN's processing.
jq '.name = "nat-stall-vpn-slow" | .duration_ms = 400 | .faults = [
	{"kind": "interrupt", "nf": "nat1", "at_us": 100000, "duration_us": 20000},
	{"kind": "slow", "nf": "vpn1", "factor": 0.85, "at_us": 300000, "duration_us": 40000}]' \
	"$src/tools/scenarios/nat-interrupt-vpn.json" > "$work/story.json"
"$mscope" sim "$work/story.json" -o "$work/story" --no-victims -q
"$mscope" analyze "$work/story" -q --json "$work/story-run.json" 2>/dev/null
thr=$(jq .summary.latency_threshold_us "$work/story-run.json")
"$mscope" analyze "$work/story" -q --from 300ms --to 380ms --threshold "${thr}us" \
	--json "$work/story-old.json" 2>/dev/null
"$mscope" analyze "$work/story" -q --from 300ms --to 380ms --json "$work/story-win.json" 2>/dev/null
old=$(jq .summary.victims "$work/story-old.json")
new=$(jq -r '"\(.summary.victims) \(.culprits[0].nf) \(.culprits[0].kind)"' "$work/story-win.json")
if [ "$old" -eq 0 ] && [ "${new#* }" = "vpn1 processing" ] && [ "${new%% *}" -gt 0 ]; then
	echo "ok   window 300-380ms: the run's p99 (${thr} us) gave 0 victims; the window's: $new"
else
	echo "FAIL window 300-380ms: run p99 ${thr} us gave $old victims; the window's gave $new"
	fail=1
fi

# windows that cannot be: after the run, ending before they start
for w in "--from 10s --to 11s" "--from 10s --to 11s --no-index" "--from 50ms --to 40ms"; do
	set +e
	"$mscope" analyze "$d" -q $w >/dev/null 2>"$work/err"
	rc=$?
	set -e
	if [ $rc -ne 1 ] || ! grep -Eq "after the run ended|before it starts" "$work/err"; then
		echo "FAIL window $w: exit $rc, $(cat "$work/err")"
		fail=1
	fi
done
exit $fail
