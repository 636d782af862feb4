#!/usr/bin/env bash
# What is in MSCOPE_DIR or the environment cannot hurt the NF (#16 defects 4,
# 12): the pcap is forwarded completely every time.
#  fifo:    a FIFO named .mscope-tsc-hz (opened without O_NONBLOCK it hung
#           the NF): ignored, left as it is, the trace written
#  escape:  control characters in MSCOPE_NF and MSCOPE_DIR are printed
#           escaped (\x1b), never raw
#  mode:    trace files are 0640; MSCOPE_FILE_MODE=0600 is honoured, 0660
#           exactly even under umask 077, 0666 refused with one warning
#  clobber: a file and a symlink where the collector's trace files go are
#           neither overwritten nor followed (collector disabled, one line)
. "$(dirname "$0")/lib.sh"

PCAP=$DATA/pcapplusplus_example.pcap
[ -f "$PCAP" ] || { echo "SKIP: $PCAP missing"; exit 77; }
"$CHECK" pcap "$PCAP" >"$T/pcap.ids"
N=$(wc -l <"$T/pcap.ids")
APP=(--no-flush-rx --forward-mode=io --auto-start)

run() {
	mkdir -p "$T/$1"
	forward_pcap "$@"
}
warnings() { grep -c "^mscope-collector:" "$T/$1.log" || true; }
rx_of() { get rx "$("$CHECK" stats "$T/$1"/*-p0q0-*.mst)"; }

# fifo
mkdir -p "$T/fifo"
mkfifo "$T/fifo/.mscope-tsc-hz"
run fifo MSCOPE_DIR="$T/fifo" MSCOPE_NF=ff MSCOPE_FILE_MODE=0600
[ -p "$T/fifo/.mscope-tsc-hz" ] || fail "fifo: the FIFO was replaced"
[ "$(warnings fifo)" = 0 ] || fail "fifo: warned"
[ "$(rx_of fifo)" = "$N" ] || fail "fifo: trace incomplete"
[ "$(stat -c %a "$T"/fifo/ff-p0q0-*.mst)" = 600 ] || fail "mode: 0600 not honoured"

# escape
run escape MSCOPE_DIR="$T/escape" MSCOPE_NF=$'evil\e[2J\nforged: line'
grep "^mscope-collector:" "$T/escape.log"
[ "$(warnings escape)" = 1 ] || fail "escape: expected one warning line"
# (testpmd itself clears the screen with escapes: only our lines count)
grep "mscope-collector" "$T/escape.log" | grep -q $'\e' && fail "escape: a raw ESC byte was printed"
grep -q '^forged' "$T/escape.log" && fail "escape: a line was forged"
grep -qF 'evil\x1b[2J\x0aforged: line' "$T/escape.log" || fail "escape: not shown escaped"
run escdir MSCOPE_DIR=$'/proc/no\e]0;title\a'
grep -qF '/proc/no\x1b]0;title\x07' "$T/escdir.log" || fail "escape: MSCOPE_DIR not shown escaped"
grep "mscope-collector" "$T/escdir.log" | grep -q $'\e' && fail "escape: a raw ESC byte was printed"

# mode (0600: the fifo case)
[ "$(stat -c %a "$T"/escape/*-p0q0-*.mst)" = 640 ] || fail "mode: default is not 0640"
(umask 077; run mode660 MSCOPE_DIR="$T/mode660" MSCOPE_NF=m MSCOPE_FILE_MODE=0660)
[ "$(stat -c %a "$T"/mode660/m-p0q0-*.mst)" = 660 ] || fail "mode: 0660 not exact under umask 077"
run mode666 MSCOPE_DIR="$T/mode666" MSCOPE_NF=m MSCOPE_FILE_MODE=0666
[ "$(warnings mode666)" = 1 ] || fail "mode: world-writable not refused"
[ "$(stat -c %a "$T"/mode666/m-p0q0-*.mst)" = 640 ] || fail "mode: 0666 not replaced by 0640"

# clobber: the NF's pid is the shell's, which creates the files and then execs
mkdir -p "$T/clob"
echo precious >"$T/victim"
: >"$T/tp.log"
bash -c 'printf precious >"$1/cl-p0q0-$$.mst"; ln -s "$2" "$1/cl-p1q0-$$.mst"; shift 2; exec "$@"' \
	_ "$T/clob" "$T/victim" env MSCOPE_DIR="$T/clob" MSCOPE_NF=cl LD_PRELOAD="$PRELOAD" "$TESTPMD" \
	--no-huge --no-pci -m 256 --file-prefix="$PREFIX" -l 0-1 --log-level=lib.eal:error \
	--vdev="net_pcap0,rx_pcap=$PCAP" --vdev="net_pcap1,tx_pcap=$T/clob.pcap" -- \
	--total-num-mbufs=16384 "${APP[@]}" --stats-period 1 </dev/null >"$T/tp.log" 2>&1 &
TP_PID=$!
wait_for "TX-packets: +$N " 30
stop_testpmd INT
grep "^mscope-collector" "$T/tp.log"
[ "$(grep -c "^mscope-collector" "$T/tp.log")" = 1 ] || fail "clobber: expected one line"
grep -q "File exists" "$T/tp.log" || fail "clobber: wrong line"
[ "$(cat "$T"/clob/cl-p0q0-*.mst)" = precious ] || fail "clobber: the existing file was changed"
[ "$(cat "$T/victim")" = precious ] || fail "clobber: a symlink was followed"
"$CHECK" pcap "$T/clob.pcap" | cmp -s - "$T/pcap.ids" || fail "clobber: the NF did not forward the pcap"
echo "PASS: FIFO, control characters, modes and existing files handled; $N packets forwarded each time"
