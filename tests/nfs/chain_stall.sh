#!/usr/bin/env bash
# A stall injected into the middle NF of a 3-NF chain shows in its trace as an
# input queue of rate x stall: computed from the upstream NAT's tx times against
# the firewall's rx times. The queue peaks in the firewall's dequeue gap that
# contains the stall (the truth file's actual window); on a loaded 2-CPU box
# the NF may also be descheduled around it, so the bounds are: at least 0.8 x
# rate x stall, at most 1.2 x rate x that gap.
. "$(dirname "$0")/lib.sh"

OUT=$T/run
python3 - "$HERE/chain3.json" "$T/stall.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["name"] = "chain3-stall"
s["traffic"] = {"synthetic": {"flows": 64, "rate_mpps": 0.02, "arrival": "cbr"}}
s["duration_ms"] = 500
for n in s["nfs"]:
    n["queue"] = 4096
s["faults"] = [{"kind": "interrupt", "nf": "fw1", "at_us": 200000, "duration_us": 50000}]
json.dump(s, open(sys.argv[2], "w"))
PY
run_chain "$T/stall.json" "$OUT"
check_chain "$OUT"
python3 - "$OUT" <<'PY' || fail "queue build-up"
import json, sys
out = sys.argv[1]
truth = json.load(open(out + "/truth.json"))
chk = json.load(open(out + ".check.json"))
f = truth["faults"][0]
assert f["injected"], "stall not injected: %s" % f
dur = f["end_us"] - f["start_us"]
rate = 0.02e6 / 1e6                        # packets per us
q = chk["nfs"]["fw1"]["nat1"]
gap = q["idle_to_us"] - q["idle_from_us"]
print("stall %.0f..%.0f us (%.0f us); fw1 dequeued nothing %.0f..%.0f us; input queue max %d"
      " at %.0f us; rate x stall = %.0f" % (f["start_us"], f["end_us"], dur, q["idle_from_us"],
      q["idle_to_us"], q["max"], q["max_at_us"], rate * dur))
assert 50000 <= dur <= 60000, "the stall lasted %.0f us, asked 50000" % dur
assert abs(f["start_us"] - 200000) < 20000, "the stall started at %.0f us, asked 200000" % f["start_us"]
assert q["idle_from_us"] <= f["start_us"] + 500 and q["idle_to_us"] >= f["end_us"] - 500, \
    "the queue did not peak in the dequeue gap of the stall"
assert gap <= dur + 40000, "fw1 was idle %.0f us around a %.0f us stall" % (gap, dur)
assert q["max"] >= 0.8 * rate * dur, "queue %d < 0.8 x rate x stall" % q["max"]
assert q["max"] <= 1.2 * rate * gap + 10, "queue %d > 1.2 x rate x idle gap" % q["max"]
PY
assert_no_leftovers
echo "PASS"
