#!/bin/sh
# browser_test.sh — `make test-browser`: the page at / of `crossrec serve`, driven by headless Chromium. On a
# synthetic dataset with a tower model, the page is opened for a known user and for a typed history; the test
# passes when the rendered page holds a column of recommendations (with titles and scores) for every domain.
# A screenshot is saved as $OUT/page.png. Skips (exit 0) when Chromium is not installed; not part of `make test`.
set -eu
BIN=${CROSSREC_BIN:-build/current/crossrec}
OUT=${OUT:-build/browser}
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
    echo "test-browser: skipped: chromium is not installed (apt-get install chromium)"
    exit 0
fi
# root (containers, CI) cannot use Chromium's sandbox
FLAGS="--headless --disable-gpu --virtual-time-budget=10000"
[ "$(id -u)" != 0 ] || FLAGS="$FLAGS --no-sandbox"

rm -rf "$OUT"
mkdir -p "$OUT"
"$BIN" synth -o "$OUT/data" --users 400 --items 240 --interactions 6000 --domains 3 --seed 7 >/dev/null
"$BIN" import "$OUT/data" -o "$OUT/d.crd" -q
"$BIN" split "$OUT/d.crd" --protocol cold-user --target music -o "$OUT/s.crs" -q
"$BIN" train "$OUT/s.crs" --model tower --epochs 2 --dim 32 -o "$OUT/tower.crm" -q
"$BIN" serve "$OUT/tower.crm" --port 0 >"$OUT/serve.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
URL=
for _ in $(seq 100); do
    URL=$(sed -n 's|.* on \(http://[0-9.:]*\)/ .*|\1|p' "$OUT/serve.log")
    [ -z "$URL" ] || break
    sleep 0.1
done
[ -n "$URL" ] || { echo "test-browser: the server did not start:"; cat "$OUT/serve.log"; exit 1; }

USER_ID=$(sed -n 2p "$OUT/data/interactions.tsv" | cut -f1)
HISTORY=$(sed -n '2,4p' "$OUT/data/items.tsv" | cut -f1 | paste -sd, -)
fail=0
check() {   # check NAME QUERY: the page for QUERY shows 3 columns of 10 recommendations, each with a title
    "$CHROMIUM" $FLAGS --dump-dom "$URL/?$2" >"$OUT/$1.html" 2>"$OUT/chromium.log" || true
    recs=$(grep -o 'class="rec"' "$OUT/$1.html" | wc -l)
    titled=$(grep -o '<div class="title">[^<]' "$OUT/$1.html" | wc -l)
    columns=$(grep -o '<div class="column">' "$OUT/$1.html" | wc -l)
    if [ "$recs" -eq 30 ] && [ "$titled" -eq 30 ] && [ "$columns" -eq 3 ]; then
        echo "test-browser: ok   $1: $columns domain columns, $recs recommendations with titles"
    else
        echo "test-browser: FAIL $1: $columns columns, $recs recommendations, $titled titles (page: $OUT/$1.html)"
        fail=1
    fi
}
check user "user=$USER_ID"
check history "history=$HISTORY"
"$CHROMIUM" $FLAGS --window-size=1280,1000 --screenshot="$OUT/page.png" "$URL/?user=$USER_ID" >/dev/null 2>>"$OUT/chromium.log" || true
if [ -s "$OUT/page.png" ]; then echo "test-browser: screenshot: $OUT/page.png"; else echo "test-browser: FAIL no screenshot"; fail=1; fi
exit $fail
