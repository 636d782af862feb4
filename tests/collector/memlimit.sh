#!/usr/bin/env bash
# The largest MSCOPE_BUFFER (512 MiB a ring, zeroed at port start: four
# rings made 2.2 GB and the NF was OOM-killed in a 1.5 GiB container, #16
# defect 5) is cut down to what the process may use: one warning, the pcap
# forwarded completely, a complete trace, and the NF's peak memory within
# the limit.
#  cgroup: a real memory cgroup (v1 or v2) limited to 1.5 GiB (root only)
#  hook:   MSCOPE_TEST_MEM_AVAILABLE=1G (the documented test hook)
. "$(dirname "$0")/lib.sh"

PCAP=$DATA/pcapplusplus_example.pcap
[ -f "$PCAP" ] || { echo "SKIP: $PCAP missing"; exit 77; }
"$CHECK" pcap "$PCAP" >"$T/pcap.ids"
N=$(wc -l <"$T/pcap.ids")
LIMIT=$((1536 << 20))

# run CASE ENV...: forward the pcap with the largest buffer; sets HWM (kB)
run() {
	local name=$1
	shift
	mkdir -p "$T/$name"
	start_testpmd MSCOPE_DIR="$T/$name" MSCOPE_NF=mem MSCOPE_BUFFER=67108864 "$@" -- \
		--vdev="net_pcap0,rx_pcap=$PCAP" --vdev="net_pcap1,tx_pcap=$T/$name.pcap" -- \
		--no-flush-rx --forward-mode=io --auto-start
	wait_for "TX-packets: +$N " 60
	HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$TP_PID/status")
	stop_testpmd INT
	cp "$T/tp.log" "$T/$name.log"
	grep "^mscope-collector" "$T/$name.log"
	[ "$(grep "^mscope-collector" "$T/$name.log" | grep -vc "merged too late")" = 1 ] || fail "$name: expected one warning"
	grep -q "do not fit in the memory available" "$T/$name.log" || fail "$name: wrong warning"
	"$CHECK" pcap "$T/$name.pcap" | cmp -s - "$T/pcap.ids" || fail "$name: the NF did not forward the pcap"
	s=$("$CHECK" stats "$T/$name"/mem-p0q0-*.mst)
	expect rx "$N" "$s"; expect accepted "$N" "$s"; expect loss_records 0 "$s"
	echo "$name: peak RSS $((HWM >> 10)) MiB"
}

run hook MSCOPE_TEST_MEM_AVAILABLE=1G
grep -q "half of 1024 MiB" "$T/hook.log" || fail "hook: the test limit was not used"
[ "$HWM" -lt $((1200 << 10)) ] || fail "hook: peak RSS $((HWM >> 10)) MiB"

# a memory cgroup: this shell joins it for the start, so testpmd is born in it
CG=
if [ -w /sys/fs/cgroup/cgroup.subtree_control ] && grep -q memory /sys/fs/cgroup/cgroup.controllers; then
	CG=/sys/fs/cgroup/mscope-test-$$ && mkdir "$CG" && echo "$LIMIT" >"$CG/memory.max" && echo 0 >"$CG/memory.swap.max" || CG=
	HOME_CG=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)
else
	rel=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' /proc/self/cgroup)
	base=/sys/fs/cgroup/memory$rel
	if [ -n "$rel" ] && [ -d "$base" ]; then
		CG=$base/mscope-test-$$ && mkdir "$CG" && echo "$LIMIT" >"$CG/memory.limit_in_bytes" || CG=
		HOME_CG=$base
	fi
fi
if [ -n "$CG" ]; then
	trap 'echo $$ >"$HOME_CG/cgroup.procs" 2>/dev/null; rmdir "$CG" 2>/dev/null; cleanup' EXIT
	echo $$ >"$CG/cgroup.procs"
	run cgroup
	echo $$ >"$HOME_CG/cgroup.procs"
	grep -q "cgroup memory" "$T/cgroup.log" || fail "cgroup: the cgroup limit was not used"
	[ "$HWM" -lt $((LIMIT >> 10)) ] || fail "cgroup: peak RSS $((HWM >> 10)) MiB over the limit"
	echo "PASS: the largest buffer fits a 1.5 GiB cgroup and the test hook's 1 GiB"
else
	echo "PASS: the largest buffer fits the test hook's 1 GiB (no memory cgroup could be made)"
fi
