#!/usr/bin/env bash
# End to end: the generator writes scenarios the simulator accepts, and
# `mscope eval` scores the hand-written cases.
set -euo pipefail
MSCOPE=${1:?usage: test_e2e.sh MSCOPE}
SRC=${MSCOPE_SRC:?}
if ! "$MSCOPE" sim --help >/dev/null 2>&1 || ! "$MSCOPE" analyze --help >/dev/null 2>&1; then
  echo "FAIL: $MSCOPE has no working sim / analyze"
  exit 1
fi
T=$(mktemp -d /tmp/mscope-test-eval-XXXXXX)
trap 'rm -rf "$T"' EXIT

# 1. generator: deterministic, >= 100 scenarios, valid JSON; the simulator
#    accepts a sample of every kind and topology (simulating all takes minutes).
python3 "$SRC/tools/gen-scenarios" -n 100 -s 7 -o "$T/a" --quick >/dev/null 2>&1
python3 "$SRC/tools/gen-scenarios" -n 100 -s 7 -o "$T/b" --quick >/dev/null 2>&1
# provisioned from a calibration run: still deterministic
python3 "$SRC/tools/gen-scenarios" -n 10 -s 7 -o "$T/c" --quick --mscope "$MSCOPE" >/dev/null
python3 "$SRC/tools/gen-scenarios" -n 10 -s 7 -o "$T/d" --quick --mscope "$MSCOPE" >/dev/null
diff -r "$T/c" "$T/d" >/dev/null || { echo "calibrated generator is not deterministic"; exit 1; }
diff -r "$T/a" "$T/b" >/dev/null || { echo "generator is not deterministic"; exit 1; }
[ "$(ls "$T/a" | wc -l)" -eq 100 ] || { echo "expected 100 scenarios"; exit 1; }
for k in burst interrupt bug slow overlap; do
  for t in chain3 chain5 graph16; do
    f=$(ls "$T/a" | grep -- "-$k-$t-" | head -1 || true)
    [ -n "$f" ] || continue
    "$MSCOPE" sim "$T/a/$f" -o "$T/sim-$k-$t" >"$T/sim.log" 2>&1 ||
      { echo "simulator rejected $f:"; cat "$T/sim.log"; exit 1; }
    [ -s "$T/sim-$k-$t/truth.json" ] || { echo "$f: no truth.json"; exit 1; }
    rm -rf "$T/sim-$k-$t"
  done
done

# 2. eval on the hand-written cases: runs, writes JSON, every fault scored.
"$MSCOPE" eval -q --json "$T/eval.json" "$SRC/tools/eval/cases" >"$T/eval.txt" 2>&1 || {
  cat "$T/eval.txt"; exit 1; }
cat "$T/eval.txt"
python3 - "$T/eval.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["case_errors"] == 0, d
faults = [f for f in d["faults"] if "methods" in f]
assert len(faults) == 5, len(faults)
for f in faults:
    for m in ("ours", "rates", "paper", "local", "nm-1ms", "nm-10ms"):
        assert m in f["methods"], (f["case"], m)
        assert "error" not in f["methods"][m], (f["case"], m, f["methods"][m])
    assert f["victims"] > 0, f["case"]
g = {x["group"]: x for x in d["groups"]}
assert g["all"]["faults"] == 5
# the NAT stall seen at the shared VPN: the one case every method must get
nat = [f for f in faults if f["case"] == "nat-interrupt-shared-vpn"][0]
for m in ("ours", "rates", "paper", "local"):
    assert nat["methods"][m]["rank"] == 1, (m, nat["methods"][m])
assert nat["methods"]["ours"]["victims_correct"] > 0.8 * nat["victims"], nat["methods"]["ours"]
PY

# 3. --explain prints the truth and the culprits of one case
"$MSCOPE" eval --explain nat-interrupt-shared-vpn "$SRC/tools/eval/cases" >"$T/explain.txt" 2>&1
grep -q "truth nat1/processing" "$T/explain.txt" || { cat "$T/explain.txt"; exit 1; }
grep -q "ours: culprits" "$T/explain.txt" || { cat "$T/explain.txt"; exit 1; }
rm -rf "$(sed -n 's/^(kept in \(.*\))$/\1/p' "$T/explain.txt")"

# 4. a recorded run (traces + truth.json, as the chain launcher leaves) is analysed as is
"$MSCOPE" sim -q "$SRC/tools/eval/cases/nat-interrupt-shared-vpn.json" -o "$T/rec"
rm -f "$T/rec/victims.jsonl"
"$MSCOPE" eval -q --json "$T/rec.json" "$T/rec" >"$T/rec.txt" 2>&1 || { cat "$T/rec.txt"; exit 1; }
python3 - "$T/rec.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
f = [x for x in d["faults"] if "methods" in x]
assert len(f) == 1 and f[0]["labelled"] and f[0]["victims"] == 0, f
assert f[0]["methods"]["ours"]["rank"] == 1, f[0]["methods"]["ours"]
assert "victims" not in f[0]["methods"]["ours"]
PY
[ "$(ls "$T/rec")" = "$(printf '%s\n' nat1.mst nat2.mst source.mst topology.json truth.json vpn1.mst)" ] ||
  { echo "eval wrote into the recorded run"; ls "$T/rec"; exit 1; }

# 5. bad input
if "$MSCOPE" eval "$T/nonexistent.json" 2>"$T/err.txt"; then echo "accepted a missing file"; exit 1; fi
grep -q nonexistent "$T/err.txt"
echo '{"seed": 1}' >"$T/bad.json"
rc=0; "$MSCOPE" eval -q "$T/bad.json" >"$T/out.txt" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || { echo "bad scenario: exit $rc"; cat "$T/out.txt"; exit 1; }
echo ok
