#!/usr/bin/env bash
# Long-horizon load simulation (see BENCHMARKS.md, "Load simulation"):
#   bash bench/simulate.sh BUILD_DIR [DAYS] [CUSTOMERS] [EVENTS_PER_DAY]
# defaults: 90 simulated days, 1,000,000 customers, 100,000 events a day (9M records).
# Runs `streamscore stress --scenario steady` unpaced, on a RocksDB state, with a
# checkpoint at every simulated day, and writes one row per simulated day to
# bench/out/simulation.csv: records, ticks, item versions written per tick, tick
# evaluation time (per tick and per written item), dedup ids held, RSS. Then plots it
# with gnuplot to bench/out/simulation.svg and prints the figures BENCHMARKS.md quotes.
# The invariant check is skipped here (--no-verify): it would keep all 9M events in
# memory; `stress` runs it on shorter streams (tests/test_stress.cpp, make test).
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: bash bench/simulate.sh BUILD_DIR [DAYS] [CUSTOMERS] [EVENTS_PER_DAY]" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
DAYS=${2:-90}
CUSTOMERS=${3:-1000000}
PER_DAY=${4:-100000}
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT="$ROOT/bench/out"
mkdir -p "$OUT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
command -v gnuplot >/dev/null || { echo "bench: gnuplot missing (scripts/install-deps)" >&2; exit 1; }

EVENTS=$((DAYS * PER_DAY))
CMD="streamscore stress --scenario steady --rate 0 --days $DAYS --customers $CUSTOMERS --events $EVENTS --batch-size 16384 --no-verify --json --daily-csv bench/out/simulation.csv"
log "simulate: $CMD"
SUMMARY=$("$BUILD/streamscore" stress --scenario steady --rate 0 --days "$DAYS" --customers "$CUSTOMERS" \
  --events "$EVENTS" --batch-size 16384 --no-verify --json --daily-csv "$OUT/simulation.csv")
log "  $SUMMARY"

# Figures: the window fills during the first 30 days; after that RSS, the dedup set and
# the work per tick must stay flat, and the tick time per written item must not grow
# with the number of customers seen.
CSV="$OUT/simulation.csv"
col_max() { awk -F, -v c="$1" -v lo="$2" -v hi="$3" 'NR > 1 && $1 >= lo && $1 < hi && $c > m { m = $c } END { print m + 0 }' "$CSV"; }
col_median() {
  awk -F, -v c="$1" -v lo="$2" -v hi="$3" 'NR > 1 && $1 >= lo && $1 < hi { print $c }' "$CSV" | sort -g |
    awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : 0) }'
}
HALF=$(( (DAYS + 30) / 2 ))
RSS_A=$(col_max 10 30 "$HALF");   RSS_B=$(col_max 10 "$HALF" "$DAYS")
DEDUP_A=$(col_max 9 30 "$HALF");  DEDUP_B=$(col_max 9 "$HALF" "$DAYS")
IPT_FILL=$(col_median 5 1 30);    IPT_FULL=$(col_median 5 30 "$DAYS")
UPI_FILL=$(col_median 8 1 30);    UPI_FULL=$(col_median 8 30 "$DAYS")
UPT_FILL=$(col_median 7 1 30);    UPT_FULL=$(col_median 7 30 "$DAYS")

gnuplot <<GNUPLOT
set terminal svg size 900,720 dynamic font "sans,11"
set output "$OUT/simulation.svg"
set datafile separator ","
set key autotitle columnhead top left
set multiplot layout 3,1 title "streamscore load simulation: $DAYS simulated days, $CUSTOMERS customers, $PER_DAY events/day"
set xlabel "simulated day"
set grid
set ylabel "MiB / million ids"
plot "$CSV" using 1:10 with lines lw 2 title "RSS (MiB)", \
     "$CSV" using 1:(\$9 / 1e6 * 100) with lines lw 2 title "dedup ids held (x 10^4)"
set ylabel "per tick"
plot "$CSV" using 1:5 with lines lw 2 title "items written per tick", \
     "$CSV" using 1:7 with lines lw 2 title "tick evaluation (us per tick)"
set ylabel "us"
set yrange [0:*]
plot "$CSV" using 1:8 with lines lw 2 title "tick evaluation per written item (us)"
unset multiplot
GNUPLOT
log "wrote bench/out/simulation.csv and bench/out/simulation.svg"

cat <<MD

Load simulation (bench/simulate.sh: $CMD):

| Figure | days 1-30 (window filling) | days 30-$DAYS (window full) |
|---|---:|---:|
| peak RSS, MiB (days 30-$HALF / $HALF-$DAYS) | $RSS_A | $RSS_B |
| dedup ids held, max (days 30-$HALF / $HALF-$DAYS) | $DEDUP_A | $DEDUP_B |
| items written per tick, median | $IPT_FILL | $IPT_FULL |
| tick evaluation, us per tick, median | $UPT_FILL | $UPT_FULL |
| tick evaluation, us per written item, median | $UPI_FILL | $UPI_FULL |

Whole run: $(jget "$SUMMARY" records) records in $(jget "$SUMMARY" seconds) s ($(jget "$SUMMARY" records_per_second) records/s), peak RSS $(calc "int($(jget "$SUMMARY" peak_rss_kb) / 1024)") MiB.
MD
