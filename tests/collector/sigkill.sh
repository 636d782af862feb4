#!/usr/bin/env bash
# SIGKILL: no handler, no exit path runs. The trace must still be readable
# up to its last complete frame (frames are flushed at least every 100 ms):
# many records, consistent links, and at worst a truncation error at the end.
# usage: sigkill.sh [ring]: with 1 s segments, killed mid-segment: every
# closed segment reads cleanly, and all of them read as one stream.
RING=${1:-}
. "$(dirname "$0")/lib.sh"

PCAP=$DATA/pcapplusplus_example.pcap
[ -f "$PCAP" ] || { echo "SKIP: $PCAP missing"; exit 77; }

ENVS=()
[ -n "$RING" ] && ENVS=(MSCOPE_SEGMENT_SECONDS=1)
start_testpmd MSCOPE_DIR="$T" MSCOPE_NF=kill "${ENVS[@]}" -- \
	--vdev="net_pcap0,rx_pcap=$PCAP,infinite_rx=1" --vdev="net_pcap1,tx_pcap=/dev/null" -- \
	--no-flush-rx --forward-mode=io --auto-start
pid=$TP_PID
wait_for "RX-packets: +[1-9]" 30
sleep 2.5
kill -KILL "$TP_PID"
wait "$TP_PID" 2>/dev/null || true
TP_PID=
rm -rf "/var/run/dpdk/$PREFIX"

f=$T/kill-p0q0-$pid.mst
if [ -n "$RING" ]; then
	mapfile -t all < <(segs "$T" "kill-p0q0-$pid")
	[ "${#all[@]}" -ge 2 ] || { ls -l "$T"; fail "fewer than 2 segments"; }
	for ((i = 0; i < ${#all[@]} - 1; i++)); do
		s=$("$CHECK" stats "${all[i]}") || fail "closed segment ${all[i]} unreadable: $s"
		expect end clean "$s"
	done
	f=${all[-1]}
	"$CHECK" stream "${all[@]}" >/dev/null 2>&1 || true
	set -- "${all[@]}"
else
	set -- "$f"
fi
[ -f "$f" ] || { ls -l "$T"; fail "no trace"; }
rc=0
s=$("$CHECK" stream "$@" 2>"$T/err") || rc=$?
echo "$s"
cat "$T/err"
[ -n "$s" ] || fail "no stats line"
case "$(get end "$s")" in
clean) ;;
error) [ $rc -eq 1 ] && [ -s "$T/err" ] || fail "error without a message" ;;
*) fail "unreadable: $s" ;;
esac
[ "$(get rx "$s")" -ge 10000 ] || fail "too few rx packets survived: $s"
[ "$(get accepted "$s")" -ge 10000 ] || fail "too few tx packets survived: $s"
[ "$(get clocks "$s")" -ge 1 ] || fail "no clock record: $s"
expect bad_links 0 "$s"; expect dup_links 0 "$s"; expect bad_flows 0 "$s"
expect out_of_order 0 "$s"
[ -z "$RING" ] || { expect seg_gaps 0 "$s"; expect seq_gaps 0 "$s"; expect gone_links 0 "$s"; }
echo "PASS: killed NF left a readable trace ($(get rx "$s") rx packets)"
