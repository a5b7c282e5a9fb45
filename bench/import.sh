#!/usr/bin/env bash
# Import benchmark against the sandbox process (prints figures; not a test).
#
#   bench/import.sh            # a, b and c
#   bench/import.sh a          # pacing: real 300 POST/min limit, 200-2000 ms latency, >= 3 min
#   bench/import.sh b          # throughput: limits off, 50 ms latency, perf profile of the journal
#   bench/import.sh c          # resume start-up on a 1,000,000-record journal
#
# Overrides: HFMIGRATE (binary), N_A (80000), SECS_A (200), N_B (200000), N_C (1000000),
# PORT (18765), DATA_A/DATA_B/DATA_C (reuse a generated export folder), TMPDIR. Needs python3, curl, sqlite3 and (for b) perf.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HFMIGRATE:-target/release/hfmigrate}
[ -x "$BIN" ] || cargo build --release
PORT=${PORT:-18765}
URL=http://127.0.0.1:$PORT
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hfimport.XXXXXX")
export HAPPYFOX_API_KEY=bench-key-123456 HAPPYFOX_AUTH_CODE=bench-code-654321
MAPPING=mappings/generic-csv.yaml
SCHEMA=samples/happyfox-schema.json
echo "work directory: $WORK"
# Ticket creation alone (no conversation, no final state), for the throughput and resume
# figures that are about creating tickets and the journal.
CREATE_ONLY="$WORK/creation-only.yaml"
sed '/^conversation:/,$d' "$MAPPING" >"$CREATE_ONLY"

SB=
start_sandbox() {
  "$BIN" sandbox --listen "127.0.0.1:$PORT" --schema "$SCHEMA" "$@" >"$WORK/sandbox.log" 2>&1 &
  SB=$!
  for _ in $(seq 100); do
    curl -sf -u "$HAPPYFOX_API_KEY:$HAPPYFOX_AUTH_CODE" "$URL/_sandbox/stats" >/dev/null && return
    sleep 0.1
  done
  echo "sandbox did not start"; cat "$WORK/sandbox.log"; exit 1
}
stop_sandbox() { [ -n "$SB" ] && kill "$SB" 2>/dev/null && wait "$SB" 2>/dev/null || true; SB=; }
trap stop_sandbox EXIT
stats() { curl -sf -u "$HAPPYFOX_API_KEY:$HAPPYFOX_AUTH_CODE" "$URL/_sandbox/stats"; }

gen() { # N DIR: the generic-CSV export only
  [ -f "$2/tickets.csv" ] || python3 bench/gen.py "$1" "$2" >/dev/null
  rm -f "$2/tickets.ndjson" "$2"/tickets-100k.*
}

# Runs an import and sends Ctrl-C once its plan is printed (validation and enqueueing done),
# so the next run of the same command starts from a filled journal. Prints the start-up time.
enqueue_then_stop() { # DIR JOURNAL extra-args...
  local dir=$1 journal=$2; shift 2
  python3 - "$BIN" "$dir" "$journal" "$URL" "$MAPPING" "$SCHEMA" "$@" <<'EOF'
import signal, subprocess, sys, time
bin_, d, j, url, mapping, schema, *extra = sys.argv[1:]
t = time.monotonic()
p = subprocess.Popen([bin_, "import", "--yes", "--mapping", mapping, "--input", d, "--journal", j,
                      "--url", url, "--schema", schema, *extra], stdout=subprocess.PIPE, text=True)
for line in p.stdout:
    if "bulk create(s) of up to" in line:
        print(f"  plan printed after {time.monotonic() - t:.2f} s")
        time.sleep(1)  # Ctrl-C is handled once sending has begun
        p.send_signal(signal.SIGINT)
        break
p.stdout.read(); p.wait()
EOF
}

journal_rate() { # JOURNAL: POSTs, span of sending, rate
  sqlite3 "$1" "SELECT count(*) || ' bulk creates, ' || sum(members) || ' tickets in ' ||
    printf('%.1f', (max(finished_at) - min(sent_at)) / 1000.0) || ' s: ' ||
    printf('%.1f', (count(*) - 1) * 60000.0 / (max(sent_at) - min(sent_at))) || ' POST/min (first to last send), ' ||
    printf('%.0f', sum(members) * 1000.0 / (max(finished_at) - min(sent_at))) || ' tickets/s'
    FROM batches WHERE state = 'finished'"
}

bench_a() {
  echo "== (a) pacing: sandbox at HappyFox's 300 POST/min, latency 200ms..2000ms, ceiling 240/min"
  echo "   tickets, then their conversations (final states), ${SECS_A:-200} s of sending"
  local d=${DATA_A:-$WORK/a}; gen "${N_A:-4000}" "$d"
  start_sandbox --latency 200ms..2000ms
  local t0; t0=$(date +%s.%N)
  set +e
  timeout --preserve-status -s INT "${SECS_A:-200}" "$BIN" import --yes --mapping "$MAPPING" --input "$d" \
    --journal "$WORK/a.db" --url "$URL" --schema "$SCHEMA" --progress-every 30s
  echo "  import exit code $? (4 = interrupted by the benchmark's timeout, as intended)"
  set -e
  local t1; t1=$(date +%s.%N)
  echo "  $(journal_rate "$WORK/a.db")"
  stats | python3 -c '
import json, sys
s = json.load(sys.stdin); span = float(sys.argv[2]) - float(sys.argv[1])
posts = sum(n for k, by in s["requests"].items() if k.startswith("POST") for st, n in by.items())
print(f"  all POSTs: {posts} in {span:.0f} s = {posts * 60 / span:.1f} POST/min ({posts * 60 / span / 240 * 100:.1f}% of the 240 ceiling, start-up included)")
print("  sandbox: POSTs by endpoint", {k: v for k, v in s["requests"].items() if k.startswith("POST")}, "| 429s served:", s["rate_limited"], "| lockouts:", s["lockouts"])' "$t0" "$t1"
  stop_sandbox
}

bench_b() {
  echo "== (b) throughput: sandbox limits off, latency 50ms, client ceilings raised"
  local d=${DATA_B:-$WORK/b}; gen "${N_B:-200000}" "$d"
  start_sandbox --latency 50ms --post-per-min 0 --get-per-min 0
  local args=(--post-per-min 1000000 --get-per-min 1000000 --progress-every 10s)
  MAPPING=$CREATE_ONLY enqueue_then_stop "$d" "$WORK/b.db" --post-per-min 60
  # The resumed run only sends: that is the phase profiled.
  perf record -F 499 -g --call-graph dwarf,32768 -o "$WORK/perf.data" -- \
    "$BIN" import --yes --mapping "$CREATE_ONLY" --input "$d" --journal "$WORK/b.db" \
    --url "$URL" --schema "$SCHEMA" "${args[@]}" 2>"$WORK/perf.log" || true
  echo "  $(journal_rate "$WORK/b.db")"
  perf report -i "$WORK/perf.data" --children --sort symbol --stdio 2>/dev/null \
    | grep -E '^ +[0-9.]+%' >"$WORK/perf.txt" || true
  echo "  share of the importer's CPU samples (inclusive), from perf:"
  awk '$4 ~ /^hfmigrate::journal::Journal::(begin_batch|finish_batch|next_pending|resend_batch|reject|upsert_pending|summary|open|unknown_batches|payload|finish_run)$/ {
         print "    " $1 "  " $4; v = $1; gsub("%", "", v); s += v }
       END { printf "    journal total: %.1f%%\n", s }' "$WORK/perf.txt"
  stop_sandbox
}

bench_c() {
  echo "== (c) resume start-up on a ${N_C:-1000000}-record journal"
  local d=${DATA_C:-$WORK/c}; gen "${N_C:-1000000}" "$d"
  start_sandbox --post-per-min 0 --get-per-min 0
  echo "  first run (validates and enqueues every record):"
  MAPPING=$CREATE_ONLY enqueue_then_stop "$d" "$WORK/c.db" --post-per-min 60
  echo "  journal: $(sqlite3 "$WORK/c.db" 'SELECT count(*) FROM records') records, $(du -h "$WORK/c.db" | cut -f1)"
  echo "  resumed run (same command; inputs unchanged, so not read again):"
  MAPPING=$CREATE_ONLY enqueue_then_stop "$d" "$WORK/c.db" --post-per-min 60
  stop_sandbox
}

case "${1:-all}" in
  a) bench_a ;;
  b) bench_b ;;
  c) bench_c ;;
  all) bench_a; bench_b; bench_c ;;
  *) echo "usage: $0 [a|b|c|all]"; exit 2 ;;
esac
