#!/usr/bin/env bash
# Interrupting the launcher (SIGINT mid-run, as Ctrl-C) stops every process
# and leaves nothing behind; the traces written so far stay readable. A bad
# scenario is refused naming the field, before anything starts.
. "$(dirname "$0")/lib.sh"

python3 - "$HERE/chain3.json" "$T/long.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["duration_ms"] = 60000
s["traffic"] = {"synthetic": {"flows": 16, "rate_mpps": 0.01}}
json.dump(s, open(sys.argv[2], "w"))
PY
OUT=$T/run
"$CHAIN" "$T/long.json" -o "$OUT" --build-dir "$MSCOPE_BUILD" --collector "$COLLECTOR" >"$T/chain.log" 2>&1 &
pid=$!
BG+=("$pid")
for _ in $(seq 600); do
	grep -q "traffic from t0" "$T/chain.log" && break
	kill -0 "$pid" 2>/dev/null || { cat "$T/chain.log"; fail "launcher exited early"; }
	sleep 0.1
done
sleep 1
kill -INT "$pid"
rc=0; wait "$pid" || rc=$?
[ $rc -eq 130 ] || { cat "$T/chain.log"; fail "launcher exit $rc after SIGINT, expected 130"; }
grep -q "interrupted" "$T/chain.log" || fail "no 'interrupted' message"
assert_no_leftovers
n=$(ls "$OUT"/*.mst | wc -l)
[ "$n" -ge 4 ] || fail "only $n trace files"
"$MSCOPE_BUILD/tools/mscope" dump --stats "$OUT"/*.mst >"$T/dump.txt" || { cat "$T/dump.txt"; fail "traces unreadable"; }
[ -f "$OUT/truth.json" ] || fail "no truth.json after an interrupted run"

# bad scenarios: exit 1, the field named, nothing started
echo '{"duration_ms": 10, "nfs": [{"name": "a", "type": "nat", "rate_mpps": -1}], "links": [], "traffic": {}}' >"$T/bad.json"
rc=0; "$CHAIN" "$T/bad.json" -o "$T/bad" --build-dir "$MSCOPE_BUILD" --collector "$COLLECTOR" >"$T/bad.log" 2>&1 || rc=$?
[ $rc -eq 1 ] && grep -q "nfs\[0\].rate_mpps" "$T/bad.log" || fail "bad rate: exit $rc: $(cat "$T/bad.log")"
sed 's/"to": "fw1"}/"to": "nope"}/' "$HERE/chain3.json" >"$T/bad2.json"
rc=0; "$CHAIN" "$T/bad2.json" -o "$T/bad2" --build-dir "$MSCOPE_BUILD" --collector "$COLLECTOR" >"$T/bad2.log" 2>&1 || rc=$?
[ $rc -eq 1 ] && grep -q 'links\[1\].to: no NF named "nope"' "$T/bad2.log" || fail "bad link: exit $rc: $(cat "$T/bad2.log")"
rc=0; "$CHAIN" "$HERE/chain3.json" >"$T/usage.log" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "missing -o: exit $rc"
echo "PASS"
