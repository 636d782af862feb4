#!/usr/bin/env bash
# A 3-NF chain (source -> NAT -> firewall -> VPN) with a known packet count:
# at every NF rx = tx + drops exactly (traces vs. the NFs' own counters), every
# packet followed hop by hop through the NAT's rewrite by wire ID and rx->tx
# link, the firewall's drops where its rule says, and nothing left behind.
. "$(dirname "$0")/lib.sh"

OUT=$T/run
run_chain "$HERE/chain3.json" "$OUT"
check_chain "$OUT"
C=$OUT.check.json

sent=$(json_get "$C" 'd["paths"]["sent"]')
delivered=$(json_get "$C" 'd["paths"]["delivered"]')
dropped=$(json_get "$C" 'd["paths"]["dropped"]')
[ "$sent" -eq 6000 ] || fail "source sent $sent packets in the traces, expected 6000"
[ $((delivered + dropped)) -eq 6000 ] || fail "delivered $delivered + dropped $dropped != 6000"
[ "$(json_get "$C" 'd["paths"]["nat_checked"]')" -eq 6000 ] || fail "not every packet checked through the NAT"
# the firewall drops NTP (rule 'drop proto=udp dport=123') and nothing else
fwdrop=$(json_get "$OUT/stats/fw1.json" 'd["dropped_nf"]')
ntp=$(json_get "$OUT/stats/fw1.json" '[r["hits"] for r in d["rules"] if "123" in r["rule"]][0]')
[ "$fwdrop" -eq "$ntp" ] || fail "firewall dropped $fwdrop, its NTP rule hit $ntp"
[ "$(json_get "$C" 'd["paths"]["dropped_at"].get("fw1", 0)')" -eq "$fwdrop" ] ||
	fail "drops followed to fw1 differ from its count $fwdrop"
[ "$dropped" -eq "$fwdrop" ] || fail "packets dropped elsewhere than at the firewall"
# the same counts in truth.json
[ "$(json_get "$OUT/truth.json" 'd["packets"]["sent"]')" -eq 6000 ] || fail "truth.json packets.sent"
[ "$(json_get "$OUT/truth.json" 'd["packets"]["delivered"]')" -eq "$delivered" ] || fail "truth.json packets.delivered"
# topology.json names every node's trace file
for n in nat1 fw1 vpn1; do
	f=$(json_get "$OUT/topology.json" "[x['file'] for x in d['nfs'] if x['name']=='$n'][0]")
	[ -f "$OUT/$f" ] || fail "topology.json: $n's file '$f' missing"
done
[ -f "$OUT/$(json_get "$OUT/topology.json" 'd["source"]["file"]')" ] || fail "no source trace"
assert_no_leftovers
echo "PASS: $sent sent, $delivered delivered, $dropped dropped by the firewall, all followed"
