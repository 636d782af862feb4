#!/usr/bin/env bash
# `meson install --destdir` into a temporary root, then use what was installed
# as someone else would: build a reader program against the installed
# pkg-config file (mscope-trace.pc) and versioned libmscope-trace.so.0, run it
# on a trace written by the installed `mscope sim`, and compare its counts with
# `mscope dump`. Also: the collector and the man pages are installed, nothing
# of the benchmarks or tests is, and the pages render without warnings and
# cover every subcommand and every MSCOPE_* variable the collector reads.
# usage: install.sh DPDK (1: the collector is built)
set -euo pipefail
: "${MSCOPE_BUILD:?run through meson test}" "${MSCOPE_SRC:?}"
WITH_DPDK=${1:?usage: install.sh 0|1}
T=$(mktemp -d /tmp/mscope-test-install.XXXXXX)
trap 'rc=$?; if [ $rc -eq 0 ]; then rm -rf "$T"; else echo "(files kept in $T)"; fi' EXIT
fail() { echo "FAIL: $*"; exit 1; }
D=$T/root

meson install -C "$MSCOPE_BUILD" --no-rebuild --destdir "$D" --quiet >"$T/install.log" 2>&1 ||
	{ cat "$T/install.log"; fail "meson install"; }
(cd "$D" && find . -type f -o -type l | sed 's|^\./|/|' | sort) >"$T/files"
pc=$(grep '/pkgconfig/mscope-trace\.pc$' "$T/files") || { cat "$T/files"; fail "no mscope-trace.pc"; }
libdir=${pc%/pkgconfig/mscope-trace.pc}
prefix=${libdir%/lib*}

# what must be there, and what must not
must=("$prefix/bin/mscope" "$libdir/libmscope-trace.so" "$libdir/libmscope-trace.so.0"
      "$prefix/include/mscope/mscope_trace.h" "$prefix/share/man/man1/mscope.1"
      "$prefix/share/man/man7/mscope-collector.7")
[ "$WITH_DPDK" = 1 ] && must+=("$libdir/mscope/libmscope-collector.so")
for f in "${must[@]}"; do
	grep -qxF "$f" "$T/files" || { cat "$T/files"; fail "$f not installed"; }
done
real=$(readlink -f "$D$libdir/libmscope-trace.so.0")
[ -f "$real" ] && [[ "$real" == */libmscope-trace.so.0.* ]] || fail "libmscope-trace.so.0 -> $real"
soname=$(readelf -d "$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libmscope-trace.so.0 ] || fail "soname is '$soname'"
if grep -E 'reference|bench|test_|mc_check|mktrace|fake_static|dp_bench|trace_proto\.h|\.a$' "$T/files"; then
	fail "benchmark or test files installed (above)"
fi

# a program built against the installed library only
export PKG_CONFIG_PATH=$D$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$D PKG_CONFIG_LIBDIR=
ver=$(pkg-config --modversion mscope-trace) || fail "pkg-config cannot read mscope-trace.pc"
[ "$ver" = "$("$D$prefix/bin/mscope" --version | awk '{print $2}')" ] || fail "pc version $ver"
san=()
[[ "${MSCOPE_SANITIZE:-}" == *address* ]] && san=(-fsanitize=address,undefined)
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror "${san[@]}" -o "$T/reader" "$MSCOPE_SRC/tests/install/reader.c" \
	$(pkg-config --cflags --libs mscope-trace) || fail "reader does not build"
# (whole outputs to files: grep -q would end a pipe early, and pipefail is on)
readelf -d "$T/reader" >"$T/reader.dyn"
grep -q 'NEEDED.*\[libmscope-trace\.so\.0\]' "$T/reader.dyn" || fail "reader not linked to libmscope-trace.so.0"
export LD_LIBRARY_PATH=$D$libdir
ldd "$T/reader" >"$T/reader.ldd"
grep -q "=> $D$libdir/libmscope-trace.so.0" "$T/reader.ldd" || { cat "$T/reader.ldd"; fail "not the installed library"; }

"$D$prefix/bin/mscope" sim "$MSCOPE_SRC/tools/scenarios/fw-burst.json" -o "$T/run" -q --no-victims ||
	fail "installed mscope sim"
"$T/reader" "$T/run/fw1.mst" "$T/run/source.mst" >"$T/reader.out" || fail "reader failed"
for f in fw1 source; do
	# the same counts from the JSON lines of `mscope dump` (build tree)
	want=$("$MSCOPE_BUILD/tools/mscope" dump --json --brief "$T/run/$f.mst" | python3 -c '
import json, sys
n = {"rx": 0, "tx": 0, "flow": 0}; rx = tx = drops = 0; nf = ""; role = ""
for line in sys.stdin:
    r = json.loads(line); t = r["type"]
    if t == "header": nf = r["nf_name"]; role = 0 if r["role"] == "rxq" else 1
    n[t] = n.get(t, 0) + 1
    rx += r.get("n", 0) if t == "rx" else 0
    tx += r.get("accepted", 0) if t == "tx" else 0
    drops += r.get("n", 0) if t == "drop" else 0
r, t, f = n["rx"], n["tx"], n["flow"]
print(f"nf={nf} role={role} rx_records={r} tx_records={t} flows={f} rx={rx} tx={tx} drops={drops}")')
	got=$(sed -n "s|^$T/run/$f.mst ||p" "$T/reader.out")
	[ "$got" = "$want" ] || fail "$f: reader says '$got', dump says '$want'"
	echo "$f: $got"
done
grep -q "rx=0 " <<<"$(sed -n 1p "$T/reader.out")" && fail "fw1 has no rx packets"
head -c 400 "$T/run/fw1.mst" >"$T/cut.mst"
if "$T/reader" "$T/cut.mst" >/dev/null 2>"$T/cut.err"; then fail "a cut file reads cleanly"; fi
grep -q "cut.mst" "$T/cut.err" || fail "error does not name the file: $(cat "$T/cut.err")"

# man pages: render without a warning, cover every command and variable
for p in "$D$prefix/share/man/man1/mscope.1" "$D$prefix/share/man/man7/mscope-collector.7"; do
	w=$(LC_ALL=C groff -man -ww -z "$p" 2>&1)
	[ -z "$w" ] || fail "$p: $w"
	MANWIDTH=80 man -l "$p" >"$T/man.out" 2>"$T/man.err" || fail "man -l $p"
	grep -q "^NAME" "$T/man.out" || fail "man -l $p: no NAME"
	[ -s "$T/man.err" ] && fail "man -l $p: $(cat "$T/man.err")"
done
help=$("$MSCOPE_BUILD/tools/mscope" --help)
cmds=$(awk '/^commands:/{on=1; next} on && !NF {exit} on {print $1}' <<<"$help")
[ -n "$cmds" ] || fail "no commands in mscope --help"
for c in $cmds; do
	grep -q "^\.SS \"mscope $c " "$D$prefix/share/man/man1/mscope.1" || fail "mscope.1 lacks mscope $c"
done
# (MSCOPE_TEST_*: hooks for the tests, not for users)
vars=$(grep -ho 'getenv("MSCOPE_[A-Z_]*")' "$MSCOPE_SRC"/collector/*.c | sed 's/getenv("\(.*\)")/\1/' |
	grep -v '^MSCOPE_TEST_' | sort -u)
[ -n "$vars" ] || fail "no MSCOPE_ variables found in collector/"
for v in $vars; do
	grep -qx "\.B $v" "$D$prefix/share/man/man7/mscope-collector.7" || fail "mscope-collector.7 lacks $v"
done
echo "PASS: installed $(wc -l <"$T/files") files; reader built with pkg-config reads the traces;" \
	"man pages cover $(wc -w <<<"$cmds") commands and $(wc -w <<<"$vars") variables"
