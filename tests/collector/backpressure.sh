#!/usr/bin/env bash
# Back-pressure: testpmd's txonly engine sends into a net_ring port whose
# ring nobody drains. After 1023 packets the port refuses everything; the
# NF keeps offering. The trace (a source node: these packets come from no
# rx) must report offered, accepted and refused exactly as testpmd's own
# port statistics do, with nothing lost.
. "$(dirname "$0")/lib.sh"

start_testpmd MSCOPE_DIR="$T" MSCOPE_NF=bp -- --vdev=net_ring0 -- \
	--forward-mode=txonly --port-topology=loop --auto-start
pid=$TP_PID
wait_for "TX-packets: +1023 " 30
sleep 2
stop_testpmd INT
sent=$(port_stat 0 TX-packets)
dropped=$(port_stat 0 TX-dropped)
total=$(port_stat 0 TX-total)
[ "$sent" = 1023 ] || fail "testpmd sent $sent, expected 1023 (ring size)"
[ "$dropped" -gt 100000 ] || fail "only $dropped refused: no back-pressure?"

src=$T/bp-src-p0q0-$pid.mst
[ -f "$src" ] || { ls -l "$T"; fail "no source trace"; }
s=$("$CHECK" stats "$src") || fail "cannot read $src: $s"
echo "$s"
echo "testpmd: TX-packets $sent TX-dropped $dropped TX-total $total"
expect role source "$s"; expect port 0 "$s"; expect end clean "$s"
expect accepted "$sent" "$s"; expect refused "$dropped" "$s"; expect offered "$total" "$s"
expect unlinked "$sent" "$s"; expect linked 0 "$s"; expect bad_flows 0 "$s"
expect loss_records 0 "$s"; expect out_of_order 0 "$s"
[ "$(get flows "$s")" -ge 1 ] || fail "source flows not recorded"
# the rx queue of the port saw nothing
s=$("$CHECK" stats "$T/bp-p0q0-$pid.mst")
expect rx 0 "$s"; expect offered 0 "$s"
echo "PASS: offered $total = accepted $sent + refused $dropped, as testpmd reports"
