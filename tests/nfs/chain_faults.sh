#!/usr/bin/env bash
# Every fault kind of the scenario vocabulary, run for real through a DAG
# (source -> LB -> 2 firewalls -> VPN): a burst from the source, a
# flow-triggered bug, a slow-down and an interrupt. Each must be injected,
# in the truth file with its culprit and actual window, and the traces still
# follow every packet.
. "$(dirname "$0")/lib.sh"

OUT=$T/run
run_chain "$HERE/chain_faults.json" "$OUT"
check_chain "$OUT"
python3 - "$OUT" <<'PY' || fail "faults"
import json, sys
out = sys.argv[1]
t = json.load(open(out + "/truth.json"))
chk = json.load(open(out + ".check.json"))
kinds = {f["kind"]: f for f in t["faults"]}
assert set(kinds) == {"burst", "bug", "slow", "interrupt"}, kinds.keys()
for f in t["faults"]:
    assert f["injected"], "%s not injected" % f["kind"]
    # a crowded box may start a fault late, never early
    assert f["planned_start_us"] - 100 <= f["start_us"] <= f["planned_start_us"] + 30000, f
    print("%-9s %-6s planned %.0f..%.0f us, actual %.0f..%.0f us" % (f["kind"], f["culprit"]["nf"],
          f["planned_start_us"], f["planned_end_us"], f["start_us"], f["end_us"]))
b = kinds["burst"]
assert b["culprit"] == {"nf": "source", "kind": "source", "flow": {"src": "192.168.7.7",
    "dst": "172.16.0.9", "sport": 4444, "dport": 53, "proto": "udp"}}, b["culprit"]
assert b["actual"]["packets"] + b["actual"]["refused"] == 500, b["actual"]   # 0.1 Mpps x 5 ms
assert kinds["bug"]["culprit"]["flow"] == {"proto": "udp", "dport": 53}
assert kinds["bug"]["actual"]["packets"] > 0, "the bug slowed no packet"
assert kinds["slow"]["actual"]["packets"] > 0, "the slow-down slowed no packet"
assert kinds["interrupt"]["end_us"] - kinds["interrupt"]["start_us"] >= 10000
p = chk["paths"]
assert p["sent"] == p["delivered"] + p["dropped"] and p["lost"] == 0, p
assert p["sent"] == t["packets"]["sent"], (p, t["packets"])
PY
assert_no_leftovers
echo "PASS"
