#!/usr/bin/env bash
# The preload library exports exactly the functions it interposes
# (exports.txt) and needs no DPDK symbol at load time: it must load into any
# program and resolve DPDK with dlsym only when DPDK is there.
set -euo pipefail
LIB=$MSCOPE_BUILD/collector/libmscope-collector.so
want=$MSCOPE_SRC/tests/collector/exports.txt
got=$(nm -D --defined-only "$LIB" | awk '$2 ~ /^[TDBVWiu]$/ { print $3 }' | sort)
if ! diff -u "$want" <(echo "$got"); then
	echo "FAIL: exported symbols differ from $want"
	exit 1
fi
und=$(nm -D --undefined-only "$LIB" | awk '{ print $2 }' | grep -E '^(rte_|per_lcore_)' || true)
if [ -n "$und" ]; then
	echo "FAIL: DPDK symbols needed at load time: $und"
	exit 1
fi
echo "PASS: exports match, no DPDK link-time dependency"
