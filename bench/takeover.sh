#!/usr/bin/env bash
# Takeover benchmark (part of `make bench`; alone: `bash bench/takeover.sh BUILD_DIR`):
# the time and the table rows read to take one partition of a shared DynamoDB table over
# (dynalite on loopback, tests/dynalite), with the table holding 1, 10 and 100 times the
# partition's customers (bench/takeover_bench.cpp). "query" is what a takeover does (the
# partition's index), "scan" what it did before (the whole table, every writer's dedup ids).
# Target: the query's time and rows stay flat as the table grows (within 2x from 1x to
# 100x). Writes bench/out/takeover.json and prints a table.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: bash bench/takeover.sh BUILD_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
ROOT=$(pwd)
source "$ROOT/bench/lib.sh"
BENCH="$BUILD/takeover_bench"
DYNALITE="$ROOT/tests/dynalite/node_modules/.bin/dynalite"
[ -x "$BENCH" ] || { echo "bench: $BENCH not built (run: make build)" >&2; exit 1; }
[ -x "$DYNALITE" ] || { echo "bench: $DYNALITE missing (run: bash scripts/install-deps)" >&2; exit 1; }
OUT="$ROOT/bench/out"
mkdir -p "$OUT"
PARTITIONS=${PARTITIONS:-100}
PER_PARTITION=${PER_PARTITION:-100}
MULTIPLES=${MULTIPLES:-1,10,100}

# dynalite does not check signatures; the store still needs credentials to sign with.
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$DYNALITE" --port "$PORT" > "$OUT/takeover-dynalite.log" 2>&1 &
DYN_PID=$!
trap 'kill "$DYN_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null && break
  sleep 0.1
done

log "taking 1 of $PARTITIONS partitions ($PER_PARTITION customers) over, table x $MULTIPLES"
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)
"$BENCH" --endpoint "http://127.0.0.1:$PORT" --partitions "$PARTITIONS" --partition-customers "$PER_PARTITION" \
  --multiples "$MULTIPLES" > "$OUT/takeover.jsonl"
LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)

ROWS=""
FIRST_MS=""
LAST_MS=""
while read -r line; do
  m=$(jget "$line" multiple)
  ms=$(jget "$line" query_ms)
  [ -n "$FIRST_MS" ] || FIRST_MS=$ms
  LAST_MS=$ms
  ROWS+="| ${m}x ($(jget "$line" table_customers) customers) | $(jget "$line" partition_customers) | $ms ms, $(jget "$line" query_rows) rows | $(jget "$line" scan_ms) ms, $(jget "$line" scan_rows) rows |"$'\n'
done < "$OUT/takeover.jsonl"
FLAT=$(verdict "$LAST_MS <= 2 * $FIRST_MS + 50")

{
  echo "{\"partitions\": $PARTITIONS, \"partition_customers\": $PER_PARTITION, \"load_before\": $LOAD_BEFORE,"
  echo " \"load_after\": $LOAD_AFTER, \"flat\": \"$FLAT\", \"runs\": ["
  sed '$!s/$/,/' "$OUT/takeover.jsonl"
  echo "]}"
} > "$OUT/takeover.json"

echo
echo "Takeover of one partition (dynalite; load average $LOAD_BEFORE -> $LOAD_AFTER)"
echo
echo "| table | partition's customers | query (now) | scan (before) |"
echo "|---|---|---|---|"
printf '%s' "$ROWS"
echo
echo "query time flat in table size (100x within 2x of 1x, +50 ms): $FLAT"
