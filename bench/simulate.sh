#!/usr/bin/env bash
# Long-horizon load simulation (see BENCHMARKS.md, "Load simulation"):
#   bash bench/simulate.sh BUILD_DIR [DAYS] [CUSTOMERS] [EVENTS_PER_DAY]
# defaults: 90 simulated days, 1,000,000 customers, 100,000 events a day (9M records).
# Runs `streamscore stress --scenario steady` unpaced, on a RocksDB state, with a
# checkpoint at every simulated day (and every 2 s, as the daemon), and writes one row per
# simulated day to bench/out/simulation.csv: records, ticks, item versions written per
# tick, tick evaluation time (per tick and per written item), dedup ids and customers
# held, RSS (now and peak so far). Then plots it with gnuplot to bench/out/simulation.svg
# and prints the figures BENCHMARKS.md quotes. Takes about 6 minutes on 2 shared cores.
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
CMD="streamscore stress --scenario steady --rate 0 --days $DAYS --customers $CUSTOMERS --events $EVENTS --batch-size 16384 --checkpoint-ms 2000 --no-verify --json --daily-csv bench/out/simulation.csv"
# PLOT_ONLY=1: redraw the plot and the tables from the last run's CSV and summary.
if [ "${PLOT_ONLY:-0}" != 1 ]; then
  log "simulate: $CMD"
  "$BUILD/streamscore" stress --scenario steady --rate 0 --days "$DAYS" --customers "$CUSTOMERS" \
    --events "$EVENTS" --batch-size 16384 --checkpoint-ms 2000 --no-verify --json \
    --daily-csv "$OUT/simulation.csv" > "$OUT/simulation.json"
fi
SUMMARY=$(cat "$OUT/simulation.json")
log "  $SUMMARY"

# Figures: the window fills during the first 30 days; after that RSS, the dedup set and
# the work per tick must stay flat, and the tick time per written item must not grow
# with the number of customers seen.
CSV="$OUT/simulation.csv"
col_max() { awk -F, -v c="$1" -v lo="$2" -v hi="$3" 'NR > 1 && $1 >= lo && $1 < hi && $c + 0 > m { m = $c + 0 } END { print m + 0 }' "$CSV"; }
col_median() {
  awk -F, -v c="$1" -v lo="$2" -v hi="$3" 'NR > 1 && $1 >= lo && $1 < hi { print $c }' "$CSV" | sort -g |
    awk '{ v[NR] = $1 } END { print (NR ? v[int((NR + 1) / 2)] : 0) }'
}
HALF=$(( (DAYS + 30) / 2 ))
for c in 5 7 8; do
  eval "FILL_$c=\$(col_median $c 1 30)"
  eval "EARLY_$c=\$(col_median $c 30 $HALF)"
  eval "LATE_$c=\$(col_median $c $HALF $DAYS)"
done
for c in 9 10 11 12; do
  eval "MAXFILL_$c=\$(col_max $c 0 30)"
  eval "MAXEARLY_$c=\$(col_max $c 30 $HALF)"
  eval "MAXLATE_$c=\$(col_max $c $HALF $DAYS)"
done

gnuplot <<GNUPLOT
set terminal svg size 900,720 dynamic font "sans,11"
set output "$OUT/simulation.svg"
set datafile separator ","
set key autotitle columnhead top left
set multiplot layout 3,1 title "streamscore load simulation: $DAYS simulated days, $CUSTOMERS customers, $PER_DAY events/day"
set xlabel "simulated day"
set grid
set ylabel "MiB; thousands"
plot "$CSV" using 1:11 with lines lw 2 title "RSS at the day's checkpoint (MiB)", \
     "$CSV" using 1:(\$9 / 10000) with lines lw 2 title "dedup ids held (x 10^4)", \
     "$CSV" using 1:(\$10 / 1000) with lines lw 2 title "customers held (x 10^3)"
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

| Per simulated day | days 0-30 (window filling) | days 30-$HALF | days $HALF-$DAYS |
|---|---:|---:|---:|
| customers held, max | $MAXFILL_10 | $MAXEARLY_10 | $MAXLATE_10 |
| dedup ids held, max | $MAXFILL_9 | $MAXEARLY_9 | $MAXLATE_9 |
| RSS at the day's checkpoint, max (MiB) | $MAXFILL_11 | $MAXEARLY_11 | $MAXLATE_11 |
| peak RSS so far (MiB) | $MAXFILL_12 | $MAXEARLY_12 | $MAXLATE_12 |
| items written per tick, median | $FILL_5 | $EARLY_5 | $LATE_5 |
| tick evaluation, us per tick, median | $FILL_7 | $EARLY_7 | $LATE_7 |
| tick evaluation, us per written item, median | $FILL_8 | $EARLY_8 | $LATE_8 |

Whole run: $(jget "$SUMMARY" records) records in $(jget "$SUMMARY" seconds) s ($(jget "$SUMMARY" records_per_second) records/s, $(jget "$SUMMARY" checkpoints) checkpoints), peak RSS $(calc "int($(jget "$SUMMARY" peak_rss_kb) / 1024)") MiB.
MD
