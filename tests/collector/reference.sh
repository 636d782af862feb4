#!/usr/bin/env bash
# The reference recorder of tools/bench-collector (libmscope-reference.so)
# records what the collector records, less the packets' identity: testpmd
# io-forwards a real pcap, and the traces hold every rx and every accepted
# tx packet, nothing lost, the files complete. Without this its throughput
# would bound nothing.
. "$(dirname "$0")/lib.sh"
LIB=$MSCOPE_BUILD/collector/libmscope-reference.so
PRELOAD=${PRELOAD/libmscope-collector.so/libmscope-reference.so}
[ -f "$LIB" ] || fail "$LIB not built"

PCAP=$DATA/pcapplusplus_example.pcap
[ -f "$PCAP" ] || { echo "SKIP: $PCAP missing"; exit 77; }
N=$("$CHECK" pcap "$PCAP" | wc -l)

start_testpmd MSCOPE_DIR="$T" MSCOPE_NF=ref -- \
	--vdev="net_pcap0,rx_pcap=$PCAP" --vdev="net_pcap1,tx_pcap=$T/out.pcap" -- \
	--no-flush-rx --forward-mode=io --auto-start
pid=$TP_PID
wait_for "TX-packets: +$N " 30
stop_testpmd INT
grep -q "mscope-collector" "$T/tp.log" && { grep mscope-collector "$T/tp.log"; fail "it warned"; }

s=$("$CHECK" stats "$T/ref-p0q0-$pid.mst") || fail "cannot read the rx trace: $s"
echo "$s"
expect rx "$N" "$s"; expect offered "$N" "$s"; expect accepted "$N" "$s"
expect linked "$N" "$s"; expect flows 1 "$s"; expect bad_flows 0 "$s"
expect loss_records 0 "$s"; expect out_of_order 0 "$s"; expect end clean "$s"
# the slots hold the packets' lengths, not wire IDs
"$CHECK" rx-ids "$T/ref-p0q0-$pid.mst" | sort -u >"$T/ids"
[ "$(wc -l <"$T/ids")" -lt 2000 ] || fail "rx slots are not lengths: $(head -3 "$T/ids")"
echo "PASS: $N packets recorded by the reference recorder, none lost"
