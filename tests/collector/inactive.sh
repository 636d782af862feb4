#!/usr/bin/env bash
# Outside DPDK the collector stays out of the way: a program without DPDK
# runs unchanged and silently; a program with DPDK linked statically (which
# cannot be hooked) runs unchanged and gets one line saying so.
set -euo pipefail
LIB=$MSCOPE_BUILD/collector/libmscope-collector.so
FAKE=$MSCOPE_BUILD/tests/collector/fake_static_nf
PRELOAD=$LIB
if [[ "${MSCOPE_SANITIZE:-}" == *address* ]]; then
	PRELOAD="$(gcc -print-file-name=libasan.so):$LIB"
	export ASAN_OPTIONS=detect_leaks=0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

out=$(cd "$T" && LD_PRELOAD="$PRELOAD" /bin/echo hello 2>&1)
[ "$out" = hello ] || { echo "FAIL: non-DPDK program output changed: $out"; exit 1; }
out=$(cd "$T" && LD_PRELOAD="$PRELOAD" sh -c 'kill -TERM $$; echo survived' 2>&1) && rc=0 || rc=$?
[ $rc -eq 143 ] || { echo "FAIL: SIGTERM not default in a non-DPDK program (rc $rc, $out)"; exit 1; }

out=$(cd "$T" && LD_PRELOAD="$PRELOAD" "$FAKE" 2>"$T/err")
[ "$out" = "started 0" ] || { echo "FAIL: static program output changed: $out"; exit 1; }
cat "$T/err"
[ "$(grep -c "collector inactive" "$T/err")" = 1 ] || { echo "FAIL: expected one inactive line"; exit 1; }
[ "$(wc -l <"$T/err")" = 1 ] || { echo "FAIL: more than one line"; exit 1; }
[ -z "$(ls "$T" | grep -v err)" ] || { echo "FAIL: files written"; exit 1; }
echo "PASS: inert without DPDK, one line for static DPDK"
