#!/usr/bin/env bash
# Live view (collector/telemetry.c): the Debian dpdk-testpmd, interactive,
# with the collector preloaded, asked on its real DPDK telemetry socket by a
# small client (tel_query.py, as dpdk-telemetry.py) and by dpdk-telemetry.py
# itself. Before forwarding the queues are listed and empty; each `start`
# replays the pcap, and the figures move with it (records, packets, bytes);
# after `quit` the last figures asked for are exactly what the trace holds.
. "$MSCOPE_SRC/tests/collector/lib.sh"
HERE=$MSCOPE_SRC/tests/telemetry
MSCOPE=$MSCOPE_BUILD/tools/mscope

PCAP=$DATA/pcapplusplus_example.pcap
[ -f "$PCAP" ] || { echo "SKIP: $PCAP missing"; exit 77; }
# its packets, counted from the pcap records
N=$(python3 -c '
import struct, sys
d = open(sys.argv[1], "rb").read()
e = "<" if d[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
n, o = 0, 24
while o + 16 <= len(d):
    o += 16 + struct.unpack(e + "I", d[o + 8:o + 12])[0]
    n += 1
print(n)' "$PCAP")
[ "$N" -gt 1000 ] || fail "pcap has only $N packets"

# testpmd's commands through a fifo, held open read-write here
mkfifo "$T/cmd"
exec 3<>"$T/cmd"
send() { echo "$1" >&3; }
TP_STDIN=$T/cmd start_testpmd MSCOPE_DIR="$T" MSCOPE_NF=tel MSCOPE_RUN_ID=run-tel \
	MSCOPE_BUFFER=65536 -- \
	--vdev="net_pcap0,rx_pcap=$PCAP" --vdev="net_pcap1,tx_pcap=$T/out.pcap" -- \
	-i --no-flush-rx --forward-mode=io
pid=$TP_PID
wait_for "testpmd>" 30

# the socket, where DPDK's EAL puts it (as dpdk-telemetry.py finds it)
if [ "$(id -u)" = 0 ]; then run=/var/run; else run=${XDG_RUNTIME_DIR:-/tmp}; fi
SOCK=$run/dpdk/$PREFIX/dpdk_telemetry.v2
for ((i = 0; i < 100; i++)); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || fail "no telemetry socket $SOCK"
q() { python3 "$HERE/tel_query.py" "$SOCK" "$1"; }
# q0: the detail of port 0 queue 0 (rx of the pcap, its tx to port 1 linked)
q0() { q /mscope/queue,0.0 || fail "/mscope/queue,0.0 failed"; }

s=$(q /mscope/info) || fail "/mscope/info failed"
echo "info:$s"
expect version "$("$MSCOPE" --version | awk '{print $2}')" "$s"
expect dir "$T" "$s"; expect nf tel "$s"; expect run_id run-tel "$s"; expect pid "$pid" "$s"
expect queues 2 "$s"; expect ring_slots 65536 "$s"; expect active 1 "$s"
[ "$(q /mscope/queues)" = "0.0 1.0" ] || fail "queues: '$(q /mscope/queues)'"
s=$(q0)
echo "before: $s"
file=tel-p0q0-$pid.mst
expect file "$file" "$s"; expect port 0 "$s"; expect queue 0 "$s"
expect records_written 0 "$s"; expect rx_packets 0 "$s"; expect records_lost 0 "$s"
expect rx_ring_slots 65536 "$s"; expect tx_ring_slots 65536 "$s"; expect rx_ring_used 0 "$s"
b0=$(get file_bytes "$s")
[ "$b0" -gt 0 ] && [ "$b0" -le "$(stat -c %s "$T/$file")" ] || fail "file_bytes $b0 (file: $(stat -c %s "$T/$file"))"
expect file tel-p1q0-$pid.mst "$(q /mscope/queue,1.0)"
# a queue that is not recorded, a malformed parameter, none: null replies
for bad in /mscope/queue,0.1 /mscope/queue,7.0 /mscope/queue,0.x /mscope/queue,0 /mscope/queue; do
	if q "$bad" 2>/dev/null; then fail "$bad answered"; fi
done

# forward the pcap once, then again (net_pcap replays it after a port
# restart): the figures follow, live
for round in 1 2; do
	if [ "$round" = 2 ]; then
		send "port stop all"
		send "port start all"
	fi
	send start
	for ((i = 0; i < 100; i++)); do
		s=$(q0)
		[ "$(get rx_packets "$s")" = $((round * N)) ] && break
		sleep 0.1
	done
	expect rx_packets $((round * N)) "$s"
	send stop
	# until the writer has written it all (it flushes every 100 ms)
	for ((i = 0; i < 50; i++)); do
		sleep 0.3
		prev=$s
		s=$(q0)
		[ "$(get records_written "$s")" = "$(get records_written "$prev")" ] &&
			[ "$(get file_bytes "$s")" = "$(get file_bytes "$prev")" ] && break
	done
	echo "after round $round: $s"
	w=$(get records_written "$s"); b=$(get file_bytes "$s")
	[ "$w" -gt "${w_prev:-0}" ] || fail "records_written $w after round $round (was ${w_prev:-0})"
	[ "$b" -gt "${b_prev:-$b0}" ] || fail "file_bytes $b after round $round (was ${b_prev:-$b0})"
	# (a clock record a second may have been flushed since)
	[ "$b" -le "$(stat -c %s "$T/$file")" ] || fail "file_bytes $b, file has $(stat -c %s "$T/$file")"
	u=$(get rx_ring_used "$s")
	[ "$u" -le 65536 ] || fail "rx_ring_used $u"
	w_prev=$w b_prev=$b
done
expect records_lost 0 "$s"; expect packets_lost 0 "$s"; expect tx_packets_lost 0 "$s"
expect write_failed 0 "$s"

# Debian's own client shows the same
if [ -x /usr/bin/dpdk-telemetry.py ]; then
	out=$(echo /mscope/queue,0.0 | python3 /usr/bin/dpdk-telemetry.py -f "$PREFIX" 2>&1) ||
		fail "dpdk-telemetry.py: $out"
	grep -q "\"records_written\": $w_prev," <<<"$out" || fail "dpdk-telemetry.py says: $out"
	grep -q "\"file\": \"$file\"" <<<"$out" || fail "dpdk-telemetry.py says: $out"
fi

send quit
exec 3>&-
timeout 15 tail --pid="$TP_PID" -f /dev/null || true # until testpmd has left
stop_testpmd INT 2>/dev/null || true
grep -q "mscope-collector" "$T/tp.log" && { grep mscope-collector "$T/tp.log"; fail "collector warned"; }

# the trace holds what the live view said
[ -f "$T/$file" ] || { ls -l "$T"; fail "$file missing"; }
st=$("$MSCOPE" dump --stats "$T/$file") || fail "cannot read $file: $st"
echo "$st"
rec=$(awk '$1 == "records" {print $3 + $5 + $7}' <<<"$st")
[ "$rec" = "$w_prev" ] || fail "trace has $rec rx+tx+drop records, the live view said $w_prev"
grep -q "^packets *rx $((2 * N)) " <<<"$st" || fail "trace rx packets differ from $((2 * N))"
grep -q "^losses *0 records, 0 packets" <<<"$st" || fail "trace has losses"
echo "PASS: live figures ($w_prev records, $((2 * N)) packets, 2 rounds) match the trace"
