#!/usr/bin/env bash
# Two rx and two tx queues per port: net_pcap port 0 reads a different real
# pcap on each rx queue, testpmd io-forwards both to port 1's two tx queues.
# Each rx queue gets its own trace with exactly its pcap's packets, in
# order, and every packet's accepted tx is in that same file, linked once.
. "$(dirname "$0")/lib.sh"

A=$DATA/pcapplusplus_example.pcap
B=$DATA/ndpi_gnutella.pcap
[ -f "$A" ] && [ -f "$B" ] || { echo "SKIP: pcaps missing"; exit 77; }
"$CHECK" pcap "$A" >"$T/a.ids"
"$CHECK" pcap "$B" >"$T/b.ids"
NA=$(wc -l <"$T/a.ids")
NB=$(wc -l <"$T/b.ids")

start_testpmd MSCOPE_DIR="$T" MSCOPE_NF=mq -- \
	--vdev="net_pcap0,rx_pcap=$A,rx_pcap=$B" \
	--vdev="net_pcap1,tx_pcap=$T/out0.pcap,tx_pcap=$T/out1.pcap" -- \
	--no-flush-rx --forward-mode=io --auto-start --rxq=2 --txq=2 --nb-cores=1
pid=$TP_PID
wait_for "TX-packets: +$((NA + NB)) " 30
stop_testpmd INT

check_queue() { # QUEUE IDS N
	local f=$T/mq-p0q$1-$pid.mst s
	s=$("$CHECK" stats "$f") || fail "cannot read $f"
	echo "$s"
	expect queue "$1" "$s"; expect rx "$3" "$s"; expect accepted "$3" "$s"
	expect linked "$3" "$s"; expect dup_links 0 "$s"; expect bad_links 0 "$s"
	expect bad_flows 0 "$s"; expect loss_records 0 "$s"; expect out_of_order 0 "$s"
	expect end clean "$s"
	"$CHECK" rx-ids "$f" | cmp -s - "$2" || fail "queue $1: rx wire IDs differ from its pcap"
	# a queue's packets leave in order, whichever tx queue they take
	"$CHECK" tx-ids "$f" | cmp -s - "$2" || fail "queue $1: tx wire IDs differ from its pcap"
}
check_queue 0 "$T/a.ids" "$NA"
check_queue 1 "$T/b.ids" "$NB"
n=$(ls "$T"/*.mst | wc -l)
[ "$n" = 4 ] || { ls -l "$T"; fail "expected 4 trace files (2 ports x 2 rx queues), found $n"; }
echo "PASS: two rx queues, $NA + $NB packets, each in its own trace"
