#!/usr/bin/env bash
# Bounded recording: testpmd forwards a pcap in a loop for a few seconds
# with rotation on. A witness hard-links every segment as it appears, so the
# whole history can be read back. usage: rotate.sh MODE
#  time:  MSCOPE_SEGMENT_SECONDS=1: one segment a second
#  size:  MSCOPE_SEGMENT_BYTES=256k: every closed segment holds 256 KiB to
#         256 KiB + one flush of data
#  count: 1 s segments, MSCOPE_SEGMENTS=2: two files per queue are left,
#         and every file gone is named by exactly one DELETED record whose
#         counts and times are those of the file
# Always: the segments of a queue, read as one stream, are one continuous
# rx seq space with every tx linked once (links across files included),
# flows defined in each file, numbers without gaps, and exactly the packets
# testpmd counted.
MODE=${1:-time}
. "$(dirname "$0")/lib.sh"

PCAP=$DATA/pcapplusplus_example.pcap
[ -f "$PCAP" ] || { echo "SKIP: $PCAP missing"; exit 77; }
case $MODE in
time) ENVS=(MSCOPE_SEGMENT_SECONDS=1) RUN=4.5 ;;
size) ENVS=(MSCOPE_SEGMENT_BYTES=256k) RUN=3 ;;
count) ENVS=(MSCOPE_SEGMENT_SECONDS=1 MSCOPE_SEGMENTS=2) RUN=5 ;;
*) fail "unknown mode $MODE" ;;
esac
mkdir "$T/d"
start_testpmd MSCOPE_DIR="$T/d" MSCOPE_NF=rot "${ENVS[@]}" -- \
	--vdev="net_pcap0,rx_pcap=$PCAP,infinite_rx=1" --vdev="net_pcap1,tx_pcap=/dev/null" -- \
	--no-flush-rx --forward-mode=io --auto-start
pid=$TP_PID
witness_start "$T/d" "$T/side"
wait_for "RX-packets: +[1-9]" 30
sleep "$RUN"
stop_testpmd INT
sleep 0.2
witness_stop
grep "^mscope-collector" "$T/tp.log" | grep -v "merged too late" && fail "collector warned"
[ -z "$(ls "$T/d"/rot-p0q0-"$pid".mst 2>/dev/null)" ] || fail "a file without segment number"

stem=rot-p0q0-$pid
mapfile -t all < <(segs "$T/side" "$stem")
n=${#all[@]}
echo "$n segments of $stem"
for f in "${all[@]}"; do
	s=$("$CHECK" stats "$f") || fail "cannot read $f: $s"
	expect end clean "$s"; expect bad_flows 0 "$s"; expect bad_links 0 "$s"
	expect out_of_order 0 "$s"; expect loss_records 0 "$s"
	m=$(stat -c %a "$f")
	[ "$m" = 640 ] || fail "$f has mode $m, not 640"
done
s=$("$CHECK" stream "${all[@]}") || fail "cannot read the stream: $s"
echo "$s"
expect segments "$n" "$s"; expect seg_gaps 0 "$s"; expect seq_gaps 0 "$s"
expect gone_links 0 "$s"; expect dup_links 0 "$s"; expect bad_links 0 "$s"
expect unlinked 0 "$s"; expect rx_seq_start 0 "$("$CHECK" stats "${all[0]}")"
expect rx "$(port_stat 0 RX-packets)" "$s"
expect accepted "$(port_stat 1 TX-packets)" "$s"
expect linked "$(get rx "$s")" "$s"
[ "$(get rx "$s")" -gt 100000 ] || fail "too few packets"
total=$(get rx "$s")

case $MODE in
time)
	[ "$n" -ge 4 ] || fail "$n segments in ${RUN}s of 1 s segments"
	# a segment starts every second
	hz=$(get tsc_hz "$s")
	prev=
	for ((i = 0; i < n - 1; i++)); do
		t=$(get burst_first "$("$CHECK" stats "${all[i]}")")
		[ "$t" != 0 ] || continue # no traffic yet (a slow start under ASan)
		if [ -n "$prev" ]; then
			awk -v a="$prev" -v b="$t" -v hz="$hz" 'BEGIN { d = (b - a) / hz;
				exit !(d > 0.85 && d < 1.15) }' || fail "segment $i starts $(((t - prev) * 1000 / hz)) ms after the previous one"
		fi
		prev=$t
	done
	;;
size)
	[ "$n" -ge 3 ] || fail "only $n segments"
	for ((i = 0; i < n - 1; i++)); do
		b=$(stat -c %s "${all[i]}")
		[ "$b" -ge 262144 ] && [ "$b" -le $((262144 + 1048576)) ] ||
			fail "${all[i]}: $b bytes, not 256 KiB to 256 KiB + one flush"
	done
	;;
count)
	left=$(segs "$T/d" "$stem" | wc -l)
	[ "$left" -le 2 ] || fail "$left segments left, MSCOPE_SEGMENTS=2"
	gone=$(check_deletions "$T/side" "$T/d" "$stem")
	[ "$gone" -ge 2 ] && [ "$gone" -eq $((n - left)) ] || fail "$gone deleted of $n, $left left"
	# the files left read as a stream on their own, with links into deleted ones
	s=$("$CHECK" stream $(segs "$T/d" "$stem"))
	expect seg_gaps 0 "$s"; expect seq_gaps 0 "$s"; expect bad_links 0 "$s"
	expect dup_links 0 "$s"; expect bad_flows 0 "$s"
	[ "$(get deleted "$s")" -ge 1 ] || fail "no DELETED record in the files left: $s"
	;;
esac
echo "PASS: $MODE rotation, $n segments, one continuous stream of $total packets"
