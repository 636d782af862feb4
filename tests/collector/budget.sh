#!/usr/bin/env bash
# MSCOPE_BUDGET=1M for the whole process (two queues): while testpmd
# forwards a pcap in a loop, the trace files in the directory (sampled every
# 100 ms) never exceed the budget by more than one segment per queue; the
# oldest segments go, each named by a DELETED record that matches the file
# (a witness keeps hard links), and what is left reads as one stream.
. "$(dirname "$0")/lib.sh"

PCAP=$DATA/pcapplusplus_example.pcap
[ -f "$PCAP" ] || { echo "SKIP: $PCAP missing"; exit 77; }
BUDGET=$((1 << 20))
mkdir "$T/d"
start_testpmd MSCOPE_DIR="$T/d" MSCOPE_NF=bud MSCOPE_BUDGET=1M -- \
	--vdev="net_pcap0,rx_pcap=$PCAP,infinite_rx=1" --vdev="net_pcap1,tx_pcap=/dev/null" -- \
	--no-flush-rx --forward-mode=io --auto-start
pid=$TP_PID
witness_start "$T/d" "$T/side"
wait_for "RX-packets: +[1-9]" 30
max=0
for ((i = 0; i < 60; i++)); do
	b=$(find "$T/d" -maxdepth 1 -name '*.mst' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
	[ "$b" -gt "$max" ] && max=$b
	sleep 0.1
done
stop_testpmd INT
witness_stop
grep "^mscope-collector" "$T/tp.log" | grep -v "merged too late" && fail "collector warned"

# two streams: segments of at most a quarter of each one's share
seg=$((BUDGET / 4 / 2))
echo "max $max bytes for a budget of $BUDGET (segments $seg)"
[ "$max" -le $((BUDGET + 2 * seg)) ] || fail "$max bytes: more than one segment per queue over the budget"
stem=bud-p0q0-$pid
gone=$(check_deletions "$T/side" "$T/d" "$stem")
[ "$gone" -ge 3 ] || fail "only $gone segments deleted: the budget was never reached"
s=$("$CHECK" stream $(segs "$T/d" "$stem")) || fail "what is left is unreadable: $s"
expect seg_gaps 0 "$s"; expect seq_gaps 0 "$s"; expect bad_links 0 "$s"; expect dup_links 0 "$s"
expect bad_flows 0 "$s"; expect loss_records 0 "$s"
s=$("$CHECK" stream $(segs "$T/side" "$stem"))
expect rx "$(port_stat 0 RX-packets)" "$s"; expect gone_links 0 "$s"
echo "PASS: at most $max bytes for a 1 MiB budget, $gone segments deleted and accounted"
