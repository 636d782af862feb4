#!/usr/bin/env bash
# A full disk (a 1 MiB tmpfs) never loses data silently (#16 defects 6, 7):
#  midrun: the disk fills while testpmd forwards a pcap in a loop: one line
#    when writing fails, one at exit with the counts, a <trace>.lost sidecar
#    (JSON) with them, the trace readable up to its last frame; and what the
#    trace holds plus what it and the sidecar count as lost is exactly what
#    testpmd forwarded.
#  back: space comes back (a filler file is removed): the collector writes
#    again into the next segment, starting with a LOSS record of what it
#    could not write meanwhile; same exact accounting over the stream.
#  start: the disk is full before the NF starts: no empty trace is left, one
#    warning, and the NF forwards everything.
. "$(dirname "$0")/lib.sh"

PCAP=$DATA/pcapplusplus_example.pcap
[ -f "$PCAP" ] || { echo "SKIP: $PCAP missing"; exit 77; }
mkdir "$T/mnt"
mount -t tmpfs -o size=1m mscope-test "$T/mnt" 2>/dev/null || { echo "SKIP: cannot mount a tmpfs"; exit 77; }
trap 'umount -l "$T/mnt" 2>/dev/null; cleanup' EXIT

# account STEM: trace + lost counts == what testpmd forwarded
account() {
	local s lost=0 f
	s=$("$CHECK" stream $(segs "$T/mnt" "$1")) || fail "$1: unreadable: $s"
	echo "$s"
	expect seg_gaps 0 "$s"; expect bad_links 0 "$s"
	# rx seqs skipped between files are rx packets a LOSS record counts
	[ "$(get seq_gap_packets "$s")" -le "$(get loss_packets "$s")" ] || fail "$1: seq gap not in a LOSS record"
	expect dup_links 0 "$s"; expect bad_flows 0 "$s"
	for f in "$T/mnt/$1"*.lost; do
		[ -f "$f" ] || continue
		cat "$f"
		lost=$((lost + $(sed -E 's/.*"packets": ([0-9]+).*/\1/' "$f")))
	done
	want=$(($(port_stat 0 RX-packets) + $(port_stat 1 TX-packets)))
	got=$(($(get rx "$s") + $(get accepted "$s") + $(get loss_packets "$s") + lost))
	[ "$got" = "$want" ] || fail "$1: trace + lost = $got packets, testpmd forwarded $want"
	LOST=$lost
	STREAM=$s
}

run_loop() {
	start_testpmd MSCOPE_DIR="$T/mnt" MSCOPE_NF="$1" -- \
		--vdev="net_pcap0,rx_pcap=$PCAP,infinite_rx=1" --vdev="net_pcap1,tx_pcap=/dev/null" -- \
		--no-flush-rx --forward-mode=io --auto-start
	wait_for "RX-packets: +[1-9]" 30
}

# midrun
run_loop mid
pid=$TP_PID
wait_for "mscope-collector: .*No space left on device" 20
sleep 1
stop_testpmd INT
grep "^mscope-collector" "$T/tp.log"
[ "$(grep -c "^mscope-collector" "$T/tp.log")" -le 3 ] || fail "too many lines"
grep -q "^mscope-collector: .*mid-p0q0-$pid[.0-9]*mst: [0-9]* records ([0-9]* packets) could not be written" "$T/tp.log" ||
	fail "no exit line with the counts"
ls "$T/mnt/mid-p0q0-$pid"*.lost || fail "no sidecar"
account "mid-p0q0-$pid"
[ "$LOST" -gt 0 ] || fail "nothing counted as lost"
rm -f "$T/mnt"/*

# back
head -c 600k /dev/zero >"$T/mnt/filler"
run_loop back
pid=$TP_PID
wait_for "mscope-collector: .*No space left on device" 20
rm "$T/mnt/filler"
wait_for "mscope-collector: .*back-p0q0-$pid.000001.mst: writing again" 10
stop_testpmd INT
account "back-p0q0-$pid"
[ "$(get loss_records "$STREAM")" -gt 0 ] || fail "no LOSS record after writing resumed"
rm -f "$T/mnt"/*

# start
dd if=/dev/zero of="$T/mnt/filler" bs=4k 2>/dev/null || true
"$CHECK" pcap "$PCAP" >"$T/pcap.ids"
N=$(wc -l <"$T/pcap.ids")
start_testpmd MSCOPE_DIR="$T/mnt" MSCOPE_NF=full -- \
	--vdev="net_pcap0,rx_pcap=$PCAP" --vdev="net_pcap1,tx_pcap=$T/out.pcap" -- \
	--no-flush-rx --forward-mode=io --auto-start
wait_for "TX-packets: +$N " 30
stop_testpmd INT
"$CHECK" pcap "$T/out.pcap" | cmp -s - "$T/pcap.ids" || fail "start: the NF did not forward the pcap"
[ "$(grep -c "^mscope-collector" "$T/tp.log")" = 1 ] || { grep mscope "$T/tp.log"; fail "start: expected one warning"; }
ls "$T/mnt" | grep -v '^filler$' && fail "start: files left on the full disk"
echo "PASS: full disks: every packet written or counted, nothing empty left"
