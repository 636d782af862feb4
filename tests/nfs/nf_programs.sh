#!/usr/bin/env bash
# Each program alone on pcap ports (net_pcap: a capture in, captures out):
# --help and bad input; the NAT rewrites sources and leaves valid checksums;
# VPN encapsulation then decapsulation gives back the original IP packets;
# the firewall drops exactly what its rule matches; the load balancer keeps
# each flow on one output; the monitor counts every packet; the source replays
# a capture (later loops differ in IP ID) and writes valid synthetic packets.
. "$(dirname "$0")/lib.sh"

PCAP=${MSCOPE_DATA:?}/pcapplusplus_example.pcap
[ -f "$PCAP" ] || fail "$PCAP missing"

for p in nf-firewall nf-nat nf-monitor nf-vpn nf-lb source; do
	rc=0; "$NFS/mscope-$p" --help >"$T/help" || rc=$?
	[ $rc -eq 0 ] || fail "mscope-$p --help exit $rc"
	grep -q "^usage: mscope-$p" "$T/help" || fail "mscope-$p --help: $(head -2 "$T/help")"
done

# run NAME PROGRAM RX_PCAP NOUT -- APP_ARGS: rx from a capture, tx to NOUT
# captures $T/NAME.outK.pcap; once the ports are up the capture takes well
# under a second: SIGINT 1.5 s later, and the exit must be clean.
run() {
	local name=$1 prog=$2 rx=$3 nout=$4 vdevs=() k pid rc=0
	shift 5
	vdevs+=(--vdev "net_pcap0,rx_pcap=$rx")
	for k in $(seq 1 "$nout"); do vdevs+=(--vdev "net_pcap$k,tx_pcap=$T/$name.out$k.pcap"); done
	# shellcheck disable=SC2046
	"$NFS/$prog" $(eal "$name") "${vdevs[@]}" -- --stats "$T/$name.json" \
		--ready-file "$T/$name.ready" "$@" >"$T/$name.log" 2>&1 &
	pid=$!
	BG+=("$pid")
	for _ in $(seq 300); do
		[ -f "$T/$name.ready" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	sleep 1.5
	kill -INT "$pid" 2>/dev/null || true
	wait "$pid" || rc=$?
	[ $rc -eq 0 ] && [ -f "$T/$name.json" ] || { cat "$T/$name.log"; fail "$prog exit $rc"; }
}

# usage errors: exit 2 naming the value; bad rule file: exit 1 naming file:line
rc=0; "$NFS/mscope-nf-nat" $(eal bad1) --vdev net_null0 -- --ports 5-2 >"$T/e1" 2>&1 || rc=$?
[ $rc -eq 2 ] && grep -q "5-2" "$T/e1" || fail "bad --ports: exit $rc: $(cat "$T/e1")"
printf 'drop proto=udp\nfrobnicate dport=1\n' >"$T/bad.rules"
rc=0; "$NFS/mscope-nf-firewall" $(eal bad2) --vdev net_null0 -- --rules "$T/bad.rules" >"$T/e2" 2>&1 || rc=$?
[ $rc -eq 1 ] && grep -q "bad.rules:2: unknown action 'frobnicate'" "$T/e2" || fail "bad rule: exit $rc: $(cat "$T/e2")"
rc=0; "$NFS/mscope-source" $(eal bad3) --vdev net_null0 -- --synthetic 4 --burst 1:2:x:y >"$T/e3" 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "bad --burst: exit $rc"

# NAT: every IPv4 source becomes the public address; checksums valid
run nat mscope-nf-nat "$PCAP" 1 -- --public-ip 198.51.100.7 --flows "$T/nat.flows.json"
python3 "$HERE/pcap_cksum.py" "$T/nat.out1.pcap" || fail "NAT output checksums"
python3 - "$T/nat.out1.pcap" "$T/nat.json" <<'PY' || fail "NAT rewrite"
import struct, sys, json
from pcap_cksum import packets
n = v4 = 0
for p in packets(sys.argv[1]):
    n += 1
    if p[12:14] == b"\x08\x00":
        v4 += 1
        assert p[26:30] == bytes([198, 51, 100, 7]), "source not translated"
st = json.load(open(sys.argv[2]))
assert n == st["tx"] == st["rx"] == 4631, (n, st["rx"], st["tx"])
assert st["nat"]["translated_out"] == v4, (st["nat"], v4)
PY

# VPN: encapsulate, decapsulate, compare with the original IP packets
run vpnenc mscope-nf-vpn "$PCAP" 1 -- --key s3cret --byte-ns 1
run vpndec mscope-nf-vpn "$T/vpnenc.out1.pcap" 1 -- --mode decap --key s3cret
python3 - "$PCAP" "$T/vpnenc.out1.pcap" "$T/vpndec.out1.pcap" <<'PY' || fail "VPN round trip"
import sys
from pcap_cksum import packets
orig = [p[14:] for p in packets(sys.argv[1]) if p[12:14] == b"\x08\x00"]
enc = list(packets(sys.argv[2]))
dec = [p[14:] for p in packets(sys.argv[3])]
assert len(enc) == len(orig) and len(dec) == len(orig), (len(orig), len(enc), len(dec))
for o, e in zip(orig, enc):
    assert e[23] == 17 and e[36:38] == b"\x11\x94", "not UDP/4500"    # proto, dport 4500
    assert len(e) == len(o) + 50 and e[50:] != o, "payload not transformed"
assert dec == orig, "decapsulated packets differ from the originals"
PY

# firewall: drops exactly the DNS packets its rule names
run fw mscope-nf-firewall "$PCAP" 2 -- --out a:1 --out log:2:none --rule 'drop proto=udp dport=53' \
	--rule 'to:log proto=tcp dport=443'
python3 - "$PCAP" "$T/fw.json" "$T/fw.out2.pcap" <<'PY' || fail "firewall"
import sys, json, struct
from pcap_cksum import packets
dns = https = 0
for p in packets(sys.argv[1]):
    if p[12:14] != b"\x08\x00":
        continue
    ihl = (p[14] & 15) * 4
    dport = struct.unpack("!H", p[14 + ihl + 2:14 + ihl + 4])[0]
    dns += p[23] == 17 and dport == 53
    https += p[23] == 6 and dport == 443
st = json.load(open(sys.argv[2]))
assert st["dropped_nf"] == dns, (st["dropped_nf"], dns)
assert len(list(packets(sys.argv[3]))) == https, "to:log"
PY

# load balancer: each flow on exactly one output, both outputs used
run lb mscope-nf-lb "$PCAP" 2 -- --hash symmetric
python3 - "$T/lb.out1.pcap" "$T/lb.out2.pcap" <<'PY' || fail "load balancer"
import sys, struct
from pcap_cksum import packets
seen = {}
for k, f in enumerate(sys.argv[1:]):
    n = 0
    for p in packets(f):
        n += 1
        if p[12:14] != b"\x08\x00":
            continue
        ihl = (p[14] & 15) * 4
        a, b = p[26:30], p[30:34]
        sp, dp = struct.unpack("!HH", p[14 + ihl:14 + ihl + 4])
        key = (p[23],) + tuple(sorted([(a, sp), (b, dp)]))
        assert seen.setdefault(key, k) == k, "a flow on two outputs"
    assert n > 0, "output %d unused" % k
PY

# monitor: every packet counted
run mon mscope-nf-monitor "$PCAP" 1 -- --dump "$T/mon.flows.json"
python3 - "$T/mon.flows.json" <<'PY' || fail "monitor"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["packets"] + d["non_ip_packets"] == 4631, d["packets"]
assert sum(f["packets"] for f in d["flows"]) == d["packets"]
PY

# source: a capture looped (the second pass differs in IPv4 ID), then synthetic
timeout --preserve-status -s INT 20 "$NFS/mscope-source" $(eal src) --vdev "net_pcap0,tx_pcap=$T/src.pcap" -- \
	--pcap "$PCAP" --rate-mpps 0.05 --count 5000 --exit-when-done >"$T/src.log" 2>&1 || { cat "$T/src.log"; fail "source"; }
python3 - "$PCAP" "$T/src.pcap" <<'PY' || fail "source replay"
import sys
from pcap_cksum import packets
orig, sent = list(packets(sys.argv[1])), list(packets(sys.argv[2]))
assert len(sent) == 5000, len(sent)
# first pass: the capture's frames as they are (runts padded to 60 bytes)
assert all(s == o + bytes(max(0, 60 - len(o))) for s, o in zip(sent, orig)), "first pass differs"
again = [(s, o) for s, o in zip(sent[len(orig):], orig) if o[12:14] == b"\x08\x00"]
assert again and all(s[18:20] != o[18:20] for s, o in again), "second pass has the same IP IDs"
PY
timeout --preserve-status -s INT 20 "$NFS/mscope-source" $(eal syn) --vdev "net_pcap0,tx_pcap=$T/syn.pcap" -- \
	--synthetic 100 --rate-mpps 0.05 --count 2000 --exit-when-done >"$T/syn.log" 2>&1 || { cat "$T/syn.log"; fail "synthetic source"; }
python3 "$HERE/pcap_cksum.py" "$T/syn.pcap" || fail "synthetic checksums"
echo "PASS"
