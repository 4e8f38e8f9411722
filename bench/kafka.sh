#!/usr/bin/env bash
# The Kafka path (part of `make bench`; alone: `bash bench/kafka.sh BUILD_DIR`):
# one generated log (EVENTS events) produced with `generate --kafka` into `streamscore
# mock-kafka` (librdkafka's mock cluster on loopback, 3 brokers), once with 64 and once
# with 128 partitions (PARTITIONS). For each topic, in the same sitting:
#   1. `run` in bounded mode from the topic (consumer, merge by event time, checkpoints);
#   2. `replay` of the same log from a file;
#   3. kcat, a plain librdkafka consumer that only reads the topic (`kcat -C -e -o beginning`);
# each under /usr/bin/time (CPU = user + sys, peak RSS). It checks that the run and kcat
# read every record and that the run's export has the same features, last_event_time
# and as_of as the replay's, then prints the three ratios of issue 19's target 3:
#   CPU per record of the run / (replay's + kcat's) <= 1.5,
#   run's rate / replay's >= 0.5,
#   run's peak RSS <= replay's + 256 MiB.
# The mock cluster runs in another process on the same two cores: its CPU is nobody's.
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
command -v kcat > /dev/null || { echo "bench: kcat not found (run: make deps)" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
OUT="$ROOT/bench/out"
mkdir -p "$OUT"
# The mock keeps at most 5 MiB or 100,000 messages per partition and drops older ones. The
# customers are skewed: at 64 partitions the fullest gets about 4.8 MiB of 1M events, so
# 750,000 leave it room (generate warns, and the checks below fail, if any was dropped).
EVENTS=${EVENTS:-750000}
CUSTOMERS=${CUSTOMERS:-100000}
PARTITIONS=${PARTITIONS:-64 128}
LOG="$OUT/kafka-events.jsonl"
TIMES="$OUT/kafka-time.txt"
MOCK=""
stop_mock() { if [ -n "$MOCK" ]; then kill "$MOCK" 2>/dev/null || true; wait "$MOCK" 2>/dev/null || true; MOCK=""; fi; }
trap 'stop_mock; rm -rf "$OUT"/state-kafka* "$OUT"/kafka-mock.out "$TIMES" "$LOG"' EXIT

# /usr/bin/time's figures of the last timed command: CPU seconds (user + sys), peak RSS in MiB.
timed() { /usr/bin/time -f '%U %S %M' -o "$TIMES" "$@"; }
cpu_seconds() { awk '{ printf "%.2f", $1 + $2 }' "$TIMES"; }
rss_mib() { awk '{ printf "%.0f", $3 / 1024 }' "$TIMES"; }

start_mock() {  # $1: partitions; sets MOCK and BOOT
  "$STREAMSCORE" mock-kafka --brokers 3 --partitions "$1" --topic customer-events > "$OUT/kafka-mock.out" 2>/dev/null &
  MOCK=$!
  BOOT=""
  for _ in $(seq 1 100); do
    BOOT=$(head -n1 "$OUT/kafka-mock.out" 2>/dev/null || true)
    [ -n "$BOOT" ] && break
    sleep 0.05
  done
  [ -n "$BOOT" ] || { echo "bench: mock-kafka did not print its bootstrap servers" >&2; exit 1; }
}

same_export() {  # "yes" when the run's export equals the replay's but for the version
  local strip='s/,"version":[0-9]*}$//'
  "$STREAMSCORE" export --state "$OUT/state-kafka" | sed "$strip" > "$OUT/state-kafka.export"
  "$STREAMSCORE" export --state "$OUT/state-kafka-replay" | sed "$strip" > "$OUT/state-kafka-replay.export"
  if cmp -s "$OUT/state-kafka.export" "$OUT/state-kafka-replay.export"; then
    echo yes
  else
    log "the exports differ in $(diff "$OUT/state-kafka.export" "$OUT/state-kafka-replay.export" | grep -c '^<' || true) items; first:"
    diff "$OUT/state-kafka.export" "$OUT/state-kafka-replay.export" | head -n 4 >&2
    echo no
  fi
}

# No late events (--late-rate 0): where a late event lands among the other partitions'
# records is not in Kafka, so its customer's as_of can differ by a tick (docs/semantics.md §18).
GEN=(--customers "$CUSTOMERS" --events "$EVENTS" --days 45 --late-rate 0 --seed 42)
"$STREAMSCORE" generate "${GEN[@]}" --out "$LOG" >&2
LINES=$(wc -l < "$LOG")

JSON_PARTS=""
TABLE=""
ALL_MET=yes
for P in $PARTITIONS; do
  start_mock "$P"
  log "$P partitions: producing $EVENTS events to $BOOT (generate --kafka)"
  P_START=$(date +%s.%N)
  "$STREAMSCORE" generate "${GEN[@]}" --kafka "$BOOT" --topic customer-events >&2
  PRODUCE_RATE=$(calc "sprintf(\"%.0f\", $EVENTS / ($(date +%s.%N) - $P_START))")

  log "$P partitions: run, bounded, from the topic"
  rm -rf "$OUT/state-kafka"
  K=$(timed "$STREAMSCORE" run --json --top 0 --set source.kind=kafka --set kafka.bootstrap_servers="$BOOT" \
        --set source.exit_at_end=true --set state.path="$OUT/state-kafka" \
        --set dead_letter.path="$OUT/state-kafka-dl.jsonl" --set http.enabled=false)
  K_CPU=$(cpu_seconds); K_RSS=$(rss_mib)
  log "  $K (CPU $K_CPU s)"
  [ "$(jget "$K" read)" -eq "$LINES" ] || { echo "bench: the Kafka run read $(jget "$K" read) of $LINES records" >&2; exit 1; }

  log "$P partitions: replay, from the file"
  rm -rf "$OUT/state-kafka-replay"
  R=$(timed "$STREAMSCORE" replay --json --events "$LOG" --state "$OUT/state-kafka-replay")
  R_CPU=$(cpu_seconds); R_RSS=$(rss_mib)
  log "  $R (CPU $R_CPU s)"

  log "$P partitions: kcat, a plain consumer, reads the topic"
  C_READ=$(timed kcat -C -b "$BOOT" -t customer-events -e -q -o beginning -f '%o\n' | wc -l)
  C_CPU=$(cpu_seconds)
  [ "$C_READ" -eq "$LINES" ] || { echo "bench: kcat read $C_READ of $LINES records" >&2; exit 1; }
  stop_mock

  SAME=$(same_export)
  [ "$SAME" = yes ] || ALL_MET=no
  K_RATE=$(jget "$K" records_per_second)
  R_RATE=$(jget "$R" records_per_second)
  # CPU per record in microseconds.
  K_US=$(calc "sprintf(\"%.3f\", $K_CPU * 1e6 / $LINES)")
  R_US=$(calc "sprintf(\"%.3f\", $R_CPU * 1e6 / $LINES)")
  C_US=$(calc "sprintf(\"%.3f\", $C_CPU * 1e6 / $LINES)")
  CPU_RATIO=$(calc "sprintf(\"%.2f\", $K_US / ($R_US + $C_US))")
  RATE_RATIO=$(calc "sprintf(\"%.2f\", $K_RATE / $R_RATE)")
  RSS_OVER=$((K_RSS - R_RSS))
  CPU_MET=$(verdict "$CPU_RATIO <= 1.5")
  RATE_MET=$(verdict "$RATE_RATIO >= 0.5")
  RSS_MET=$(verdict "$RSS_OVER <= 256")
  for met in "$CPU_MET" "$RATE_MET" "$RSS_MET"; do [ "$met" = PASS ] || ALL_MET=no; done
  JSON_PARTS+="${JSON_PARTS:+, }\"$P\": {\"produce_records_per_second\": $PRODUCE_RATE, \"kafka_run\": $K, \"replay\": $R, \
\"cpu_seconds\": {\"kafka_run\": $K_CPU, \"replay\": $R_CPU, \"kcat\": $C_CPU}, \
\"cpu_us_per_record\": {\"kafka_run\": $K_US, \"replay\": $R_US, \"kcat\": $C_US}, \
\"peak_rss_mib\": {\"kafka_run\": $K_RSS, \"replay\": $R_RSS}, \
\"cpu_ratio\": $CPU_RATIO, \"rate_ratio\": $RATE_RATIO, \"rss_over_replay_mib\": $RSS_OVER, \
\"cpu_target\": \"$CPU_MET\", \"rate_target\": \"$RATE_MET\", \"rss_target\": \"$RSS_MET\", \"same_export\": \"$SAME\"}"
  TABLE+="| $P | $PRODUCE_RATE | $K_RATE | $R_RATE | $K_US / $R_US / $C_US | $CPU_RATIO $CPU_MET | $RATE_RATIO $RATE_MET | $K_RSS / $R_RSS ($RSS_OVER) $RSS_MET | $SAME |"$'\n'
done

LOAD_AVG=$(cut -d' ' -f1-3 /proc/loadavg)
printf '{"events": %s, "partitions": {%s}, "all_targets_met": "%s", "load_average_after": "%s"}\n' \
  "$LINES" "$JSON_PARTS" "$ALL_MET" "$LOAD_AVG" > "$OUT/kafka.json"
log "wrote bench/out/kafka.json"
echo
echo "Kafka path, $LINES records, mock cluster (3 brokers) on the same machine (load average after: $LOAD_AVG)"
echo "CPU: user + sys of each process, in us per record; targets: CPU ratio <= 1.5, rate ratio >= 0.5, RSS <= replay's + 256 MiB"
echo
echo "| Partitions | generate --kafka rec/s | run rec/s | replay rec/s | CPU us/rec run / replay / kcat | run / (replay + kcat) CPU | run / replay rate | peak RSS MiB run / replay (+) | same export |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---|"
printf '%s' "$TABLE"
echo
echo "all targets met: $ALL_MET"
