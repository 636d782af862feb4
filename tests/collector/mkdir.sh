#!/usr/bin/env bash
# MSCOPE_DIR is created when missing (#17.3): parents too, with the umask's
# permissions; a symlink where a directory is to be created is never
# followed (a dangling one would have made the collector create a directory
# elsewhere); an existing symlink in the given path is the user's and is
# followed. The NF forwards the pcap every time.
. "$(dirname "$0")/lib.sh"

PCAP=$DATA/pcapplusplus_example.pcap
[ -f "$PCAP" ] || { echo "SKIP: $PCAP missing"; exit 77; }
"$CHECK" pcap "$PCAP" >"$T/pcap.ids"
N=$(wc -l <"$T/pcap.ids")

run() { forward_pcap "$@"; }
warnings() { grep -c "^mscope-collector:" "$T/$1.log" || true; }

# parents, umask 027
(umask 027; run parents MSCOPE_DIR="$T/a/b/c" MSCOPE_NF=mk)
[ "$(warnings parents)" = 0 ] || fail "parents: warned"
for d in a a/b a/b/c; do
	[ "$(stat -c %a "$T/$d")" = 750 ] || fail "parents: $d has mode $(stat -c %a "$T/$d"), not 750"
done
s=$("$CHECK" stats "$T"/a/b/c/mk-p0q0-*.mst) || fail "parents: no trace"
expect rx "$N" "$s"

# a dangling symlink where a directory is missing
ln -s "$T/elsewhere" "$T/dangling"
run dangling MSCOPE_DIR="$T/dangling/sub" MSCOPE_NF=mk
grep "^mscope-collector" "$T/dangling.log"
[ "$(warnings dangling)" = 1 ] || fail "dangling: expected one warning"
[ -e "$T/elsewhere" ] && fail "dangling: a directory was created through the symlink"

# a symlink to an existing directory, given by the user
mkdir "$T/real"
ln -s "$T/real" "$T/link"
run link MSCOPE_DIR="$T/link/new" MSCOPE_NF=mk
[ "$(warnings link)" = 0 ] || fail "link: warned"
ls "$T"/real/new/mk-p0q0-*.mst >/dev/null || fail "link: no trace in the linked directory"
echo "PASS: directories created with their parents, umask honoured, no symlink followed for them"
