#!/usr/bin/env bash
# make_seeds.sh — (re)makes the seed inputs of the file-reader fuzz targets in tests/fuzz/corpus/: a dataset,
# splits, a model of every type, training states, a text encoder and a .npy, all from the small synthetic
# dataset that cr_fuzz_base_dataset() (tests/fuzz/fuzz.h) makes with the same options. Run from the repository
# root after `make`: bash tests/fuzz/make_seeds.sh [path/to/crossrec]
set -euo pipefail
C=${1:-build/current/crossrec}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
$C synth -o "$t/base" --users 40 --items 30 --interactions 400 --domains 2 >/dev/null
$C import "$t/base" -o "$t/data.crd" >/dev/null
$C split "$t/data.crd" --protocol cold-user --target music -o "$t/cold.crs" >/dev/null
$C split "$t/data.crd" --protocol warm --sampled 5 -o "$t/warm.crs" >/dev/null
$C split "$t/data.crd" --protocol new-domain --target music --few-shot 1 -o "$t/new.crs" >/dev/null
for m in pop itemknn bpr als cmf emcdr ptupcdr; do
    $C train "$t/cold.crs" --model $m --dim 4 --epochs 2 --quiet -o "$t/$m.crm" >/dev/null
done
$C train "$t/cold.crs" --model tower --dim 4 --epochs 1 --text-buckets 64 --quiet -o "$t/tower.crm" >/dev/null
$C train "$t/cold.crs" --model tower --dim 4 --epochs 1 --text-buckets 64 --pool transformer --user-id --quiet \
    -o "$t/tower-tfm.crm" >/dev/null
$C train "$t/cold.crs" --model bpr --dim 4 --epochs 2 --threads 1 --checkpoint "$t/bpr1.crt" --pause-after 1 --quiet \
    -o "$t/ignored.crm" >/dev/null
$C train "$t/cold.crs" --model bpr --dim 4 --epochs 2 --threads 1 --checkpoint "$t/bpr2.crt" --quiet -o "$t/ignored.crm" >/dev/null
$C pretrain "$t/data.crd" --dim 4 --epochs 1 --text-buckets 64 --valid 5 --threads 1 -o "$t/textenc.crm" >/dev/null
$C embed "$t/data.crd" --method hash-tfidf --dim 4 -o "$t/items.npy" >/dev/null

keep() {   # keep TARGET FILE...
    mkdir -p "tests/fuzz/corpus/fuzz_$1"
    local target=$1
    shift
    for f in "$@"; do cp "$f" "tests/fuzz/corpus/fuzz_$target/seed-$(basename "$f")"; done
}
keep dataset "$t/data.crd"
keep split "$t/cold.crs" "$t/warm.crs" "$t/new.crs"
keep model "$t"/{pop,itemknn,bpr,als,cmf,emcdr,ptupcdr,tower,tower-tfm}.crm
keep state "$t/bpr1.crt" "$t/bpr2.crt"
keep textenc "$t/textenc.crm"
keep npy "$t/items.npy"
ls -l tests/fuzz/corpus/fuzz_{dataset,split,model,state,textenc,npy}
