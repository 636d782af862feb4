#!/usr/bin/env bash
# mscope report: exit statuses, messages naming the file and field, outputs.
set -u
M="$MSCOPE_BUILD/tools/mscope"
D="$MSCOPE_SRC/tests/autofocus/data"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect STATUS PATTERN-IN-STDERR -- ARGS...
expect() {
  local want=$1 pat=$2; shift 3
  "$M" report "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  [ "$rc" -eq "$want" ] || fail "mscope report $*: exit $rc, want $want; stderr: $(cat "$T/err")"
  if [ -n "$pat" ]; then
    grep -qF -- "$pat" "$T/err" || fail "mscope report $*: stderr lacks '$pat': $(cat "$T/err")"
  fi
}

expect 0 "" -- "$D/basic.json"
diff -u "$D/basic.txt" "$T/out" || fail "text output differs from basic.txt"
expect 0 "" -- "$D/basic.json" --top 2
diff -u "$D/basic-top2.txt" "$T/out" || fail "--top 2 output differs"
expect 0 "" -- --top=0 "$D/basic.json"
diff -u "$D/basic.txt" "$T/out" || fail "--top=0 output differs"

# HTML to a file, text still printed; --quiet; HTML to stdout.
expect 0 "" -- "$D/basic.json" --html "$T/r.html"
grep -q '<svg' "$T/r.html" || fail "no svg in $T/r.html"
diff -u "$D/basic.txt" "$T/out" || fail "text with --html differs"
expect 0 "" -- -q "$D/basic.json" --html "$T/r2.html"
[ ! -s "$T/out" ] || fail "--quiet printed: $(cat "$T/out")"
cmp -s "$T/r.html" "$T/r2.html" || fail "HTML differs between two renders"
expect 0 "" -- "$D/basic.json" --html -
grep -q '^<!DOCTYPE html>' "$T/out" || fail "--html - did not write HTML to stdout"
grep -q 'victims (12 drops)' "$T/out" && fail "--html - also printed the text table"
"$M" report - <"$D/basic.json" >"$T/out" || fail "stdin input"
diff -u "$D/basic.txt" "$T/out" || fail "stdin output differs"

# Bad input: exit 1, the message names the file (and line, or field).
expect 1 "$T/missing.json" -- "$T/missing.json"
printf '{"version": 1,\n "culprits": [}\n' >"$T/bad.json"
expect 1 "$T/bad.json:2:" -- "$T/bad.json"
printf '{"version": 1, "culprits": [{"share": "x"}]}' >"$T/schema.json"
expect 1 "$T/schema.json: culprits[0].share: expected a number" -- "$T/schema.json"
printf '{"version": 7}' >"$T/v7.json"
expect 1 "version: 7 is not supported" -- "$T/v7.json"
expect 1 "cannot create $T/no/such/dir/x.html" -- "$D/basic.json" --html "$T/no/such/dir/x.html"

# Usage: exit 2.
expect 2 "missing ANALYSIS.json" --
expect 2 "one ANALYSIS.json only" -- "$D/basic.json" "$D/empty.json"
expect 2 "--top: 'abc'" -- "$D/basic.json" --top abc
expect 2 "--top: '-1'" -- "$D/basic.json" --top -1
expect 2 "" -- --bogus "$D/basic.json"
expect 0 "" -- --help
grep -q 'usage: mscope report' "$T/out" || fail "--help text"
echo "ok"
