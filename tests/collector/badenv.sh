#!/usr/bin/env bash
# Bad configuration never stops the NF: with each bad MSCOPE_* setting the
# pcap is still forwarded completely; the collector prints one warning line
# per bad value and either runs on defaults or is disabled.
. "$(dirname "$0")/lib.sh"

PCAP=$DATA/pcapplusplus_example.pcap
[ -f "$PCAP" ] || { echo "SKIP: $PCAP missing"; exit 77; }
"$CHECK" pcap "$PCAP" >"$T/pcap.ids"
N=$(wc -l <"$T/pcap.ids")

# run CASE ENV...: forward the pcap; the case's files in $T/CASE
run() {
	mkdir -p "$T/$1"
	forward_pcap "$@"
}
warnings() { grep -c "^mscope-collector:" "$T/$1.log" || true; }
traces() { find "$T/$1" "$2" -maxdepth 1 -name "*.mst" 2>/dev/null | wc -l; }

# 1. a directory that cannot be created (its parent is a file)
touch "$T/plainfile"
run nodir MSCOPE_DIR="$T/plainfile/sub"
[ "$(warnings nodir)" = 1 ] || fail "nodir: expected one warning"
grep -q "not a writable directory" "$T/nodir.log" || fail "nodir: wrong warning"

# 2. a regular file as directory
run filedir MSCOPE_DIR="$T/plainfile"
[ "$(warnings filedir)" = 1 ] || fail "filedir: expected one warning"

# 3. a directory where nothing can be created (even by root)
run procdir MSCOPE_DIR=/proc
[ "$(warnings procdir)" = 1 ] || fail "procdir: expected one warning"
grep -q "collector disabled" "$T/procdir.log" || fail "procdir: not disabled"

# 4. bad values: one warning each, then defaults; the collector records
mkdir -p "$T/badvals/traces"
run badvals MSCOPE_DIR="$T/badvals/traces" MSCOPE_ZSTD_LEVEL=fast MSCOPE_BUFFER=-5 \
	MSCOPE_QDEPTH_EVERY=often MSCOPE_NF=a/b MSCOPE_RUN_ID="two words"
grep "^mscope-collector:" "$T/badvals.log"
[ "$(warnings badvals)" = 5 ] || fail "badvals: expected 5 warnings"
f=$(ls "$T/badvals/traces"/dpdk-testpmd-p0q0-*.mst) || fail "badvals: no trace with the default name"
s=$("$CHECK" stats "$f")
expect rx "$N" "$s"; expect accepted "$N" "$s"; expect run_id - "$s"; expect nf dpdk-testpmd "$s"

# 5. disabled, and a bad value for the switch itself
mkdir -p "$T/off/traces" "$T/offbad/traces"
run off MSCOPE_DIR="$T/off/traces" MSCOPE_DISABLE=1
[ "$(warnings off)" = 0 ] || fail "off: warned"
[ "$(ls "$T/off/traces" | wc -l)" = 0 ] || fail "off: traces written"
run offbad MSCOPE_DIR="$T/offbad/traces" MSCOPE_DISABLE=maybe
[ "$(warnings offbad)" = 1 ] || fail "offbad: expected one warning"
[ "$(ls "$T/offbad/traces" | wc -l)" = 0 ] || fail "offbad: traces written"
echo "PASS: the NF forwarded all $N packets in every bad configuration"
