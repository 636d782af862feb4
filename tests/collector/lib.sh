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

cleanup() {
	local rc=$?
	if [ -n "$TP_PID" ] && kill -0 "$TP_PID" 2>/dev/null; then
		kill -KILL "$TP_PID" 2>/dev/null || true
		wait "$TP_PID" 2>/dev/null || true
	fi
	rm -rf "/var/run/dpdk/$PREFIX"
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
