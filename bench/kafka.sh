#!/usr/bin/env bash
# The Kafka path (part of `make bench`; alone: `bash bench/kafka.sh BUILD_DIR`):
# one generated log (EVENTS events, 64 partitions) produced into `streamscore mock-kafka`
# (librdkafka's mock cluster on loopback) with `generate --kafka`, then
#   1. `run` in bounded mode from the topic (consumer, merge by event time, checkpoints);
#   2. `replay` of the same log from a file, for the ratio;
# and checks that both exports have the same features, last_event_time and as_of.
# The mock cluster runs on the same two cores, so the Kafka figure is a lower bound.
# Writes bench/out/kafka.json and prints a table.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: bash bench/kafka.sh BUILD_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STREAMSCORE="$BUILD/streamscore"
[ -x "$STREAMSCORE" ] || { echo "bench: $STREAMSCORE not built (run: make build)" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
OUT="$ROOT/bench/out"
mkdir -p "$OUT"
EVENTS=${EVENTS:-500000}
CUSTOMERS=${CUSTOMERS:-100000}
LOG="$OUT/kafka-events.jsonl"
MOCK=""
trap '[ -n "$MOCK" ] && kill "$MOCK" 2>/dev/null; rm -rf "$OUT"/state-kafka* "$OUT"/kafka-mock.out' EXIT

# No late events (--late-rate 0): where a late event lands among the other partitions'
# records is not in Kafka, so its customer's as_of can differ by a tick (docs/semantics.md §18).
GEN=(--customers "$CUSTOMERS" --events "$EVENTS" --days 45 --late-rate 0 --seed 42)
"$STREAMSCORE" generate "${GEN[@]}" --out "$LOG" >&2
# 64 partitions: the mock keeps at most 5 MB / 100,000 messages per partition.
"$STREAMSCORE" mock-kafka --brokers 3 --partitions 64 --topic customer-events > "$OUT/kafka-mock.out" 2>/dev/null &
MOCK=$!
BOOT=""
for _ in $(seq 1 100); do
  BOOT=$(head -n1 "$OUT/kafka-mock.out" 2>/dev/null || true)
  [ -n "$BOOT" ] && break
  sleep 0.05
done
[ -n "$BOOT" ] || { echo "bench: mock-kafka did not print its bootstrap servers" >&2; exit 1; }
log "producing $EVENTS events to $BOOT (generate --kafka)"
P_START=$(date +%s.%N)
"$STREAMSCORE" generate "${GEN[@]}" --kafka "$BOOT" --topic customer-events >&2
P_END=$(date +%s.%N)

log "run, bounded, from the topic"
rm -rf "$OUT/state-kafka"
K=$("$STREAMSCORE" run --json --top 0 --set source.kind=kafka --set kafka.bootstrap_servers="$BOOT" \
      --set source.exit_at_end=true --set state.path="$OUT/state-kafka" \
      --set dead_letter.path="$OUT/state-kafka-dl.jsonl" --set http.enabled=false)
log "  $K"
log "replay, from the file"
rm -rf "$OUT/state-kafka-replay"
R=$("$STREAMSCORE" replay --json --events "$LOG" --state "$OUT/state-kafka-replay")
log "  $R"
[ "$(jget "$K" read)" -eq "$EVENTS" ] || { echo "bench: the Kafka run did not read $EVENTS records" >&2; exit 1; }
strip() { sed 's/,"version":[0-9]*}$//'; }
"$STREAMSCORE" export --state "$OUT/state-kafka" | strip > "$OUT/state-kafka.export"
"$STREAMSCORE" export --state "$OUT/state-kafka-replay" | strip > "$OUT/state-kafka-replay.export"
if cmp -s "$OUT/state-kafka.export" "$OUT/state-kafka-replay.export"; then
  SAME=yes
else
  SAME=no
  DIFFERING=$(diff "$OUT/state-kafka.export" "$OUT/state-kafka-replay.export" | grep -c '^<' || true)
  log "the exports differ in $DIFFERING items; first:"
  diff "$OUT/state-kafka.export" "$OUT/state-kafka-replay.export" | head -n 4 >&2
fi
rm -f "$LOG"

PRODUCE_RATE=$(calc "sprintf(\"%.0f\", $EVENTS / ($P_END - $P_START))")
K_RATE=$(jget "$K" records_per_second)
R_RATE=$(jget "$R" records_per_second)
RATIO=$(calc "sprintf(\"%.2f\", $K_RATE / $R_RATE)")
LOAD_AVG=$(cut -d' ' -f1-3 /proc/loadavg)
printf '{"events": %s, "produce_records_per_second": %s, "kafka_run": %s, "replay": %s, "kafka_over_replay": %s, "same_export": "%s", "load_average_after": "%s"}\n' \
  "$EVENTS" "$PRODUCE_RATE" "$K" "$R" "$RATIO" "$SAME" "$LOAD_AVG" > "$OUT/kafka.json"
log "wrote bench/out/kafka.json"
echo
echo "Kafka path, $EVENTS events, 64 partitions, mock cluster on the same machine (load average after: $LOAD_AVG)"
echo
echo "| Step | Records/s |"
echo "|---|---:|"
echo "| generate --kafka (idempotent producer) | $PRODUCE_RATE |"
echo "| run, bounded, from the topic | $K_RATE |"
echo "| replay from the file | $R_RATE |"
echo "| Kafka run / replay | $RATIO |"
echo "| same features, last_event_time, as_of | $SAME |"
