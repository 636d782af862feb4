#!/bin/bash
# mscope export against the analyzer's own view of the same packets: rows and
# drops per node equal `mscope analyze --json` nodes[].packets / drops; the
# an NF's wire_out is what the next node received: nat1 feeds only vpn1
awk -F, 'FNR == NR { if ($4 == "vpn1") w[$5] = 1; next }
	$4 == "nat1" && $6 != 0 { n++; if (!($6 in w)) bad++ }
	END { exit !(n > 1000 && bad == 0) }' "$work/all.csv" "$work/all.csv" && ok "nat1 wire_out = vpn1 wire_in" ||
	bad "nat1 wire_out not found at vpn1"

# waits of sampled hops equal what `mscope analyze --packet NODE@WIRE` (the
# inspection API, mscope_an_local_scores) reports; CSV and JSON lines agree;
# --node, --from/--to select exactly the matching rows; times are ordered.
set -euo pipefail
build=${MSCOPE_BUILD:?}
src=${MSCOPE_SRC:?}
mscope=$build/tools/mscope
work=$(mktemp -d /tmp/mscope-export.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

# a NAT stall with queue-full drops at the VPN
d=$work/run
"$mscope" sim "$src/tools/scenarios/nat-mon-interrupt.json" -o "$d" --no-victims -q
"$mscope" analyze "$d" -q --json "$work/an.json" 2>/dev/null
"$mscope" export "$d" -o "$work/all.csv"
"$mscope" export "$d" --jsonl >"$work/all.jsonl"

# per node: rows and drops
jq -r '.nodes[] | "\(.id) \(.packets) \(.drops)"' "$work/an.json" | sort >"$work/want"
awk -F, 'NR > 1 { n[$3]++; if ($11 == "queue_full" || $11 == "dropped") d[$3]++ }
	END { for (k in n) print k, n[k], d[k] + 0 }' "$work/all.csv" | sort >"$work/got"
if diff "$work/want" "$work/got" >/dev/null; then
	ok "rows and drops per node = analyzer's packets and drops ($(wc -l <"$work/got") nodes)"
else
	bad "per-node counts differ"; diff "$work/want" "$work/got" || true
fi
[ "$(jq -s 'map(select(.drop == "queue_full")) | length' "$work/all.jsonl")" -gt 0 ] &&
	ok "queue-full drops exported" || bad "no queue-full drop exported"

# CSV and JSON lines: same rows
[ "$(($(wc -l <"$work/all.csv") - 1))" -eq "$(wc -l <"$work/all.jsonl")" ] &&
	ok "CSV and JSON lines have the same rows" || bad "CSV and JSON lines differ in rows"
jq -s -e 'all(.[]; (.arrival_us <= (.dequeue_us // .arrival_us)) and
	((.departure_us == null) or (.departure_us >= .dequeue_us)) and
	((.wait_us == null) or (.wait_us >= 0)) and (.ingress_us <= .arrival_us))' \
	"$work/all.jsonl" >/dev/null && ok "times ordered" || bad "times out of order"

# an NF's wire_out is what the next node received: nat1 feeds only vpn1
awk -F, 'FNR == NR { if ($4 == "vpn1") w[$5] = 1; next }
	$4 == "nat1" && $6 != 0 { n++; if (!($6 in w)) bad++ }
	END { exit !(n > 1000 && bad == 0) }' "$work/all.csv" "$work/all.csv" && ok "nat1 wire_out = vpn1 wire_in" ||
	bad "nat1 wire_out not found at vpn1"

# waits of sampled hops at nat1 (during and after the stall) and vpn1
n=0
for spec in "nat1:p0q0 15.2ms" "nat1:p0q0 15.9ms" "nat1:p0q0 16.5ms" "vpn1:p0q0 16.1ms" \
		"vpn1:p0q0 30ms"; do
	set -- $spec
	line=$("$mscope" export "$d" --node "$1" --from "$2" | awk -F, 'NR == 2')
	wire=$(echo "$line" | cut -d, -f5)
	wait=$(echo "$line" | cut -d, -f10)
	said=$("$mscope" analyze "$d" --packet "$1@$wire" 2>/dev/null | sed -n 's/.*waited \([0-9.]*\) us.*/\1/p')
	if [ -n "$said" ] && awk -v a="$wait" -v b="$said" 'BEGIN { exit !(a - b < 0.06 && b - a < 0.06) }'; then
		n=$((n + 1))
	else
		bad "$1@$wire: export wait '$wait', analyzer '$said'"
	fi
done
[ "$n" -eq 5 ] && ok "5 sampled waits equal the analyzer's"

# --node and --from/--to select exactly the matching rows
want=$(awk -F, 'NR > 1 && $4 == "nat1" && $7 >= 15000 && $7 <= 17000' "$work/all.csv" | wc -l)
got=$("$mscope" export "$d" --node nat1 --from 15ms --to 17ms | tail -n +2 | wc -l)
[ "$want" -gt 0 ] && [ "$want" -eq "$got" ] && ok "--node nat1 --from 15ms --to 17ms: $got rows" ||
	bad "--node/--from/--to: $got rows, expected $want"
"$mscope" export "$d" --node nope >/dev/null 2>"$work/err" && bad "--node nope accepted" ||
	{ grep -q "no node or NF 'nope'" "$work/err" && ok "--node nope refused"; }
exit $fail
