#!/usr/bin/env bash
# tools/eval-chain runs fault scenarios on real NF processes and scores them
# with mscope eval: here two of them (a stall, a slow-down), each must be
# injected, scored, and listed with its kind; an unknown scenario is refused
# by name before anything starts. Accuracy is not asserted: on a crowded CI
# box an NF can be descheduled for longer than the fault (docs/evaluation.md).
. "$(dirname "$0")/lib.sh"

EC=$MSCOPE_SRC/tools/eval-chain
rc=0; "$EC" -b "$MSCOPE_BUILD" -o "$T/ec" --only interrupt-nat1,slow-vpn1 -j 1 >"$T/ec.log" 2>&1 || rc=$?
[ $rc -eq 0 ] || { cat "$T/ec.log"; fail "eval-chain exit $rc"; }
python3 - "$T/ec/eval.json" <<'PY' || { cat "$T/ec.log"; fail "eval.json"; }
import json, sys
j = json.load(open(sys.argv[1]))
f = {x["case"]: x for x in j["faults"]}
assert set(f) == {"interrupt-nat1", "slow-vpn1"}, sorted(f)
assert f["interrupt-nat1"]["kind"] == "interrupt" and f["slow-vpn1"]["kind"] == "slow"
for x in f.values():
    assert x["injected"], x
    assert x["truth"].split()[0] in ("nat1/processing", "vpn1/processing"), x["truth"]
assert not j["case_errors"], j["case_errors"]
PY
grep -Eq '^all +2 \|' "$T/ec.log" || { cat "$T/ec.log"; fail "no 'all' row for 2 faults"; }
[ -s "$T/ec/eval.txt" ] || fail "eval.txt missing"
assert_no_leftovers

rc=0; "$EC" -b "$MSCOPE_BUILD" -o "$T/bad" --only nope >"$T/bad.log" 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q "unknown scenario nope" "$T/bad.log" || fail "unknown scenario: exit $rc: $(cat "$T/bad.log")"
echo "PASS: eval-chain ran, injected and scored a stall and a slow-down on real NFs"
