# Shared helpers of the collector's end-to-end tests (sourced, not run).
# Each test runs the Debian dpdk-testpmd, untouched, with the collector
# preloaded, then reads the traces with mc_check (the trace reader).
set -euo pipefail

: "${MSCOPE_BUILD:?run through meson test}"
LIB=$MSCOPE_BUILD/collector/libmscope-collector.so
CHECK=$MSCOPE_BUILD/tests/collector/mc_check
DATA=${MSCOPE_DATA:-}
TESTPMD=${TESTPMD:-/usr/bin/dpdk-testpmd}
NAME=$(basename "$0" .sh)
T=$(mktemp -d "/tmp/mscope-collector-$NAME.XXXXXX")
PREFIX="mscope-collector-$NAME-$$"
TP_PID=

# An ASan-built preload library needs the ASan runtime first in an
# uninstrumented program; testpmd's own leaks are not ours to report.
PRELOAD=$LIB
if [[ "${MSCOPE_SANITIZE:-}" == *address* ]]; then
	PRELOAD="$(gcc -print-file-name=libasan.so):$LIB"
	export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
fi

[ -x "$TESTPMD" ] || { echo "SKIP: $TESTPMD not found"; exit 77; }
[ -f "$LIB" ] || { echo "FAIL: $LIB not built"; exit 1; }

EXTRA_PIDS=() # other processes a test started (killed at exit)
cleanup() {
	local rc=$? p
	witness_stop
	for p in "${EXTRA_PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ -n "$TP_PID" ] && kill -0 "$TP_PID" 2>/dev/null; then
		kill -KILL "$TP_PID" 2>/dev/null || true
		wait "$TP_PID" 2>/dev/null || true
	fi
	rm -rf "/var/run/dpdk/$PREFIX" "/var/run/dpdk/$PREFIX"-*
	if [ $rc -eq 0 ]; then
		rm -rf "$T"
	else
		echo "(files kept in $T)"
	fi
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	exit 1
}

# start_testpmd ENV_ASSIGNMENTS... -- EAL_ARGS... -- APP_ARGS...
# Runs testpmd in the background (stdin from $TP_STDIN, default /dev/null),
# output in $T/tp.log; sets TP_PID.
start_testpmd() {
	local envs=() eal=() app=()
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
	shift
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do eal+=("$1"); shift; done
	shift
	app=("$@")
	# stdout is a file (fully buffered): non-interactive runs print stats
	# every second, which is also what keeps testpmd from exiting at EOF
	[[ " ${app[*]} " == *" -i "* ]] || app+=(--stats-period 1)
	: >"$T/tp.log" # not the previous run's output
	env "${envs[@]}" LD_PRELOAD="$PRELOAD" "$TESTPMD" --no-huge --no-pci -m 256 \
		--file-prefix="$PREFIX" -l 0-1 --log-level=lib.eal:error "${eal[@]}" -- \
		--total-num-mbufs=16384 "${app[@]}" \
		<"${TP_STDIN:-/dev/null}" >"$T/tp.log" 2>&1 &
	TP_PID=$!
}

# wait_for PATTERN SECONDS: until testpmd's output matches (grep -E).
wait_for() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		grep -qE "$1" "$T/tp.log" && return 0
		kill -0 "$TP_PID" 2>/dev/null || { cat "$T/tp.log"; fail "testpmd exited early"; }
		sleep 0.1
	done
	tail -30 "$T/tp.log"
	fail "timeout waiting for /$1/"
}

# stop_testpmd [SIGNAL]: signal (default INT), wait up to 15 s, then KILL.
stop_testpmd() {
	local i sig=${1:-INT}
	kill -"$sig" "$TP_PID" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do
		kill -0 "$TP_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$TP_PID" 2>/dev/null; then
		kill -KILL "$TP_PID" 2>/dev/null || true
		wait "$TP_PID" 2>/dev/null || true
		TP_PID=
		fail "testpmd did not stop on SIG$sig"
	fi
	wait "$TP_PID" 2>/dev/null || true
	TP_PID=
	rm -rf "/var/run/dpdk/$PREFIX"
}

# port_stat PORT FIELD: from testpmd's final "Forward statistics for port N".
port_stat() {
	awk -v p="$1" -v f="$2:" '
		$0 ~ "Forward statistics for port " p " " { on = 1; next }
		on && /------------------/ { on = 0 }
		on { for (i = 1; i < NF; i++) if ($i == f) v = $(i + 1) }
		END { print v }' "$T/tp.log"
}

# get KEY LINE: a value from an mc_check stats line.
get() {
	sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"
}

# expect KEY VALUE LINE
expect() {
	local v
	v=$(get "$1" "$3")
	[ "$v" = "$2" ] || fail "$1 is '$v', expected '$2' in: $3"
}

# witness_start DIR SIDE: hard-link every trace file that appears in DIR into
# SIDE (every 50 ms), so that segments the collector deletes can still be
# compared with what the trace says of them. witness_stop ends it.
WITNESS_PID=
witness_start() {
	mkdir -p "$2"
	(
		while :; do
			for f in "$1"/*.mst; do
				[ -f "$f" ] && { ln "$f" "$2/" 2>/dev/null || true; }
			done
			sleep 0.05
		done
	) &
	WITNESS_PID=$!
}
witness_stop() {
	[ -n "$WITNESS_PID" ] || return 0
	kill "$WITNESS_PID" 2>/dev/null || true
	wait "$WITNESS_PID" 2>/dev/null || true
	WITNESS_PID=
}

# segs DIR STEM: the files of one node stream, in segment order (the first
# file without a number, if any, comes first).
segs() {
	ls "$1/$2".mst 2>/dev/null || true
	ls "$1/$2".[0-9]*.mst 2>/dev/null | sort
}

# check_deletions SIDE DIR STEM: the segments of STEM gone from DIR are
# exactly those the DELETED records (in all of SIDE's copies) name, each
# once, and each record's counts and times are those of the deleted file.
# Prints how many were deleted.
check_deletions() {
	local side=$1 dir=$2 stem=$3 f s n gone=0 line want
	segs "$side" "$stem" >"$T/all.lst"
	[ -s "$T/all.lst" ] || fail "no segments of $stem"
	# shellcheck disable=SC2046
	"$CHECK" deleted $(cat "$T/all.lst") | grep '^deleted ' >"$T/del.lst" || true
	while read -r f; do
		s=${f##*/}
		[ -e "$dir/$s" ] && continue
		gone=$((gone + 1))
		n=$(sed -E 's/.*\.0*([0-9]+)\.mst$/\1/' <<<"$s")
		[ "$(grep -c "^deleted segment=$n " "$T/del.lst")" = 1 ] ||
			fail "$s is gone, but $(grep -c "^deleted segment=$n " "$T/del.lst") DELETED records name it"
		line=$(grep "^deleted segment=$n " "$T/del.lst")
		want=$("$CHECK" stats "$f")
		[ "$(get records "$line")" = "$(get burst_records "$want")" ] &&
			[ "$(get packets "$line")" = "$(get burst_packets "$want")" ] &&
			[ "$(get tsc_first "$line")" = "$(get burst_first "$want")" ] &&
			[ "$(get tsc_last "$line")" = "$(get burst_last "$want")" ] ||
			fail "DELETED record of $s: $line; the file: $want"
	done <"$T/all.lst"
	[ "$(wc -l <"$T/del.lst")" = "$gone" ] || fail "$(wc -l <"$T/del.lst") DELETED records for $gone files gone"
	echo "$gone"
}

# forward_pcap NAME ENV...: testpmd io-forwards $PCAP once with ENV (the
# collector preloaded); testpmd's output in $T/NAME.log, what it sent in
# $T/NAME.pcap; fails unless every packet of the pcap ($T/pcap.ids, N of
# them, made by the caller) was forwarded unchanged.
forward_pcap() {
	local name=$1
	shift
	start_testpmd "$@" -- \
		--vdev="net_pcap0,rx_pcap=$PCAP" --vdev="net_pcap1,tx_pcap=$T/$name.pcap" -- \
		--no-flush-rx --forward-mode=io --auto-start
	wait_for "TX-packets: +$N " 30
	stop_testpmd INT
	cp "$T/tp.log" "$T/$name.log"
	"$CHECK" pcap "$T/$name.pcap" | cmp -s - "$T/pcap.ids" || fail "$name: the NF did not forward the pcap"
}
