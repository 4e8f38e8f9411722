#!/usr/bin/env bash
# The DuckDB peer (see BENCHMARKS.md), run at the end of `make bench` by bench/run.sh:
#   bash bench/duckdb/peer.sh BUILD_DIR LOG
# On the same log: `streamscore replay` (timed by its own summary), `streamscore export`,
# then bench/duckdb/features.mjs computes the same 30-day features in batch with DuckDB
# (@duckdb/node-api, installed into bench/duckdb/node_modules on first use) and checks
# them against the export. Prints a markdown table and writes bench/out/duckdb-LOGNAME.json.
# Exits 1 when DuckDB and streamscore disagree on any customer.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: bash bench/duckdb/peer.sh BUILD_DIR LOG" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
LOG=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT="$ROOT/bench/out"
PEER="$ROOT/bench/duckdb"
mkdir -p "$OUT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
trap 'rm -rf "$OUT/state-duckdb-peer" "$OUT/duckdb-export.jsonl"' EXIT

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "bench: $tool missing (scripts/install-deps)" >&2; exit 1; }
done
if [ ! -d "$PEER/node_modules/@duckdb/node-api" ]; then
  log "duckdb: npm install (bench/duckdb/node_modules)"
  npm install --prefix "$PEER" --no-audit --no-fund --loglevel=error >&2
fi

log "duckdb peer: streamscore replay + export"
rm -rf "$OUT/state-duckdb-peer"
sync
REPLAY=$("$BUILD/streamscore" replay --json --events "$LOG" --state "$OUT/state-duckdb-peer")
"$BUILD/streamscore" export --state "$OUT/state-duckdb-peer" --out "$OUT/duckdb-export.jsonl"
log "  $REPLAY"
log "duckdb peer: node bench/duckdb/features.mjs"
rc=0
DUCK=$(node "$PEER/features.mjs" --events "$LOG" --export "$OUT/duckdb-export.jsonl" --json) || rc=$?
log "  $DUCK"
[ -n "$DUCK" ] || { echo "bench: the DuckDB peer failed (exit $rc)" >&2; exit 1; }

SS_S=$(jget "$REPLAY" seconds)
DUCK_S=$(jget "$DUCK" seconds)
RATIO=$(calc "sprintf(\"%.1f\", $DUCK_S / $SS_S)")
MISMATCHES=$(jget "$DUCK" mismatches)
cat > "$OUT/duckdb-$(basename "$LOG" .jsonl).json" <<JSON
{"log": "$(basename "$LOG")", "streamscore_replay": $REPLAY, "duckdb": $DUCK, "duckdb_over_streamscore": $RATIO}
JSON

cat <<MD

DuckDB peer (bench/duckdb/peer.sh, on $(basename "$LOG")):

| Figure | streamscore \`replay\` | DuckDB batch (@duckdb/node-api, $(jget "$DUCK" duckdb_threads) threads) |
|---|---:|---:|
| log -> 30-day features, seconds | $SS_S | $DUCK_S (read $(jget "$DUCK" load_seconds) + features $(jget "$DUCK" features_seconds)) |
| ratio DuckDB / streamscore | 1 | $RATIO |
| customers whose features differ | - | $MISMATCHES of $(jget "$DUCK" export_items) |
MD
if [ "$rc" -ne 0 ] || [ "$MISMATCHES" != 0 ]; then
  echo "bench: DuckDB and streamscore disagree" >&2
  exit 1
fi
