#!/usr/bin/env bash
# Partitioned backfill benchmark (part of `make bench`; alone: `bash bench/scale.sh BUILD_DIR`):
# PARTS processes `backfill --part K/PARTS --max-writes-per-sec LIMIT` write one DynamoDB
# table at the same time (dynalite on loopback, tests/dynalite), against one log. Reports
# each part's item writes per second against its limit, the parts together against
# PARTS x LIMIT, and whether the table equals a single unthrottled backfill's.
# Target: --max-writes-per-sec honoured within 10%.
# Then what a checkpoint costs: a daemon (`run`) reads COST_DAYS days of COST_EVENTS_PER_DAY
# events per customer a day, then one more day; the second run's capacity (the WCUs
# DynamoDB reports, streamscore_dynamodb_consumed_wcu_total) over its item writes is the
# cost of a changed item of 30 days of buckets. Target: at most 3 WCUs per changed item.
# Writes bench/out/scale.json.
# dynalite serves about a thousand requests a second on one core, so the limits are set
# well below that: this measures the throttle, not DynamoDB.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: bash bench/scale.sh BUILD_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
ROOT=$(pwd)
source "$ROOT/bench/lib.sh"
STREAMSCORE="$BUILD/streamscore"
DYNALITE="$ROOT/tests/dynalite/node_modules/.bin/dynalite"
[ -x "$STREAMSCORE" ] || { echo "bench: $STREAMSCORE not built (run: make build)" >&2; exit 1; }
[ -x "$DYNALITE" ] || { echo "bench: $DYNALITE missing (run: bash scripts/install-deps)" >&2; exit 1; }
OUT="$ROOT/bench/out"
mkdir -p "$OUT"
PARTS=${PARTS:-3}
LIMIT=${LIMIT:-120}
CUSTOMERS=${CUSTOMERS:-600}
EVENTS=${EVENTS:-30000}
DAYS=${DAYS:-10}
COST_DAYS=${COST_DAYS:-30}
COST_EVENTS_PER_DAY=${COST_EVENTS_PER_DAY:-5}

# dynalite does not check signatures; the store still needs credentials to sign with.
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$DYNALITE" --port "$PORT" > "$OUT/scale-dynalite.log" 2>&1 &
DYN_PID=$!
trap 'kill "$DYN_PID" 2>/dev/null || true' EXIT
ENDPOINT="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
  "$STREAMSCORE" dynamodb create-table --endpoint "$ENDPOINT" --table parts > /dev/null 2>&1 && break
  sleep 0.1
done
"$STREAMSCORE" dynamodb create-table --endpoint "$ENDPOINT" --table single > /dev/null
"$STREAMSCORE" dynamodb create-table --endpoint "$ENDPOINT" --table cost > /dev/null
table() { echo "--set state.backend=dynamodb --set state.endpoint=$ENDPOINT --set state.table=$1"; }

"$STREAMSCORE" generate --customers "$CUSTOMERS" --events "$EVENTS" --days "$DAYS" --seed 42 \
  --out "$OUT/scale-events.jsonl" 2> /dev/null
log "single backfill (unthrottled) of $EVENTS events, $CUSTOMERS customers, $DAYS days"
# shellcheck disable=SC2046
"$STREAMSCORE" backfill --json --events "$OUT/scale-events.jsonl" --slice 1d $(table single) \
  --dead-letter "$OUT/scale-single-dl.jsonl" > /dev/null

log "$PARTS parts at once, --max-writes-per-sec $LIMIT each"
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
START=$(date +%s.%N)
PIDS=()
for k in $(seq 1 "$PARTS"); do
  # shellcheck disable=SC2046
  "$STREAMSCORE" backfill --json --events "$OUT/scale-events.jsonl" --slice 1d $(table parts) \
    --part "$k/$PARTS" --max-writes-per-sec "$LIMIT" --dead-letter "$OUT/scale-part-$k-dl.jsonl" \
    > "$OUT/scale-part-$k.json" 2> "$OUT/scale-part-$k.err" &
  PIDS+=($!)
done
for p in "${PIDS[@]}"; do wait "$p"; done
WALL=$(calc "$(date +%s.%N) - $START")
LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)

ROWS=""
PARTS_JSON=""
TOTAL_WRITES=0
WORST=0  # largest |ratio - 1| over the parts
for k in $(seq 1 "$PARTS"); do
  line=$(tail -n1 "$OUT/scale-part-$k.json")
  rate=$(jget "$line" writes_per_second)
  writes=$(jget "$line" item_writes)
  ratio=$(calc "sprintf(\"%.3f\", $rate / $LIMIT)")
  TOTAL_WRITES=$((TOTAL_WRITES + writes))
  WORST=$(awk "BEGIN { d = $ratio - 1; if (d < 0) d = -d; print (d > $WORST ? d : $WORST) }")
  ROWS+="| part $k/$PARTS: item writes/s ($writes writes) | $rate ($(calc "sprintf(\"%.1f%%\", $ratio * 100)") of $LIMIT) | within 10% | $(verdict "$ratio >= 0.9 && $ratio <= 1.1") |"$'\n'
  PARTS_JSON+="${PARTS_JSON:+, }{\"part\": $k, \"item_writes\": $writes, \"writes_per_second\": $rate, \"ratio\": $ratio}"
done
AGG=$(calc "sprintf(\"%.1f\", $TOTAL_WRITES / $WALL)")
AGG_RATIO=$(calc "sprintf(\"%.3f\", $AGG / ($PARTS * $LIMIT))")
# shellcheck disable=SC2046
"$STREAMSCORE" export $(table single) > "$OUT/scale-single.jsonl"
# shellcheck disable=SC2046
"$STREAMSCORE" export $(table parts) > "$OUT/scale-parts.jsonl"
SAME=$(cmp -s "$OUT/scale-single.jsonl" "$OUT/scale-parts.jsonl" && echo yes || echo no)

# A figure of the text summary's lines: "items written N" or the store line's "name N".
summary_figure() { grep -o "$2 *[0-9]*" "$1" | head -n1 | grep -o '[0-9]*$'; }
log "checkpoint cost: $CUSTOMERS customers, $COST_EVENTS_PER_DAY events a day each, $COST_DAYS days then one more"
COST_EVENTS=$((CUSTOMERS * COST_EVENTS_PER_DAY * (COST_DAYS + 1)))
"$STREAMSCORE" generate --customers "$CUSTOMERS" --events "$COST_EVENTS" --days $((COST_DAYS + 1)) --seed 43 \
  --out "$OUT/scale-cost-all.jsonl" 2> /dev/null
WARM=$((COST_EVENTS * COST_DAYS / (COST_DAYS + 1)))
head -n "$WARM" "$OUT/scale-cost-all.jsonl" > "$OUT/scale-cost-events.jsonl"
cost_run() {
  # shellcheck disable=SC2046
  "$STREAMSCORE" run --set source.path="$OUT/scale-cost-events.jsonl" --set http.enabled=false \
    --set dead_letter.path="$OUT/scale-cost-dl.jsonl" $(table cost) > "$OUT/scale-cost-$1.txt" 2>&1
}
cost_run warm
tail -n +"$((WARM + 1))" "$OUT/scale-cost-all.jsonl" >> "$OUT/scale-cost-events.jsonl"
cost_run day
COST_ITEMS=$(summary_figure "$OUT/scale-cost-day.txt" "items written")
COST_WCU=$(summary_figure "$OUT/scale-cost-day.txt" "dynamodb_consumed_wcu")
COST_RCU=$(summary_figure "$OUT/scale-cost-day.txt" "dynamodb_consumed_rcu")
if [ -z "$COST_ITEMS" ] || [ -z "$COST_WCU" ] || [ "$COST_ITEMS" -eq 0 ]; then
  echo "bench: no item writes or consumed capacity in $OUT/scale-cost-day.txt" >&2
  exit 1
fi
WCU_PER_ITEM=$(calc "sprintf(\"%.2f\", $COST_WCU / $COST_ITEMS)")
RCU_PER_ITEM=$(calc "sprintf(\"%.2f\", ${COST_RCU:-0} / $COST_ITEMS)")
T_COST=$(verdict "$WCU_PER_ITEM <= 3")
T_PARTS=$(verdict "$WORST <= 0.1")
T_SAME=$(verdict "\"$SAME\" == \"yes\"")

cat > "$OUT/scale.json" <<EOF
{
  "command": "bash bench/scale.sh BUILD_DIR (PARTS=$PARTS LIMIT=$LIMIT CUSTOMERS=$CUSTOMERS EVENTS=$EVENTS DAYS=$DAYS)",
  "parts": [$PARTS_JSON],
  "together": {"item_writes": $TOTAL_WRITES, "wall_seconds": $WALL, "writes_per_second": $AGG, "ratio_to_parts_x_limit": $AGG_RATIO},
  "export_equals_single_backfill": "$SAME",
  "checkpoint_cost": {"changed_items": $COST_ITEMS, "consumed_wcu": $COST_WCU, "wcu_per_changed_item": $WCU_PER_ITEM, "rcu_per_changed_item": $RCU_PER_ITEM},
  "load_average_before_after": [$LOAD_BEFORE, $LOAD_AFTER],
  "targets": {"throttle_within_10pct_each_part": "$T_PARTS", "same_table_as_one_backfill": "$T_SAME", "at_most_3_wcu_per_changed_item": "$T_COST"}
}
EOF
log "wrote bench/out/scale.json"
rm -f "$OUT"/scale-*.jsonl "$OUT"/scale-cost-*.txt

cat <<EOF

Partitioned backfill into DynamoDB (bench/scale.sh, dynalite, load $LOAD_BEFORE -> $LOAD_AFTER):

| Figure | Measured | Target | Result |
|---|---:|---|:---:|
${ROWS}| $PARTS parts together ($TOTAL_WRITES writes in $WALL s) | $AGG/s ($(calc "sprintf(\"%.1f%%\", $AGG_RATIO * 100)") of $PARTS x $LIMIT) | - | - |
| table after the parts = table after one backfill | $SAME | identical | $T_SAME |
| checkpoint: WCUs per changed item ($COST_WCU WCUs, $COST_ITEMS items; RCUs $RCU_PER_ITEM) | $WCU_PER_ITEM | <= 3 | $T_COST |
EOF
