#!/usr/bin/env bash
# Drops decided by the NF: testpmd in rxonly mode frees every packet it
# receives. The trace of the rx queue must hold the pcap's N packets and N
# drop records of reason "nf", one per rx seq (none twice, none sent), with
# the packets' wire IDs where the collector still knew them. The freed
# mbufs are noticed when they are received again, and those still in the
# pool's lcore cache when the port stops (testpmd's quit).
. "$(dirname "$0")/lib.sh"

PCAP=$DATA/pcapplusplus_example.pcap
[ -f "$PCAP" ] || { echo "SKIP: $PCAP missing"; exit 77; }
N=$("$CHECK" pcap "$PCAP" | wc -l)
[ "$N" -gt 1000 ] || fail "pcap has only $N packets"

mkfifo "$T/cmd"
TP_STDIN=$T/cmd
start_testpmd MSCOPE_DIR="$T" MSCOPE_NF=sink -- \
	--vdev="net_pcap0,rx_pcap=$PCAP" --vdev="net_pcap1,tx_pcap=$T/out.pcap" -- \
	-i --no-flush-rx --forward-mode=rxonly
pid=$TP_PID
exec 3>"$T/cmd"
wait_for "testpmd>" 30
echo start >&3
sleep 2
# quit stops the ports: the last freed mbufs (in the pool's cache) are found then
echo stop >&3
sleep 1
echo quit >&3
exec 3>&-
stop_testpmd INT 2>/dev/null || true
grep -q "mscope-collector" "$T/tp.log" && { grep mscope-collector "$T/tp.log"; fail "collector warned"; }
[ "$(port_stat 0 RX-packets)" = "$N" ] || fail "testpmd received $(port_stat 0 RX-packets), not $N"

rx=$T/sink-p0q0-$pid.mst
s=$("$CHECK" stats "$rx") || fail "cannot read $rx: $s"
echo "$s"
expect rx "$N" "$s"; expect offered 0 "$s"; expect loss_records 0 "$s"
expect drops "$N" "$s"; expect drops_nf "$N" "$s"; expect drops_seq "$N" "$s"
expect drop_dups 0 "$s"; expect drop_bad 0 "$s"; expect drop_wire_bad 0 "$s"
expect out_of_order 0 "$s"; expect end clean "$s"
echo "PASS: $N packets received and $N recorded as dropped by the NF, each rx seq once"
