#!/usr/bin/env bash
# Packet identity across NFs: two testpmd processes, both preloaded, joined
# by a memif link. "up" forwards a real pcap from net_pcap into memif,
# "down" forwards from memif into a tx pcap. The wire IDs "up" recorded for
# the packets the memif port accepted must be, in order, the wire IDs "down"
# recorded when it received them, and those of the packets "down" sent.
# Time: every packet reaches "down" after "up" sent it (one host, one TSC),
# unless the collector reported a stalled producer; both processes carry
# the same TSC rate and clock anchors within 100 us.
. "$(dirname "$0")/lib.sh"

PCAP=$DATA/pcapplusplus_example.pcap
[ -f "$PCAP" ] || { echo "SKIP: $PCAP missing"; exit 77; }
N=$("$CHECK" pcap "$PCAP" | wc -l)
DOWN_PID=
cleanup_down() {
	if [ -n "$DOWN_PID" ] && kill -0 "$DOWN_PID" 2>/dev/null; then
		kill -KILL "$DOWN_PID" 2>/dev/null || true
		wait "$DOWN_PID" 2>/dev/null || true
	fi
	rm -rf "/var/run/dpdk/$PREFIX-down"
}
trap 'rc=$?; cleanup_down; (exit $rc); cleanup' EXIT

mkfifo "$T/cmd"
TP_STDIN=$T/cmd
start_testpmd MSCOPE_DIR="$T" MSCOPE_NF=up MSCOPE_RUN_ID=x1 -- \
	--vdev="net_pcap0,rx_pcap=$PCAP" --vdev="net_memif0,role=server,socket=$T/memif.sock" -- \
	-i --no-flush-rx --forward-mode=io
up=$TP_PID
exec 3>"$T/cmd"
wait_for "testpmd>" 30
env MSCOPE_DIR="$T" MSCOPE_NF=down MSCOPE_RUN_ID=x1 LD_PRELOAD="$PRELOAD" "$TESTPMD" \
	--no-huge --no-pci -m 256 --file-prefix="$PREFIX-down" -l 0-1 --log-level=lib.eal:error \
	--vdev="net_memif0,role=client,socket=$T/memif.sock" \
	--vdev="net_pcap1,tx_pcap=$T/out.pcap" -- --total-num-mbufs=16384 --no-flush-rx \
	--forward-mode=io --auto-start --stats-period 1 </dev/null >"$T/down.log" 2>&1 &
DOWN_PID=$!
down=$DOWN_PID
# give the client time to connect (its output is buffered: nothing to wait for)
for ((i = 0; i < 50; i++)); do
	kill -0 "$DOWN_PID" || { cat "$T/down.log"; fail "down exited"; }
	sleep 0.1
done
echo start >&3
sleep 3
echo stop >&3
sleep 1
echo quit >&3
exec 3>&-
stop_testpmd INT 2>/dev/null || true
kill -INT "$DOWN_PID"
wait "$DOWN_PID" 2>/dev/null || true
DOWN_PID=

u=$T/up-p0q0-$up.mst
d=$T/down-p0q0-$down.mst
su=$("$CHECK" stats "$u") || fail "cannot read $u"
sd=$("$CHECK" stats "$d") || fail "cannot read $d"
echo "$su"
echo "$sd"
expect rx "$N" "$su"; expect offered "$N" "$su"; expect tx_port 1 "$su"; expect end clean "$su"
acc=$(get accepted "$su")
[ "$acc" -gt 0 ] || fail "memif accepted nothing: link never came up?"
expect rx "$acc" "$sd"; expect accepted "$acc" "$sd"; expect linked "$acc" "$sd"
expect run_id x1 "$sd"; expect end clean "$sd"
"$CHECK" tx-ids "$u" >"$T/up.tx"
"$CHECK" rx-ids "$d" >"$T/down.rx"
"$CHECK" tx-ids "$d" >"$T/down.tx"
"$CHECK" pcap "$T/out.pcap" >"$T/out.ids"
cmp -s "$T/up.tx" "$T/down.rx" || fail "upstream tx IDs differ from downstream rx IDs"
cmp -s "$T/down.rx" "$T/down.tx" || fail "downstream tx IDs differ from its rx IDs"
cmp -s "$T/down.tx" "$T/out.ids" || fail "downstream tx IDs differ from the packets sent"
c=$("$CHECK" causal "$u" "$d") || fail "causal: cannot read the traces"
echo "$c"
expect mismatched 0 "$c"
# (no such line is the usual case: grep's status 1 must not end the script)
late=$({ grep -ho "mscope-collector: [0-9]* of [0-9]* records were merged too late" "$T/down.log" "$T/tp.log" 2>/dev/null || true; } |
	awk '{ s += $2 } END { print s + 0 }')
[ "$(get inverted "$c")" -le "$late" ] ||
	fail "$(get inverted "$c") packets received by down before up sent them ($late records reported late)"
a=$("$CHECK" anchors "$u" "$d")
echo "$a"
expect same_hz 1 "$a"
awk -v s="$(get spread_us "$a")" 'BEGIN { exit !(s < 100) }' || fail "clock anchors $(get spread_us "$a") us apart"
echo "PASS: $acc packets carry the same wire IDs from up's tx to down's rx and tx"
