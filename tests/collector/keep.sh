#!/usr/bin/env bash
# Flight recorder: two NFs record into one directory as a ring (1 s
# segments, two per queue). `mscope keep DIR --reason ...` makes both close
# their current files and hard-link their segments into kept/<time>-<reason>/:
# both answer, the kept files survive the rotation that deletes the
# originals, and read as complete streams. SIGUSR2 to one NF (which has no
# handler for it) does the same for both, and the NF lives on.
. "$(dirname "$0")/lib.sh"

PCAP=$DATA/pcapplusplus_example.pcap
MSCOPE=$MSCOPE_BUILD/tools/mscope
[ -f "$PCAP" ] || { echo "SKIP: $PCAP missing"; exit 77; }
mkdir "$T/d"
RING=(MSCOPE_DIR="$T/d" MSCOPE_SEGMENT_SECONDS=1 MSCOPE_SEGMENTS=2)
start_testpmd "${RING[@]}" MSCOPE_NF=nfa -- \
	--vdev="net_pcap0,rx_pcap=$PCAP,infinite_rx=1" --vdev="net_pcap1,tx_pcap=/dev/null" -- \
	--no-flush-rx --forward-mode=io --auto-start
pa=$TP_PID
env "${RING[@]}" MSCOPE_NF=nfb LD_PRELOAD="$PRELOAD" "$TESTPMD" --no-huge --no-pci -m 256 \
	--file-prefix="$PREFIX-b" -l 0-1 --log-level=lib.eal:error \
	--vdev="net_pcap0,rx_pcap=$PCAP,infinite_rx=1" --vdev="net_pcap1,tx_pcap=/dev/null" -- \
	--total-num-mbufs=16384 --no-flush-rx --forward-mode=io --auto-start --stats-period 1 \
	</dev/null >"$T/tpb.log" 2>&1 &
pb=$!
EXTRA_PIDS+=("$pb")
wait_for "RX-packets: +[1-9]" 30
for ((i = 0; i < 300; i++)); do grep -qE "RX-packets: +[1-9]" "$T/tpb.log" && break; sleep 0.1; done
sleep 2

"$MSCOPE" keep "$T/d" --reason "test incident" >"$T/keep.out" 2>&1 || { cat "$T/keep.out"; fail "keep failed"; }
cat "$T/keep.out"
grep -q "2 collectors answered of 2 live" "$T/keep.out" || fail "not both answered"
kd=$(ls -d "$T/d/kept/"*-test_incident) || fail "no kept folder"
ls "$kd" >"$T/kept.lst"
for stem in nfa-p0q0-$pa nfb-p0q0-$pb; do
	[ "$(grep -c "^$stem\.[0-9]*\.mst$" "$T/kept.lst")" -ge 2 ] || fail "$stem: fewer than 2 segments kept"
done
ls "$kd"/.ack-* 2>/dev/null && fail "acknowledgements left in the kept folder"

sleep 3 # rotation goes on: the originals of the kept segments are deleted
for stem in nfa-p0q0-$pa nfb-p0q0-$pb; do
	mapfile -t kept < <(segs "$kd" "$stem")
	for f in "${kept[@]}"; do
		[ -e "$T/d/${f##*/}" ] && fail "${f##*/} still in the directory: nothing rotated"
		[ "$(stat -c %h "$f")" = 1 ] || fail "$f has other links"
	done
	s=$("$CHECK" stream "${kept[@]}") || fail "kept $stem unreadable: $s"
	expect end clean "$s"; expect seg_gaps 0 "$s"; expect seq_gaps 0 "$s"
	expect bad_links 0 "$s"; expect dup_links 0 "$s"; expect bad_flows 0 "$s"
	[ "$(get rx "$s")" -gt 10000 ] || fail "kept $stem holds few packets: $s"
done

# SIGUSR2: the NF has no handler, so the collector takes it as a keep
kill -USR2 "$pb"
for ((i = 0; i < 30; i++)); do
	sd=$(ls -d "$T/d/kept/"*-signal-nfb 2>/dev/null) && [ -e "$sd/.ack-$pa" ] && [ -e "$sd/.ack-$pb" ] && break
	sleep 0.1
done
[ -n "$sd" ] || fail "no kept folder after SIGUSR2"
ls "$sd" | grep -q "^nfa-p0q0-$pa\." || fail "SIGUSR2: nfa's files not kept"
ls "$sd" | grep -q "^nfb-p0q0-$pb\." || fail "SIGUSR2: nfb's files not kept"
kill -0 "$pb" || fail "SIGUSR2 killed the NF"
stop_testpmd INT
kill -INT "$pb"; wait "$pb" 2>/dev/null || true
grep "^mscope-collector" "$T/tp.log" "$T/tpb.log" | grep -v "merged too late" && fail "collector warned"
echo "PASS: keep by command and by SIGUSR2, both NFs, kept files outlive the rotation"
