#!/usr/bin/env bash
# A long scenario on real processes: tools/scenarios/long3-chain.json (3 s,
# 4 faults of every kind, one after the other) through the launcher: every
# fault injected at its planned time, the scenario's "recording" handed to
# every collector as MSCOPE_SEGMENT_SECONDS / MSCOPE_SEGMENTS, every trace
# readable, and the launcher's memory flat (no per-packet state in Python).
. "$(dirname "$0")/lib.sh"

OUT=$T/run
"$CHAIN" "$MSCOPE_SRC/tools/scenarios/long3-chain.json" -o "$OUT" \
	--build-dir "$MSCOPE_BUILD" --collector "$COLLECTOR" >"$OUT.log" 2>&1 &
pid=$!
BG+=("$pid")
rss=0
while kill -0 "$pid" 2>/dev/null; do
	# the launcher's own peak (its NFs are other processes)
	r=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
	[ -n "$r" ] && rss=$r
	sleep 0.2
done
rc=0; wait "$pid" || rc=$?
cat "$OUT.log"
[ $rc -eq 0 ] || fail "mscope-chain long3-chain: exit $rc"
python3 - "$OUT/truth.json" <<'PY' || fail "truth.json"
import json, sys
t = json.load(open(sys.argv[1]))
kinds = sorted(f["kind"] for f in t["faults"])
assert kinds == ["bug", "burst", "interrupt", "slow"], kinds
for f in t["faults"]:
    assert f["injected"], f
    # started within 20 ms of the plan (the box is shared)
    assert abs(f["start_us"] - f["planned_start_us"]) < 20000, f
assert t["packets"]["sent"] > 30000, t["packets"]
print("faults", [(f["kind"], f["start_us"]) for f in t["faults"]], "packets", t["packets"])
PY
for n in nat1 fw1 vpn1 source; do
	grep -q "^# environment: MSCOPE_SEGMENTS=8 MSCOPE_SEGMENT_SECONDS=1" "$OUT/logs/$n.log" ||
		fail "$n: the scenario's recording was not passed (log: $(head -3 "$OUT/logs/$n.log"))"
done
ls "$OUT"/*.mst >/dev/null || fail "no traces"
"$MSCOPE_BUILD/tools/mscope" dump --stats "$OUT"/*.mst >"$T/dump.txt" || { cat "$T/dump.txt"; fail "traces unreadable"; }
[ "$rss" -gt 0 ] && [ "$rss" -lt 100000 ] || fail "the launcher's peak RSS is $rss KB"
assert_no_leftovers
echo "PASS (launcher peak RSS $rss KB)"
