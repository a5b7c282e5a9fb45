#!/usr/bin/env bash
# Dry-run benchmark: hfmigrate vs a Python script vs jq on the same synthetic export.
#   bench/dry-run.sh              # 1,000,000 tickets (also runs hfmigrate on the first 100k)
#   N=100000 bench/dry-run.sh     # quicker
# Run from the repository root. See bench/README.md.
set -uo pipefail

N="${N:-1000000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DATA="bench/data"
SCHEMA="samples/happyfox-schema.json"
BIN="${HFMIGRATE:-target/release/hfmigrate}"
CSV_MAPPING="${CSV_MAPPING:-mappings/generic-csv.yaml}"
NDJSON_MAPPING="${NDJSON_MAPPING:-bench/ndjson.yaml}"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/hfbench.XXXXXX")"
RESULTS="$OUT/results.tsv"
: >"$RESULTS"

say() { printf '%s\n' "$*" >&2; }

# --- tools ---------------------------------------------------------------------------------
need_pkgs=()
command -v jq >/dev/null 2>&1 || need_pkgs+=(jq)
[ -x /usr/bin/time ] && /usr/bin/time -v true >/dev/null 2>&1 || need_pkgs+=(time)
command -v python3 >/dev/null 2>&1 || need_pkgs+=(python3)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    say "installing ${need_pkgs[*]} with apt-get"
    if ! $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null 2>&1; then
        # package lists missing or stale: update only now
        $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null \
            || { say "error: could not install ${need_pkgs[*]}"; exit 1; }
    fi
fi

# --- data ----------------------------------------------------------------------------------
data_ok() {
    [ -f "$DATA/meta.json" ] || return 1
    python3 - "$DATA" "$N" <<'EOF' || return 1
import json, os, sys
d, n = sys.argv[1], int(sys.argv[2])
m = json.load(open(os.path.join(d, "meta.json")))
ok = m["n"] == n and all(os.path.exists(os.path.join(d, f)) and os.path.getsize(os.path.join(d, f)) == s
                         for f, s in m["files"].items())
sys.exit(0 if ok else 1)
EOF
}
if data_ok; then
    say "data: reusing $DATA (N=$N)"
else
    say "data: generating $N tickets into $DATA (CSV and NDJSON) ..."
    rm -f "$DATA"/meta.json
    /usr/bin/time -f "data: generated in %e s" python3 bench/gen.py "$N" "$DATA" || { say "error: generation failed"; exit 1; }
fi
CSV="$DATA/tickets.csv"
NDJSON="$DATA/tickets.ndjson"
say "data: $(du -h "$CSV" | cut -f1) CSV, $(du -h "$NDJSON" | cut -f1) NDJSON"

# --- measuring -------------------------------------------------------------------------------
# run LABEL INPUT RECORDS -- command...   (appends a row to $RESULTS; stdout/stderr kept in $OUT)
run() {
    local label="$1" input="$2" records="$3"
    shift 4
    local log="$OUT/$(echo "$label-$(basename "$input")" | tr ' /' '__')"
    say "run: $label on $input"
    # Each run writes over a gigabyte; without a sync, the kernel writes it back while the
    # next run is being timed, and that run pays for it (the 100k runs after the 1M ones
    # took twice their CPU time).
    sync
    # Each run also starts with its input in the page cache: the outputs of the runs
    # before it (several gigabytes) push inputs out of it (`fincore` found 0.7 of the
    # 1.2 GB CSV cached after one bench), and a run that reads part of its input from the
    # disk pays for it in system time. Reading it once untimed makes every tool start alike.
    cat "$input" >/dev/null
    /usr/bin/time -v -o "$log.time" "$@" >"$log.out" 2>"$log.err"
    local rc=$?
    local wall rss cpu
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$log.time")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log.time")
    # CPU seconds (user + system): unlike wall time, barely affected by other load on the
    # machine, so runs on a busy machine can still be compared per CPU-second.
    cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$log.time")
    # h:mm:ss or m:ss.cc -> seconds
    wall=$(echo "$wall" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
    if [ "$rc" -ne 0 ] && ! { [ "$label" = hfmigrate ] && [ "$rc" -eq 3 ]; }; then
        say "  failed (exit $rc): $(tail -n 3 "$log.err" | tr '\n' ' ')"
        printf '%s\t%s\t%s\tFAILED(exit %s)\t-\t-\t-\t-\n' "$label" "$input" "$records" "$rc" >>"$RESULTS"
        return 1
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$input" "$records" "$wall" \
        "$(awk -v n="$records" -v s="$wall" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')" \
        "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')" "$cpu" \
        "$(awk -v n="$records" -v s="$cpu" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }')" >>"$RESULTS"
}

# settle FILE: after a run, its bulk output (over a gigabyte at 1M records) is counted into
# FILE.lines and deleted. Kept, it fills the page cache, and the next run pays for evicting
# it in system time: a 1M NDJSON dry run after a 1M CSV one took 2.7-4.9 s of system time
# with the CSV run's output kept and 0.95 s with it deleted (user time the same, 12.0 s).
settle() {
    [ -f "$1" ] || return 0
    wc -l <"$1" >"$1.lines"
    rm -f "$1"
}

# --- hfmigrate -------------------------------------------------------------------------------
# Other work on the machine slows hfmigrate (which uses every core) more than the one-core
# baselines; the load averages printed with the table say how busy the machine was.
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
HF_OK=1
if [ ! -x "$BIN" ]; then
    say "build: $BIN missing, running cargo build --release once"
    cargo build --release >"$OUT/cargo-build.log" 2>&1 || { say "build failed (see $OUT/cargo-build.log): skipping hfmigrate"; HF_OK=0; }
fi
hf() {  # hf MAPPING INPUT RECORDS
    local mapping="$1" input="$2" records="$3"
    if [ ! -f "$mapping" ]; then
        say "skip: $mapping not found, hfmigrate on $input not measured"
        printf 'hfmigrate\t%s\t%s\tSKIPPED(no %s)\t-\t-\t-\t-\n' "$input" "$records" "$mapping" >>"$RESULTS"
        return
    fi
    local rep="$OUT/report-$(basename "$input")"
    mkdir -p "$rep"
    # HFMIGRATE_STAGE_TIMES: the dry run prints CPU time per stage (read, build, report) to
    # stderr, shown under the table.
    run hfmigrate "$input" "$records" -- env HFMIGRATE_STAGE_TIMES=1 "$BIN" dry-run --mapping "$mapping" --input "$input" --schema "$SCHEMA" --report "$rep" \
        || say "  hfmigrate dry-run did not complete; it may not be implemented yet. Log: $OUT/"
    settle "$rep/payloads.ndjson"
}
if [ "$HF_OK" -eq 1 ]; then
    hf "$CSV_MAPPING" "$CSV" "$N"
    hf "$NDJSON_MAPPING" "$NDJSON" "$N"
    if [ -f "$DATA/tickets-100k.csv" ]; then  # flat RSS: same binary on the first 100k records
        hf "$CSV_MAPPING" "$DATA/tickets-100k.csv" 100000
        hf "$NDJSON_MAPPING" "$DATA/tickets-100k.ndjson" 100000
    fi
else
    printf 'hfmigrate\t%s\t%s\tSKIPPED(no binary)\t-\t-\t-\t-\n' "$CSV" "$N" >>"$RESULTS"
fi

# --- baselines -------------------------------------------------------------------------------
run python "$CSV" "$N" -- python3 bench/baseline.py csv "$CSV" "$SCHEMA" "$OUT/python-csv.jsonl"
settle "$OUT/python-csv.jsonl"
run python "$NDJSON" "$N" -- python3 bench/baseline.py ndjson "$NDJSON" "$SCHEMA" "$OUT/python-ndjson.jsonl"
settle "$OUT/python-ndjson.jsonl"
LOOKUP="$(jq -c -f bench/lookup.jq "$SCHEMA")"
run jq "$NDJSON" "$N" -- sh -c 'jq -c --argjson L "$1" -f bench/baseline.jq "$2" > "$3"' sh "$LOOKUP" "$NDJSON" "$OUT/jq-ndjson.jsonl"
settle "$OUT/jq-ndjson.jsonl"
if [ -f "$OUT/python-ndjson.jsonl.lines" ] && [ -f "$OUT/jq-ndjson.jsonl.lines" ]; then
    say "check: python and jq wrote $(cat "$OUT/python-ndjson.jsonl.lines") and $(cat "$OUT/jq-ndjson.jsonl.lines") payloads"
fi

# --- table -----------------------------------------------------------------------------------
echo
printf '%-10s %-32s %9s %9s %11s %12s %8s %13s\n' tool input records seconds records/s "peak RSS MB" "CPU s" "records/CPU-s"
printf '%-10s %-32s %9s %9s %11s %12s %8s %13s\n' ---- ----- ------- ------- --------- ----------- ----- -------------
while IFS=$'\t' read -r tool input records secs rate rss cpu cpurate; do
    printf '%-10s %-32s %9s %9s %11s %12s %8s %13s\n' "$tool" "$input" "$records" "$secs" "$rate" "$rss" "$cpu" "$cpurate"
done <"$RESULTS"
echo
rate_of() { awk -F'\t' -v t="$1" -v i="$2" '$1 == t && $2 == i && $5 ~ /^[0-9]+$/ { print $5 }' "$RESULTS"; }
ratio() {
    local a b
    a=$(rate_of "$1" "$2"); b=$(rate_of "$3" "$4")
    if [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt 0 ]; then
        awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1fx", a / b }'
    else
        printf 'n/a'
    fi
}
echo "hfmigrate/python (CSV):    $(ratio hfmigrate "$CSV" python "$CSV")     target >= 10x"
echo "hfmigrate/python (NDJSON): $(ratio hfmigrate "$NDJSON" python "$NDJSON")     target >= 10x"
echo "hfmigrate/jq (NDJSON):     $(ratio hfmigrate "$NDJSON" jq "$NDJSON")     target >= 8x"
if [ "$N" -gt 100000 ]; then echo "peak RSS target: < 100 MB, and the same at 100k and $N records (compare the hfmigrate rows)"; else echo "peak RSS target: < 100 MB (run with N=1000000 to compare 100k and 1M)"; fi
for err in "$OUT"/hfmigrate-*.err; do
    [ -f "$err" ] && grep -q '^stage times' "$err" || continue
    echo "hfmigrate $(basename "$err" .err | sed 's/^hfmigrate-//'): $(sed -n '/^stage times/,/^  total/p' "$err")"
done
# System time is mostly reading the export and writing the payloads, much the same for every
# tool; it weighs more in the ratio of the tool with less user time.
for t in "$OUT"/*.time; do
    [ -f "$t" ] || continue
    echo "$(basename "$t" .time): $(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "user %s s, system %s s", u, s }' "$t")"
done
echo "load average (1, 5, 15 min) at start: ${LOAD_START:-?}; at end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
echo "logs and reports (bulk outputs counted, then deleted; see settle): $OUT"
