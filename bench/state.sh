#!/usr/bin/env bash
# The durable-state part of `make bench` (see BENCHMARKS.md), run by bench/run.sh:
#   bash bench/state.sh BUILD_DIR
# 1. Recovery: the time `run` takes to load a state of 1M customers at start.
# 2. Memory bounded by event time: peak RSS of the daemon (`run` on a file, with
#    checkpoints) over 10, 40 and 100 simulated days at the same daily rate.
# 3. Backfill throttle: --max-writes-per-sec against the write rate measured.
# Prints a markdown table and writes bench/out/state.json.
set -euo pipefail

BUILD=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STREAMSCORE="$BUILD/streamscore"
OUT="$ROOT/bench/out"
mkdir -p "$OUT"
trap 'rm -rf "$OUT"/state-* "$OUT"/days-*.jsonl "$OUT"/recovery.jsonl "$OUT"/empty.jsonl' EXIT

log() { echo "bench: $*" >&2; }
jget() {
  local v
  v=$(printf '%s\n' "$1" | grep -o "\"$2\":[^,}]*" | head -n1 | cut -d: -f2-)
  [ -n "$v" ] || { echo "bench: no \"$2\" in: $1" >&2; exit 1; }
  printf '%s' "$v"
}
calc() { awk "BEGIN { print $1 }"; }

# --- 1. recovery of 1M customers --------------------------------------------------------
RECOVERY_GEN="streamscore generate --customers 1000000 --events 3000000 --days 30 --seed 7"
log "recovery: $RECOVERY_GEN"
"$STREAMSCORE" generate --customers 1000000 --events 3000000 --days 30 --seed 7 \
  --out "$OUT/recovery.jsonl" >&2
"$STREAMSCORE" replay --json --events "$OUT/recovery.jsonl" --state "$OUT/state-recovery" >/dev/null
: > "$OUT/empty.jsonl"
sync
REC=$("$STREAMSCORE" run --json --top 0 --set source.path="$OUT/empty.jsonl" \
  --set state.path="$OUT/state-recovery" --set dead_letter.path="$OUT/state-recovery-dl.jsonl")
CUSTOMERS=$(jget "$REC" customers)
REC_S=$(jget "$REC" recovery_seconds)
REC_RSS=$(calc "int($(jget "$REC" peak_rss_kb) / 1024)")
log "  $CUSTOMERS customers loaded in $REC_S s"
rm -rf "$OUT/state-recovery"

# --- 2. RSS over 10, 40, 100 days at 100k events a day --------------------------------------
PER_DAY=100000
declare -A RSS RATE
for days in 10 40 100; do
  events=$((days * PER_DAY))
  log "days: $days simulated days, $events events, 20000 customers"
  "$STREAMSCORE" generate --customers 20000 --events "$events" --days "$days" --seed 9 \
    --out "$OUT/days-$days.jsonl" >&2
  line=$("$STREAMSCORE" run --json --top 0 --set source.path="$OUT/days-$days.jsonl" \
    --set state.path="$OUT/state-days-$days" --set dead_letter.path="$OUT/state-days-$days-dl.jsonl")
  [ "$(jget "$line" balanced)" = true ] || { echo "bench: run over $days days does not balance" >&2; exit 1; }
  RSS[$days]=$(calc "int($(jget "$line" peak_rss_kb) / 1024)")
  RATE[$days]=$(jget "$line" records_per_second)
  log "  peak RSS ${RSS[$days]} MiB, $(jget "$line" records_per_second) records/s"
  rm -rf "$OUT/state-days-$days"
done
RSS_RATIO=$(calc "sprintf(\"%.2f\", ${RSS[100]} / ${RSS[40]})")

# --- 3. backfill throttle -----------------------------------------------------------------
# The limit is set below what this machine writes unthrottled (about 30k item writes/s
# with 6h slices), so that the throttle is what sets the pace.
LIMIT=20000
log "backfill: 10 days, --slice 6h --max-writes-per-sec $LIMIT"
BF=$("$STREAMSCORE" backfill --json --events "$OUT/days-10.jsonl" --state "$OUT/state-backfill" \
  --slice 6h --max-writes-per-sec "$LIMIT" | tail -n1)
BF_RATE=$(jget "$BF" writes_per_second)
BF_SLICES=$(jget "$BF" slices)
BF_WRITES=$(jget "$BF" item_writes)
BF_RATIO=$(calc "sprintf(\"%.3f\", $BF_RATE / $LIMIT)")
rm -rf "$OUT/state-backfill"

verdict() { if [ "$(calc "($1) ? 1 : 0")" = 1 ]; then echo PASS; else echo FAIL; fi; }
T_REC=$(verdict "$REC_S < 10")
T_RSS=$(verdict "$RSS_RATIO < 1.15")
T_BF=$(verdict "$BF_RATIO >= 0.9 && $BF_RATIO <= 1.1")

cat > "$OUT/state.json" <<EOF
{
  "recovery": {"command": "$RECOVERY_GEN; streamscore replay; streamscore run (empty input)", "customers": $CUSTOMERS, "recovery_seconds": $REC_S, "peak_rss_mib": $REC_RSS},
  "rss_by_days": {"events_per_day": $PER_DAY, "customers": 20000, "10": ${RSS[10]}, "40": ${RSS[40]}, "100": ${RSS[100]}, "ratio_100_over_40": $RSS_RATIO},
  "backfill_throttle": {"limit": $LIMIT, "measured": $BF_RATE, "ratio": $BF_RATIO, "slices": $BF_SLICES, "item_writes": $BF_WRITES},
  "targets": {"recovery_1M_customers_a_few_seconds": "$T_REC", "rss_does_not_grow_with_log_length": "$T_RSS", "throttle_within_10pct": "$T_BF"}
}
EOF
log "wrote bench/out/state.json"

cat <<EOF

Durable state (bench/state.sh):

| Figure | Measured | Target | Result |
|---|---:|---|:---:|
| state load at start, $CUSTOMERS customers | $REC_S s (peak RSS $REC_RSS MiB) | a few seconds | $T_REC |
| peak RSS of \`run\`, 10 / 40 / 100 days at $PER_DAY events/day | ${RSS[10]} / ${RSS[40]} / ${RSS[100]} MiB | 100 days no more than 40 (+15%) | $T_RSS ($RSS_RATIO) |
| \`run\` records/s, 10 / 40 / 100 days (checkpoints every 2 s) | ${RATE[10]} / ${RATE[40]} / ${RATE[100]} | - | - |
| backfill writes/s with --max-writes-per-sec $LIMIT ($BF_SLICES slices, $BF_WRITES writes) | $BF_RATE ($(calc "sprintf(\"%.1f%%\", $BF_RATIO * 100)")) | within 10% | $T_BF |
EOF
