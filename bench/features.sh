#!/usr/bin/env bash
# Point-in-time rows (part of `make bench`; alone: `bash bench/features.sh BUILD_DIR LOG`):
# `streamscore features` on LOG (the bench log: 100k customers over 45 days from
# 2025-01-01) with a spine of SPINE_ROWS rows (random customers and instants in the
# log's span, a label each), against `replay --threads 2` of the same log: the issue's
# target is features at >= 0.8x replay's rate. Writes bench/out/features.json, prints a table.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: bash bench/features.sh BUILD_DIR LOG" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
LOG=$2
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STREAMSCORE="$BUILD/streamscore"
[ -x "$STREAMSCORE" ] || { echo "bench: $STREAMSCORE not built (run: make build)" >&2; exit 1; }
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
OUT="$ROOT/bench/out"
mkdir -p "$OUT"
SPINE_ROWS=${SPINE_ROWS:-100000}
CUSTOMERS=${CUSTOMERS:-100000}
SPINE="$OUT/features-spine.jsonl"
trap 'rm -rf "$OUT"/state-features "$OUT"/features-rows.jsonl "$SPINE"' EXIT

# Days 0..44 from 2025-01-01 (January has 31 days), a fixed seed.
awk -v n="$SPINE_ROWS" -v customers="$CUSTOMERS" 'BEGIN {
  srand(7)
  for (i = 0; i < n; i++) {
    d = int(rand() * 45); s = int(rand() * 86400)
    month = d < 31 ? 1 : 2; day = d < 31 ? d + 1 : d - 30
    printf "{\"customer_id\":\"C%07d\",\"at\":\"2025-%02d-%02dT%02d:%02d:%02dZ\",\"label\":%d}\n",
      1 + int(rand() * customers), month, day, int(s / 3600), int(s % 3600 / 60), s % 60, i % 2
  }
}' > "$SPINE"

cat "$LOG" > /dev/null  # the page cache, for both
log "replay --threads 2"
rm -rf "$OUT/state-features"
R=$("$STREAMSCORE" replay --json --events "$LOG" --state "$OUT/state-features" --threads 2)
log "  $R"
rm -rf "$OUT/state-features"
log "features --threads 2, $SPINE_ROWS spine rows"
F=$("$STREAMSCORE" features --json --events "$LOG" --spine "$SPINE" --out "$OUT/features-rows.jsonl" --threads 2)
log "  $F"
[ "$(jget "$F" rows)" -eq "$SPINE_ROWS" ] || { echo "bench: features wrote $(jget "$F" rows) rows" >&2; exit 1; }
[ "$(jget "$F" read)" -eq "$(jget "$R" read)" ] || { echo "bench: features and replay read different logs" >&2; exit 1; }

R_RATE=$(jget "$R" records_per_second)
F_RATE=$(jget "$F" records_per_second)
RATIO=$(calc "sprintf(\"%.2f\", $F_RATE / $R_RATE)")
VERDICT=$(verdict "$F_RATE >= 0.8 * $R_RATE")
printf '{"replay": %s, "features": %s, "features_over_replay": %s, "target_at_least_0_8": "%s"}\n' \
  "$R" "$F" "$RATIO" "$VERDICT" > "$OUT/features.json"
log "wrote bench/out/features.json"
cat <<EOF

Point-in-time rows: \`features --threads 2\` with a spine of $SPINE_ROWS rows against \`replay --threads 2\`, same log

| Run | Records/s | Seconds |
|---|---:|---:|
| replay --threads 2 | $R_RATE | $(jget "$R" seconds) |
| features --threads 2 ($(jget "$F" rows_with_item) rows with an item) | $F_RATE | $(jget "$F" seconds) |

| Target | Measured | Result |
|---|---:|:---:|
| features >= 0.8x replay's rate | ${RATIO}x | $VERDICT |
EOF
