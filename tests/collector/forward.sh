#!/usr/bin/env bash
# testpmd io-forwards a real pcap from net_pcap port 0 to net_pcap port 1:
# the trace of port 0's rx queue holds exactly the pcap's packets, in order,
# with wire IDs equal to those computed independently from the pcap
# (libpcap), and exactly as many accepted tx on port 1, each linked to its
# rx packet once. Port 1 received nothing: its trace has no packets.
# usage: forward.sh [SIGNAL [MODE]]: how testpmd is stopped (INT, or TERM:
# the collector's handler must chain to testpmd's for either), and the
# forwarding mode (io, or 5tswap, which rewrites L2-L4 like a NAT: the tx
# wire IDs must then be those of the rewritten packets).
SIG=${1:-INT}
MODE=${2:-io}
. "$(dirname "$0")/lib.sh"

PCAP=$DATA/pcapplusplus_example.pcap
[ -f "$PCAP" ] || { echo "SKIP: $PCAP missing"; exit 77; }
"$CHECK" pcap "$PCAP" >"$T/pcap.ids"
N=$(wc -l <"$T/pcap.ids")
[ "$N" -gt 1000 ] || fail "pcap has only $N packets"

start_testpmd MSCOPE_DIR="$T" MSCOPE_NF=fwd MSCOPE_RUN_ID=run-42 -- \
	--vdev="net_pcap0,rx_pcap=$PCAP" --vdev="net_pcap1,tx_pcap=$T/out.pcap" -- \
	--no-flush-rx --forward-mode="$MODE" --auto-start
pid=$TP_PID
wait_for "TX-packets: +$N " 30
stop_testpmd "$SIG"
grep -q "mscope-collector" "$T/tp.log" && { grep mscope-collector "$T/tp.log"; fail "collector warned"; }
[ "$(port_stat 0 RX-packets)" = "$N" ] || fail "testpmd received $(port_stat 0 RX-packets), not $N"

rx=$T/fwd-p0q0-$pid.mst
other=$T/fwd-p1q0-$pid.mst
[ -f "$rx" ] && [ -f "$other" ] || { ls -l "$T"; fail "trace files missing"; }
[ "$(ls "$T"/*.mst | wc -l)" = 2 ] || { ls -l "$T"; fail "unexpected trace files"; }

s=$("$CHECK" stats "$rx") || fail "cannot read $rx: $s"
echo "$s"
expect role rxq "$s"; expect port 0 "$s"; expect queue 0 "$s"
expect nf fwd "$s"; expect run_id run-42 "$s"; expect writer mscope-collector "$s"
expect rx "$N" "$s"; expect offered "$N" "$s"; expect accepted "$N" "$s"
expect linked "$N" "$s"; expect unlinked 0 "$s"; expect dup_links 0 "$s"
expect bad_links 0 "$s"; expect bad_flows 0 "$s"; expect tx_port 1 "$s"
expect loss_records 0 "$s"; expect out_of_order 0 "$s"; expect end clean "$s"
[ "$(get flows "$s")" -ge 100 ] || fail "too few flows: $s"

s=$("$CHECK" stats "$other") || fail "cannot read $other"
expect rx 0 "$s"; expect offered 0 "$s"; expect end clean "$s"

"$CHECK" rx-ids "$rx" >"$T/rx.ids"
"$CHECK" tx-ids "$rx" >"$T/tx.ids"
cmp -s "$T/pcap.ids" "$T/rx.ids" || fail "rx wire IDs differ from the pcap's"
# what left port 1 is what the trace says was sent
"$CHECK" pcap "$T/out.pcap" >"$T/out.ids"
cmp -s "$T/out.ids" "$T/tx.ids" || fail "tx wire IDs differ from the packets sent"
if [ "$MODE" = io ]; then
	cmp -s "$T/pcap.ids" "$T/out.ids" || fail "io forwarding changed packets"
else
	cmp -s "$T/pcap.ids" "$T/out.ids" && fail "$MODE changed no packet: test proves nothing"
fi
echo "PASS: $N packets, rx and tx wire IDs match the pcap ($MODE, stopped by SIG$SIG)"
