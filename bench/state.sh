#!/usr/bin/env bash
# The durable-state part of `make bench` (see BENCHMARKS.md), run by bench/run.sh:
#   bash bench/state.sh BUILD_DIR
# 1. Recovery: the time `run` takes to load a state of about 1M customers at start
#    (1.25M simulated customers, of which about 1.03M have events).
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
trap 'rm -rf "$OUT"/state-* "$OUT"/days-* "$OUT"/recovery.jsonl "$OUT"/empty.jsonl' EXIT

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# --- 1. recovery of 1M customers --------------------------------------------------------
RECOVERY_GEN="streamscore generate --customers 1250000 --events 4000000 --days 30 --seed 7"
log "recovery: $RECOVERY_GEN"
"$STREAMSCORE" generate --customers 1250000 --events 4000000 --days 30 --seed 7 \
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
# Each run's peak RSS, and for the 100-day run a trace: RSS sampled every 0.25 s against
# the simulated day being read (from the daemon's read position in the time-ordered
# log), written to bench/out/rss-100d.csv. Once the 30-day window has filled, RSS must
# stay flat: the peak of days 70-100 is compared with the peak of days 40-70 (two equal
# stretches of the same log after the window filled; days 0-40 are shown too).
PER_DAY=100000
declare -A RSS RATE
for days in 10 40 100; do
  events=$((days * PER_DAY))
  log "days: $days simulated days, $events events, 20000 customers"
  "$STREAMSCORE" generate --customers 20000 --events "$events" --days "$days" --seed 9 \
    --out "$OUT/days-$days.jsonl" >&2
  size=$(wc -c < "$OUT/days-$days.jsonl")
  "$STREAMSCORE" run --json --top 0 --set source.path="$OUT/days-$days.jsonl" \
    --set state.path="$OUT/state-days-$days" --set dead_letter.path="$OUT/state-days-$days-dl.jsonl" \
    > "$OUT/days-$days.json" &
  pid=$!
  if [ "$days" = 100 ]; then
    echo "simulated_day,rss_mib" > "$OUT/rss-100d.csv"
    while kill -0 "$pid" 2>/dev/null; do
      fd=$(ls -l "/proc/$pid/fd" 2>/dev/null | awk -v f="$OUT/days-$days.jsonl" '$NF == f { print $9 }' | head -n1)
      rss=$(awk '/^VmRSS:/ { print int($2 / 1024) }' "/proc/$pid/status" 2>/dev/null || true)
      pos=$([ -n "$fd" ] && awk '/^pos:/ { print $2 }' "/proc/$pid/fdinfo/$fd" 2>/dev/null || true)
      [ -n "$rss" ] && [ -n "$pos" ] && echo "$(calc "sprintf(\"%.1f\", $pos / $size * $days)"),$rss" >> "$OUT/rss-100d.csv"
      sleep 0.25
    done
  fi
  wait "$pid"
  line=$(cat "$OUT/days-$days.json")
  [ "$(jget "$line" balanced)" = true ] || { echo "bench: run over $days days does not balance" >&2; exit 1; }
  RSS[$days]=$(calc "int($(jget "$line" peak_rss_kb) / 1024)")
  RATE[$days]=$(jget "$line" records_per_second)
  log "  peak RSS ${RSS[$days]} MiB, ${RATE[$days]} records/s"
  rm -rf "$OUT/state-days-$days"
done
peak_between() {  # peak RSS in the trace while reading simulated days (FROM, TO]
  awk -F, -v a="$1" -v b="$2" 'NR > 1 && $1 > a && $1 <= b && $2 > m { m = $2 } END { print m + 0 }' \
    "$OUT/rss-100d.csv"
}
TRACE_FILL=$(peak_between 0 40)    # the 30-day window fills
TRACE_EARLY=$(peak_between 40 70)  # steady state, first half
TRACE_LATE=$(peak_between 70 100)  # steady state, second half
RSS_RATIO=$(calc "sprintf(\"%.2f\", $TRACE_LATE / ($TRACE_EARLY > 0 ? $TRACE_EARLY : 1))")

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

T_REC=$(verdict "$REC_S < 10")
T_RSS=$(verdict "$RSS_RATIO <= 1.10")
T_BF=$(verdict "$BF_RATIO >= 0.9 && $BF_RATIO <= 1.1")

cat > "$OUT/state.json" <<EOF
{
  "recovery": {"command": "$RECOVERY_GEN; streamscore replay; streamscore run (empty input)", "customers": $CUSTOMERS, "recovery_seconds": $REC_S, "peak_rss_mib": $REC_RSS},
  "rss_by_days": {"events_per_day": $PER_DAY, "customers": 20000, "peak_10": ${RSS[10]}, "peak_40": ${RSS[40]}, "peak_100": ${RSS[100]}, "trace_peak_days_0_40": $TRACE_FILL, "trace_peak_days_40_70": $TRACE_EARLY, "trace_peak_days_70_100": $TRACE_LATE, "ratio_70_100_over_40_70": $RSS_RATIO},
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
| peak RSS of \`run\`, 10 / 40 / 100 days at $PER_DAY events/day | ${RSS[10]} / ${RSS[40]} / ${RSS[100]} MiB | - | - |
| 100-day run, peak RSS while reading days 0-40 / 40-70 / 70-100 (bench/out/rss-100d.csv) | $TRACE_FILL / $TRACE_EARLY / $TRACE_LATE MiB | days 70-100 <= 1.10 x days 40-70 | $T_RSS ($RSS_RATIO) |
| \`run\` records/s, 10 / 40 / 100 days (checkpoints every 2 s) | ${RATE[10]} / ${RATE[40]} / ${RATE[100]} | - | - |
| backfill writes/s with --max-writes-per-sec $LIMIT ($BF_SLICES slices, $BF_WRITES writes) | $BF_RATE ($(calc "sprintf(\"%.1f%%\", $BF_RATIO * 100)")) | within 10% | $T_BF |
EOF
