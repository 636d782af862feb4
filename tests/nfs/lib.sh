# Shared helpers of the NF and chain tests (sourced, not run). The tests run
# real DPDK processes (no hugepages, memif between them) through
# tools/mscope-chain, with the collector preloaded, and check the traces with
# chain_check (the trace reader) against the NFs' own counters.
set -euo pipefail

: "${MSCOPE_BUILD:?run through meson test}"
: "${MSCOPE_SRC:?run through meson test}"
CHAIN=${MSCOPE_CHAIN:-$MSCOPE_SRC/tools/mscope-chain}
CHECK=${MSCOPE_CHAIN_CHECK:-$MSCOPE_BUILD/tests/nfs/chain_check}
export CHECK
COLLECTOR=${MSCOPE_COLLECTOR:-$MSCOPE_BUILD/collector/libmscope-collector.so}
HERE=${MSCOPE_TESTS_NFS:-$MSCOPE_SRC/tests/nfs}
NFS=$MSCOPE_BUILD/nfs
NAME=$(basename "$0" .sh)
export PYTHONPATH=$HERE${PYTHONPATH:+:$PYTHONPATH}
T=$(mktemp -d "/tmp/mscope-nfs-$NAME.XXXXXX")
RUNDIR=$( [ "$(id -u)" -eq 0 ] && echo /var/run/dpdk || echo "${XDG_RUNTIME_DIR:-/tmp}/dpdk" )
PREFIX="mscope-nfs-$NAME-$$"
BG=()

[ -f "$COLLECTOR" ] || { echo "FAIL: $COLLECTOR not built"; exit 1; }
[ -x "$NFS/mscope-nf-nat" ] || { echo "FAIL: $NFS/mscope-nf-nat not built"; exit 1; }

# Everything this test started must be gone: processes (their command lines
# name $T), DPDK runtime directories, chain temp dirs.
leftovers() {
	local left=""
	if pgrep -f -- "$T/" >/dev/null 2>&1; then
		left+=" processes: $(pgrep -f -a -- "$T/" | head -3 | tr '\n' ';')"
	fi
	# the launcher's prefixes (msc<pid>-<name>) and this test's own
	for d in "$RUNDIR"/msc[0-9]*-* "$RUNDIR/$PREFIX"*; do
		[ -e "$d" ] || continue
		if [ -n "$(find "$d" -newer "$T/.start" -maxdepth 0 2>/dev/null)" ] &&
				! pgrep -f -- "--file-prefix $(basename "$d")" >/dev/null; then
			left+=" $d"
		fi
	done
	echo "$left"
}

cleanup() {
	local rc=$?
	for p in "${BG[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$RUNDIR/$PREFIX"*
	if [ $rc -eq 0 ]; then
		rm -rf "$T"
	else
		echo "(files kept in $T)"
	fi
}
trap cleanup EXIT
touch "$T/.start"

fail() {
	echo "FAIL: $*"
	exit 1
}

# jq-less JSON field: json_get FILE PYTHON_EXPR (d is the document)
json_get() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# run_chain SCENARIO OUTDIR [launcher options...]
run_chain() {
	local sc=$1 out=$2
	shift 2
	"$CHAIN" "$sc" -o "$out" --build-dir "$MSCOPE_BUILD" --collector "$COLLECTOR" "$@" \
		>"$out.log" 2>&1 || { cat "$out.log"; for f in "$out"/logs/*.log; do
			echo "== $f"; grep -v '^EAL' "$f" | tail -20; done; fail "mscope-chain $sc"; }
	cat "$out.log"
}

# check_chain OUTDIR: chain_check must pass; its JSON in OUTDIR.check.json
check_chain() {
	"$CHECK" "$1" >"$1.check.json" || { cat "$1.check.json"; fail "chain_check $1"; }
}

# eal NAME: EAL options for a program started by a test itself
eal() {
	echo "--no-huge --no-pci -m 128 --no-telemetry --file-prefix $PREFIX-$1 --lcores 0@(0-$(($(nproc) - 1)))"
}

assert_no_leftovers() {
	local l
	l=$(leftovers)
	[ -z "$l" ] || fail "left behind:$l"
}
