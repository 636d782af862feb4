#!/usr/bin/env bash
# End-to-end test of `mscope dump`: text, JSON lines, stats, a truncated file
# (partial dump + error naming file and offset + exit 1) and usage errors.
# Usage: test_dump.sh MSCOPE MKTRACE
set -euo pipefail
MSCOPE=$1
MKTRACE=$2
T=$(mktemp -d /tmp/mscope-dump-test.XXXXXX)
trap 'rm -rf "$T"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
expect_rc() { # expect_rc RC CMD...
  local want=$1; shift
  local rc=0
  "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq "$want" ] || { cat "$T/err" >&2; fail "'$*' exited $rc, want $want"; }
}
has() { grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "$1 lacks '$2'"; }; }

"$MKTRACE" demo "$T/d.mst"
# the writer refuses to overwrite
if "$MKTRACE" demo "$T/d.mst" 2>"$T/err"; then fail "writer overwrote a file"; fi
has "$T/err" "File exists"

# text
expect_rc 0 "$MSCOPE" dump "$T/d.mst"
has "$T/out" "# version 2 role rxq nf demo port 1 queue 2 host testhost pid 4242"
has "$T/out" "# tsc_hz 1000000000 anchor_tsc 0 anchor_realtime_ns 1700000000000000000"
has "$T/out" "flow  f0 tcp 10.0.0.1:1234 > 10.0.0.2:80"
has "$T/out" "flow  f1 udp 10.0.0.1:53 > 10.0.0.2:5353"
has "$T/out" "clock tsc 500 realtime_ns 1700000000000000000"
has "$T/out" "rx    tsc 1000 seq 0 n 3 qdepth 0 10000000/f0 10000001/f0 10000002/f1"
has "$T/out" "tx    tsc 2000 port 1 queue 0 offered 3 accepted 3 10000000<0 10000001<1 10000002<2"
has "$T/out" "tx    tsc 14000 port 1 queue 0 offered 3 accepted 2 10000040<12 10000041<13"
has "$T/out" "drop  tsc 14000 reason tx_refused n 1 10000042<14/f1"
has "$T/out" "loss  tsc 99000 records 2 packets 17"
has "$T/out" "deleted tsc 99000 segment 3 tsc_first 100 tsc_last 900 records 5 packets 12"
has "$T/out" "# segment 4 rx_seq_start 0"
[ "$(grep -c '^rx ' "$T/out")" -eq 30 ] || fail "want 30 rx lines"
[ "$(grep -c '^tx ' "$T/out")" -eq 30 ] || fail "want 30 tx lines"
[ "$(grep -c '^drop ' "$T/out")" -eq 6 ] || fail "want 6 drop lines"
cp "$T/out" "$T/full.txt"

# brief
expect_rc 0 "$MSCOPE" dump --brief "$T/d.mst"
has "$T/out" "rx    tsc 1000 seq 0 n 3 qdepth 0"
grep -q "10000000/f0" "$T/out" && fail "--brief printed packets"

# only some record types
expect_rc 0 "$MSCOPE" dump --type drop,loss "$T/d.mst"
[ "$(grep -vc '^#' "$T/out")" -eq 7 ] || fail "--type drop,loss: want 7 records"
expect_rc 2 "$MSCOPE" dump --type bogus "$T/d.mst"
has "$T/err" "unknown record type 'bogus'"

# JSON lines: every line parses, the first is the header
expect_rc 0 "$MSCOPE" dump --json "$T/d.mst"
python3 - "$T/out" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines[0]["type"] == "header" and lines[0]["nf_name"] == "demo", lines[0]
assert lines[0]["tsc_hz"] == 1000000000
assert lines[0]["version"] == 2, lines[0]
rx = [l for l in lines if l["type"] == "rx"]
tx = [l for l in lines if l["type"] == "tx"]
assert len(rx) == 30 and len(tx) == 30
assert rx[0]["wire_id"] == [0x10000000, 0x10000001, 0x10000002], rx[0]
assert rx[0]["flow"] == [0, 0, 1] and rx[0]["qdepth"] == 0
assert tx[4]["rx_seq"] == [12, 13] and tx[4]["offered"] == 3
drops = [l for l in lines if l["type"] == "drop"]
assert drops[0]["reason"] == "tx_refused" and drops[0]["rx_seq"] == [14]
flows = [l for l in lines if l["type"] == "flow"]
assert flows[0]["src"] == "10.0.0.1" and flows[0]["dport"] == 80
dl = [l for l in lines if l["type"] == "deleted"]
assert dl == [{"type": "deleted", "tsc": 99000, "segment": 3, "tsc_first": 100,
               "tsc_last": 900, "records": 5, "packets": 12}], dl
assert lines[0]["segment"] == 4 and lines[0]["rx_seq_start"] == 0, lines[0]
PY

# stats, text and JSON
expect_rc 0 "$MSCOPE" dump --stats "$T/d.mst"
has "$T/out" "records      rx 30 tx 30 drop 6 flow 2 loss 1 clock 1"
has "$T/out" "packets      rx 90 tx offered 90 accepted 84 refused 6 dropped 6"
has "$T/out" "drops        tx_refused 6"
has "$T/out" "losses       2 records, 17 packets"
has "$T/out" "deleted      1 segments, 5 records, 12 packets"
has "$T/out" "bytes per rx packet"
expect_rc 0 "$MSCOPE" dump --stats --json "$T/d.mst"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["rx_packets"]==90 and s["tx_refused"]==6 and s["complete"] and s["deleted_packets"]==12, s' "$T/out"
expect_rc 0 "$MSCOPE" dump --type deleted "$T/d.mst"
[ "$(grep -vc '^#' "$T/out")" -eq 1 ] || fail "--type deleted: want 1 record"

# defect 12: header strings with terminal escapes, newlines, bad UTF-8 are escaped
"$MKTRACE" evil "$T/evil.mst"
for mode in "" --stats; do
  expect_rc 0 "$MSCOPE" dump $mode "$T/evil.mst"
  if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f-\xff]' "$T/out"; then
    fail "dump $mode printed control or non-ASCII bytes"
  fi
  has "$T/out" 'ev\x1b[31mil\x0anf\x5c'
  has "$T/out" 'h\x0d\x9b\xff'
done
expect_rc 0 "$MSCOPE" dump --json "$T/evil.mst"
python3 -c 'import json,sys; h=json.loads(open(sys.argv[1]).readline()); assert h["nf_name"]=="ev\x1b[31mil\nnf\\" and h["host"]=="h\\x0d\\x9b\\xff", h' "$T/out"

# several files: one bad one makes exit 1 but the others are still dumped
expect_rc 1 "$MSCOPE" dump --brief "$T/d.mst" "$T/missing.mst" "$T/d.mst"
[ "$(grep -c '^# file ' "$T/out")" -eq 2 ] || fail "want 2 dumped files"
has "$T/err" "missing.mst"

# a format-1 file (another wire ID definition) is refused at the header, by name
cp "$T/d.mst" "$T/v1.mst"
printf '\001' | dd of="$T/v1.mst" bs=1 seek=16 conv=notrunc status=none
expect_rc 1 "$MSCOPE" dump "$T/v1.mst"
has "$T/err" "$T/v1.mst: offset 16: unsupported format version 1 (this reader reads version 2)"
grep -q '^rx ' "$T/out" && fail "records printed from a version 1 file"

# where the frames end: the seek table (a skippable frame, its footer last) follows
data_end() {
  python3 -c 'import struct,sys; b=open(sys.argv[1],"rb").read(); nf,_,fb,_,m=struct.unpack("<5I",b[-20:]); assert m==0x5849534D; print(len(b)-8-nf*56-fb-20)' "$1"
}

# truncated: partial dump on stdout, error with file and offset, exit 1
size=$(data_end "$T/d.mst")
head -c $((size - 7)) "$T/d.mst" >"$T/cut.mst"
expect_rc 1 "$MSCOPE" dump "$T/cut.mst"
has "$T/err" "$T/cut.mst: offset "
has "$T/err" "truncated frame"
has "$T/out" "# version 2 role rxq nf demo"
nrx=$(grep -c '^rx ' "$T/out" || true)
[ "$nrx" -eq 20 ] || fail "truncated dump shows $nrx rx lines, want the 20 of the complete frames"
# the partial output is exactly the start of the full one (header line aside)
diff <(tail -n +2 "$T/out") <(tail -n +2 "$T/full.txt" | head -n $(($(wc -l <"$T/out") - 1))) \
  || fail "partial dump differs from the full dump"
expect_rc 1 "$MSCOPE" dump --stats "$T/cut.mst"
has "$T/out" "(incomplete)"
has "$T/out" "packets      rx 60"

# the index: from the seek table, and rebuilt for the cut file
expect_rc 0 "$MSCOPE" dump --index "$T/d.mst"
has "$T/out" "3 frames, from the seek table"
[ "$(grep -c '^frame ' "$T/out")" -eq 3 ] || fail "want 3 frame lines"
has "$T/out" "frame 0 segment 4 offset "
head -c "$(data_end "$T/d.mst")" "$T/d.mst" >"$T/killed.mst"
expect_rc 0 "$MSCOPE" dump --index "$T/killed.mst"
has "$T/out" "3 frames, rebuilt by a scan: no seek table"
expect_rc 0 "$MSCOPE" dump --index "$T/cut.mst"
has "$T/out" "2 frames, rebuilt by a scan"
expect_rc 0 "$MSCOPE" dump --index --json "$T/d.mst"
python3 -c 'import json,sys; l=[json.loads(x) for x in open(sys.argv[1])]; assert l[1]["type"]=="index" and l[1]["frames"]==3 and not l[1]["rebuilt"], l[1]; assert sum(x["rx"] for x in l if x["type"]=="frame")==90' "$T/out"
# the sequential reader is not bothered by the seek table; a bare zstd reader neither
if command -v zstdcat >/dev/null; then zstdcat "$T/d.mst" >/dev/null || fail "zstdcat refused the file"; fi

# --from/--to: only the frames overlapping the window (the second one: tsc 31000..58000)
expect_rc 0 "$MSCOPE" dump --brief --from 40000 --to 41000 "$T/d.mst"
[ "$(grep -c '^rx ' "$T/out")" -eq 10 ] || fail "window: want the 10 rx of frame 1"
has "$T/out" "rx    tsc 31000 seq 30 n 3"
has "$T/out" "flow  f1 udp"
expect_rc 2 "$MSCOPE" dump --from 5 --to 4 "$T/d.mst"
expect_rc 2 "$MSCOPE" dump --from x "$T/d.mst"

# segments of one node: one ordered stream, the oldest may be gone, a middle gap shows
mkdir "$T/segs"
"$MKTRACE" segments "$T/segs" 4 20 "$T/one.mst"
expect_rc 0 "$MSCOPE" dump --brief "$T/segs/s.000002.mst" "$T/segs/s.000000.mst" "$T/segs/s.000001.mst" "$T/segs/s.000003.mst"
[ "$(grep -c '^# file ' "$T/out")" -eq 1 ] || fail "segments: want one stream"
has "$T/out" "# stream of 4 segment files"
grep -v '^#' "$T/out" >"$T/stream.txt"
expect_rc 0 "$MSCOPE" dump --brief "$T/one.mst"
grep -v '^#' "$T/out" | diff - "$T/stream.txt" >/dev/null || fail "4 segments differ from one file"
rm "$T/segs/s.000000.mst" "$T/segs/s.000002.mst"
expect_rc 0 "$MSCOPE" dump --stats "$T/segs/"*.mst
has "$T/out" "gaps         1 missing middle segments"
has "$T/out" "losses       0 records, 80 packets"
has "$T/out" "packets      rx 160 "

# defect 11: a frame decoding far beyond what the writer produces is refused, --max-ratio lifts it
expect_rc 0 "$MSCOPE" dump --stats --max-ratio 0 "$T/d.mst"
expect_rc 1 "$MSCOPE" dump --stats --max-ratio 1 "$T/d.mst"
has "$T/err" "decode ratio above 1, refused as hostile"

# not a trace; empty file
echo "hello" >"$T/text.txt"
expect_rc 1 "$MSCOPE" dump "$T/text.txt"
has "$T/err" "bad magic"
: >"$T/empty.mst"
expect_rc 1 "$MSCOPE" dump "$T/empty.mst"
has "$T/err" "empty file"

# usage
expect_rc 2 "$MSCOPE" dump
expect_rc 2 "$MSCOPE" dump --bogus "$T/d.mst"
expect_rc 0 "$MSCOPE" dump --help
has "$T/out" "usage: mscope dump"
echo "ok"
