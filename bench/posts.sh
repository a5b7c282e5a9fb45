#!/usr/bin/env bash
# POSTs an import of each bundled sample uses, against the minimum the dry run plans
# (one per 100-ticket bulk create, one per single multipart create, one per later entry,
# one per final-state post, one per extra attachment post) plus inline image uploads.
# Run from the repository root after `cargo build --release`:  bench/posts.sh
set -u
BIN=./target/release/hfmigrate
export HAPPYFOX_API_KEY=ratio-key-1234 HAPPYFOX_AUTH_CODE=ratio-code-5678
for faults in "" "--fail-rate 0.05 --drop-rate 0.05 --seed 11" "--fail-rate 0.1 --drop-rate 0.1 --seed 11"; do
for m in zendesk freshdesk generic-csv; do
  rm -rf ${TMPDIR:-/tmp}/hfposts; mkdir -p ${TMPDIR:-/tmp}/hfposts
  $BIN sandbox --listen 127.0.0.1:${PORT:-28790} --post-per-min 0 --get-per-min 0 $faults >${TMPDIR:-/tmp}/hfposts/sb.log 2>&1 &
  SB=$!; sleep 0.5
  planned=$($BIN dry-run --mapping mappings/$m.yaml --input samples/$m/ --schema samples/happyfox-schema.json | sed -n 's/^API work: \([0-9]*\) POSTs.*/\1/p')
  for i in 1 2 3 4 5; do
    $BIN import --mapping mappings/$m.yaml --input samples/$m/ --journal ${TMPDIR:-/tmp}/hfposts/r.db --url http://127.0.0.1:${PORT:-28790} --schema samples/happyfox-schema.json --yes --post-per-min 100000 --get-per-min 100000 >${TMPDIR:-/tmp}/hfposts/imp.log 2>&1 && break
    grep -q "0 not yet created" ${TMPDIR:-/tmp}/hfposts/imp.log && grep -q " 0 left" ${TMPDIR:-/tmp}/hfposts/imp.log && break
  done
  used=$(curl -s -u $HAPPYFOX_API_KEY:$HAPPYFOX_AUTH_CODE http://127.0.0.1:${PORT:-28790}/_sandbox/stats | python3 -c 'import json,sys; s=json.load(sys.stdin); print(sum(n for k,by in s["requests"].items() if k.startswith("POST") for n in by.values()))')
  inline=$(curl -s -u $HAPPYFOX_API_KEY:$HAPPYFOX_AUTH_CODE http://127.0.0.1:${PORT:-28790}/_sandbox/stats | python3 -c 'import json,sys; s=json.load(sys.stdin); print(sum(n for k,by in s["requests"].items() if "inline" in k for n in by.values()))')
  python3 -c "print(f'$m faults=[${faults:-none}]: POSTs used $used, planned minimum $planned + $inline inline image upload(s): ratio {$used/($planned+$inline):.3f}')"
  kill $SB; wait $SB 2>/dev/null
done; done
