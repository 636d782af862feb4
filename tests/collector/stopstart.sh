#!/usr/bin/env bash
# Port stop/start through testpmd's interactive commands (fed through a
# fifo): start, stop, port stop all, port start all, start, stop, port start
# all (already started), quit. net_pcap replays its pcap on every start, so
# the NF forwards the pcap twice. The hooks must be re-installed after the
# restart exactly once: every packet recorded once (no double hook), none
# missing, in the same two trace files (no new nodes).
. "$(dirname "$0")/lib.sh"

PCAP=$DATA/pcapplusplus_example.pcap
[ -f "$PCAP" ] || { echo "SKIP: $PCAP missing"; exit 77; }
"$CHECK" pcap "$PCAP" >"$T/pcap.ids"
N=$(wc -l <"$T/pcap.ids")

mkfifo "$T/cmd"
TP_STDIN=$T/cmd
# testpmd opens the fifo for reading; keep a writer open meanwhile
start_testpmd MSCOPE_DIR="$T" MSCOPE_NF=ss -- \
	--vdev="net_pcap0,rx_pcap=$PCAP" --vdev="net_pcap1,tx_pcap=$T/out.pcap" -- \
	-i --no-flush-rx --forward-mode=io
pid=$TP_PID
exec 3>"$T/cmd"
send() { echo "$1" >&3; }
wait_for "testpmd>" 30
send start
sleep 2
send stop
sleep 1
send "port stop all"
sleep 1
send "port start all"
sleep 1
send start
sleep 2
send stop
sleep 1
send "port start all"
sleep 1
send quit
exec 3>&-
for ((i = 0; i < 150; i++)); do
	kill -0 "$TP_PID" 2>/dev/null || break
	sleep 0.1
done
stop_testpmd INT 2>/dev/null || true

# per forwarding session: what port 0 received (each session replays the pcap
# from its start, normally all of it)
sessions=$(awk '/Forward statistics for port 0 /{on=1; next} on && /RX-packets:/{print $2; on=0}' "$T/tp.log")
rx_total=$(awk '{s += $1} END {print s + 0}' <<<"$sessions")
tx_total=$(awk '/Forward statistics for port 1 /{on=1; next} on && /TX-packets:/{s+=$2; on=0} END{print s+0}' "$T/tp.log")
echo "testpmd: port 0 received $(echo $sessions) = $rx_total, port 1 sent $tx_total"
[ "$(wc -l <<<"$sessions")" = 2 ] || fail "expected two forwarding sessions"
[ "$rx_total" -gt "$N" ] || fail "the second session forwarded nothing"
: >"$T/twice.ids"
for c in $sessions; do head -n "$c" "$T/pcap.ids" >>"$T/twice.ids"; done

[ "$(ls "$T"/*.mst | wc -l)" = 2 ] || { ls -l "$T"; fail "restart created new trace files"; }
rx=$T/ss-p0q0-$pid.mst
s=$("$CHECK" stats "$rx") || fail "cannot read $rx: $s"
echo "$s"
expect rx "$rx_total" "$s"; expect accepted "$tx_total" "$s"; expect offered "$tx_total" "$s"
expect linked "$tx_total" "$s"; expect dup_links 0 "$s"; expect bad_links 0 "$s"
expect loss_records 0 "$s"; expect out_of_order 0 "$s"; expect end clean "$s"
"$CHECK" rx-ids "$rx" | cmp -s - "$T/twice.ids" || fail "rx wire IDs are not the pcap, once per session"
"$CHECK" tx-ids "$rx" | cmp -s - "$T/twice.ids" || fail "tx wire IDs are not the pcap, once per session"
echo "PASS: stop/start: $rx_total packets recorded once each"
