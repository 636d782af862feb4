#!/bin/bash
# mscope incidents end to end: a 3 s chain with four faults of different kinds
# (tests/incidents/four-faults.json) must give one incident per fault, each
# fault's window overlapped and its true culprit ranked first (scored against
# the simulator's truth.json like `mscope eval`); the JSON document's schema;
# --from/--to; the HTML page; the same chain without faults gives no incident.
set -euo pipefail
build=${MSCOPE_BUILD:?}
src=${MSCOPE_SRC:?}
mscope=$build/tools/mscope
score=$build/tests/incidents/score_incidents
work=$(mktemp -d /tmp/mscope-inc-e2e.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

"$mscope" sim "$src/tests/incidents/four-faults.json" -o "$work/run" --no-victims -q
TMPDIR=$work "$mscope" incidents "$work/run" --json "$work/inc.json" --html "$work/inc.html" \
	>"$work/out.txt" 2>"$work/err.txt" || { bad "incidents exited $?"; cat "$work/err.txt"; exit 1; }
cat "$work/out.txt"
if "$score" "$work/run/truth.json" "$work/inc.json" 1.0; then
	ok "every fault found, true culprit first"
else
	bad "faults missed or culprits not first"
fi
n=$(jq '.incidents | length' "$work/inc.json")
[ "$n" -eq 4 ] && ok "4 incidents" || bad "$n incidents, expected 4"
# the temporary cuts are gone
[ -z "$(ls "$work" | grep mscope-incidents || true)" ] && ok "no temporary cuts left" ||
	bad "temporary cuts left in $work"

# schema
jq -e '
  .version == 1 and
  (.scan | (.nodes == 4) and (.packet_hops > 1000000) and (.start_us == 0) and
           (.end_us > 2990000) and (.bin_us == 1000) and (.cpu_s >= 0) and
           (.origin_tsc | type == "number") and (.warnings == [])) and
  (.detection | (.k_mad == 8) and (.normal_latency_p99_us > 0)) and
  ([.nodes[] | select(.role == "rxq")] | length == 3 and
     all(.[]; (.threshold_us > .p99_median_us) and (.drop_threshold >= 1))) and
  (.timeline | (.t_us | length) == (.p99_us | length) and (.t_us | length) == (.drops | length)
     and (.t_us | length) <= 2000 and (.t_us | length) > 100) and
  (.incidents | all(.[];
     (.id | type == "number") and .start_us < .end_us and (.drops | type == "number") and
     (.victims > 0) and (.peak_node | test(":p0q0$")) and
     (.window.from_us <= .start_us) and (.window.to_us >= .end_us) and
     (.culprits | length >= 1 and .[0].rank == 1 and (.[0].nf | type == "string") and
        (.[0].kind == "processing" or .[0].kind == "source") and (.[0].share > 0)) and
     (.analysis.version == 1) and (.analysis.culprits | length > 0)))
  and ([.incidents[].start_us] == ([.incidents[].start_us] | sort))
' "$work/inc.json" >/dev/null && ok "JSON schema" || bad "JSON schema"

# the table names each incident's culprit
grep -q "nat1 processing" "$work/out.txt" && grep -q "vpn1 processing" "$work/out.txt" &&
	grep -q "fw1 processing udp" "$work/out.txt" && grep -q "source source udp 10.0.0.1:40000" \
	"$work/out.txt" && ok "table" || bad "table lacks a culprit"

# HTML: timeline, one marked, linked incident per incident, embedded diagnoses
h=$work/inc.html
[ "$(grep -o 'class="inc"' "$h" | wc -l)" -eq 4 ] &&
[ "$(grep -o 'href="#inc-[0-9]*"' "$h" | sort -u | wc -l)" -eq 4 ] &&
[ "$(grep -o 'id="inc-[0-9]*"' "$h" | wc -l)" -eq 4 ] &&
[ "$(grep -o '<iframe' "$h" | wc -l)" -eq 4 ] &&
! grep -qi '<script\|src="http\|href="http' "$h" && ok "HTML page" || bad "HTML page"

# --from/--to: only the interrupt (1.2 s) and the bug (1.9 s)
"$mscope" incidents "$work/run" --from 1s --to 2.2s --json "$work/win.json" -q 2>/dev/null
jq -e '(.scan.start_us == 1000000) and (.scan.end_us <= 2201000) and
  (.incidents | length == 2) and all(.incidents[]; .start_us >= 1000000 and .end_us <= 2201000)
  and (.incidents[0].culprits[0].nf == "nat1") and (.incidents[1].culprits[0].nf == "fw1")' \
	"$work/win.json" >/dev/null && ok "--from/--to" || { bad "--from/--to"; jq -c '.scan, [.incidents[] | [.start_us, .end_us, .culprits[0].nf]]' "$work/win.json"; }
# --no-diagnose: same incidents, no analyses
"$mscope" incidents "$work/run" --no-diagnose --json "$work/nd.json" -q
jq -e '(.incidents | length == 4) and all(.incidents[]; has("analysis") | not)' \
	"$work/nd.json" >/dev/null && ok "--no-diagnose" || bad "--no-diagnose"

# the same chain without faults: no incident, and the table says so
jq '.faults = [] | .duration_ms = 1000 | .name = "clean"' \
	"$src/tests/incidents/four-faults.json" >"$work/clean.json"
"$mscope" sim "$work/clean.json" -o "$work/clean" --no-victims -q
"$mscope" incidents "$work/clean" --json "$work/clean-inc.json" >"$work/clean.txt"
if [ "$(jq '.incidents | length' "$work/clean-inc.json")" -eq 0 ] &&
		grep -q "^no incidents" "$work/clean.txt"; then
	ok "clean run: no incident"
else
	bad "clean run: incidents found"; cat "$work/clean.txt"
fi
exit $fail
