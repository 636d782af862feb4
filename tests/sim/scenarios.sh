#!/usr/bin/env bash
# Every shipped scenario runs through `mscope sim`, its traces read back
# cleanly with `mscope dump`, and every fault it injects has victims.
# Usage: scenarios.sh MIN_COUNT GLOB...   (globs relative to tools/scenarios)
set -euo pipefail
min=$1
shift
M="$MSCOPE_BUILD/tools/mscope"
T=$(mktemp -d /tmp/mscope-sim-scen.XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0
for g in "$@"; do
for f in "$MSCOPE_SRC"/tools/scenarios/$g; do
  name=$(basename "$f" .json)
  if grep -q '"pcap"' "$f" && [ ! -d "$MSCOPE_DATA" ]; then
    echo "skip $name: no $MSCOPE_DATA"
    continue
  fi
  "$M" sim "$f" -o "$T/$name" -q
  for t in "$T/$name"/*.mst; do
    "$M" dump -s "$t" > /dev/null
  done
  python3 - "$T/$name/truth.json" "$name" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
assert t["packets"]["sent"] == t["packets"]["delivered"] + t["packets"]["dropped"], t["packets"]
for f in t["faults"]:
    assert f["victims"] > 0, f"{sys.argv[2]}: fault {f['id']} ({f['kind']}) has no victims"
print(sys.argv[2], t["packets"], [(f["kind"], f["victims"]) for f in t["faults"]])
PY
  lines=$(wc -l < "$T/$name/victims.jsonl")
  total=$(python3 -c "import json,sys; print(sum(f['victims'] for f in json.load(open(sys.argv[1]))['faults']))" "$T/$name/truth.json")
  [ "$lines" -eq "$total" ] || { echo "$name: victims.jsonl has $lines lines, truth says $total"; exit 1; }
  n=$((n + 1))
done
done
[ "$n" -ge "$min" ] || { echo "only $n scenarios ran"; exit 1; }
echo "ok: $n scenarios"
