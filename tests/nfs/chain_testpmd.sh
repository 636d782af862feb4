#!/usr/bin/env bash
# The collector in the traffic source and in dpdk-testpmd (unmodified, io
# forwarding) used as an NF in the chain: source -> NAT -> testpmd -> monitor.
# The traces follow every packet through testpmd like through our own NFs.
. "$(dirname "$0")/lib.sh"

TESTPMD=$(command -v dpdk-testpmd || true)
[ -n "$TESTPMD" ] || { echo "SKIP: dpdk-testpmd not installed"; exit 77; }
cat >"$T/tp.json" <<JSON
{
  "name": "chain-testpmd", "seed": 3, "duration_ms": 500,
  "nfs": [
    {"name": "nat1", "type": "nat", "rate_mpps": 0.2},
    {"name": "tp1", "type": "testpmd"},
    {"name": "mon1", "type": "monitor", "rate_mpps": 0.2}
  ],
  "links": [
    {"from": "source", "to": "nat1"},
    {"from": "nat1", "to": "tp1"},
    {"from": "tp1", "to": "mon1"}
  ],
  "traffic": {"pcap": "$MSCOPE_DATA/pcapplusplus_example.pcap", "rate_mpps": 0.01, "timing": "cbr",
              "count": 3000},
  "faults": []
}
JSON
OUT=$T/run
run_chain "$T/tp.json" "$OUT"
check_chain "$OUT"
C=$OUT.check.json
sent=$(json_get "$C" 'd["paths"]["sent"]')
[ "$sent" -eq 3000 ] || fail "source trace shows $sent packets sent, expected 3000"
[ "$(json_get "$C" 'd["paths"]["delivered"]')" -eq 3000 ] || fail "not all packets reached mon1"
ls "$OUT"/tp1-p0q0-*.mst >/dev/null || fail "no trace from testpmd"
ls "$OUT"/source-src-*.mst >/dev/null || fail "no source trace"
[ "$(json_get "$C" '[l["received"] for l in d["links"] if l["from"]=="tp1"][0]')" -eq 3000 ] ||
	fail "testpmd's tx not followed to mon1"
# the monitor counted the rewritten flows: every one from the NAT's public address
python3 - "$OUT/stats/mon1-flows.json" <<'PY' || fail "monitor flows"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["packets"] + d["non_ip_packets"] == 3000, d["packets"]
assert all(f["src"] == "192.0.2.1" for f in d["flows"]), "a flow not translated"
PY
assert_no_leftovers
echo "PASS: 3000 packets through nat1 -> testpmd -> mon1, collector in the source and testpmd"
