#!/usr/bin/env bash
# Compressed logs (part of `make bench`; alone: `bash bench/compressed.sh BUILD_DIR [LOG]`):
# `replay --threads 2` of the bench log plain, as .zst (zstd -3), as .gz (gzip -6) and as
# the .zst object in S3 (s3rver on loopback, tests/s3rver), taken in turns (plain, zst,
# gz, s3-zst; ROUNDS times) so that the load of the machine falls on each alike. The cost is CPU time (user + sys, from /usr/bin/time), summed over the
# rounds (streamscore's only: s3rver's own CPU is not counted); wall times are shown too.
# Checks that the four exports are the same.
# Target: a .zst replay costs at most 1.3x the plain one's CPU time.
# Writes bench/out/compressed.json and prints a table.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: bash bench/compressed.sh BUILD_DIR [LOG]" >&2
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
LOG=${2:-$OUT/events-10m.jsonl}
[ -f "$LOG" ] || { echo "bench: $LOG missing (make bench generates it)" >&2; exit 1; }
ROUNDS=${ROUNDS:-2}
mkdir -p "$OUT"
STATE="$OUT/state-compressed"
S3RVER="$ROOT/tests/s3rver/node_modules/.bin/s3rver"
[ -x "$S3RVER" ] || { echo "bench: $S3RVER missing (run scripts/install-deps)" >&2; exit 1; }
S3PID=""
trap '[ -n "$S3PID" ] && kill "$S3PID" 2>/dev/null; rm -rf "$STATE" "$OUT"/compressed-time.txt "$OUT"/s3rver' EXIT

# Compressed once, reused while newer than the log.
for fmt in zst gz; do
  if [ ! "$LOG.$fmt" -nt "$LOG" ]; then
    log "compressing $LOG to .$fmt"
    case $fmt in
      zst) zstd -q -3 -c < "$LOG" > "$LOG.zst.tmp" ;;
      gz) gzip -6 -c < "$LOG" > "$LOG.gz.tmp" ;;
    esac
    mv "$LOG.$fmt.tmp" "$LOG.$fmt"
  fi
done
# The .zst log as an S3 object, served by s3rver (which checks the key id it signs with).
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN
S3PORT=$((20000 + RANDOM % 20000))
rm -rf "$OUT/s3rver"
"$S3RVER" -d "$OUT/s3rver" -a 127.0.0.1 -p "$S3PORT" --configure-bucket bench --silent > /dev/null 2>&1 &
S3PID=$!
S3=http://127.0.0.1:$S3PORT
put() { curl -sf -T "$1" --aws-sigv4 aws:amz:us-east-1:s3 --user S3RVER:S3RVER \
          -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$S3/bench/$2" > /dev/null; }
for _ in $(seq 1 100); do put /dev/null ready && break; sleep 0.1; done
log "uploading $LOG.zst to s3rver"
put "$LOG.zst" events.jsonl.zst || { echo "bench: upload to s3rver failed" >&2; exit 1; }
cat "$LOG" "$LOG.zst" "$LOG.gz" "$OUT"/s3rver/bench/* > /dev/null 2>&1 || true  # the page cache, alike

FORMATS="plain zst gz s3-zst"
declare -A CPU WALL EXPORT
for fmt in $FORMATS; do CPU[$fmt]=0; WALL[$fmt]=0; done
for round in $(seq 1 "$ROUNDS"); do
  for fmt in $FORMATS; do
    args=(--events "$LOG.$fmt")
    [ "$fmt" = plain ] && args=(--events "$LOG")
    [ "$fmt" = s3-zst ] && args=(--events s3://bench/events.jsonl.zst --set "s3.endpoint=$S3")
    rm -rf "$STATE"
    sync
    log "replay of the $fmt log, round $round"
    /usr/bin/time -f '%U %S %e' -o "$OUT/compressed-time.txt" \
      "$STREAMSCORE" replay --json "${args[@]}" --state "$STATE" --threads 2 > /dev/null
    read -r user sys wall < "$OUT/compressed-time.txt"
    CPU[$fmt]=$(calc "${CPU[$fmt]} + $user + $sys")
    WALL[$fmt]=$(calc "${WALL[$fmt]} + $wall")
    if [ "$round" -eq "$ROUNDS" ]; then
      EXPORT[$fmt]=$("$STREAMSCORE" export --state "$STATE" | md5sum | cut -d' ' -f1)
    fi
  done
done
for fmt in zst gz s3-zst; do
  [ "${EXPORT[$fmt]}" = "${EXPORT[plain]}" ] || { echo "bench: the $fmt replay exports otherwise" >&2; exit 1; }
done

RATIO_ZST=$(calc "sprintf(\"%.2f\", ${CPU[zst]} / ${CPU[plain]})")
RATIO_GZ=$(calc "sprintf(\"%.2f\", ${CPU[gz]} / ${CPU[plain]})")
WALL_ZST=$(calc "sprintf(\"%.2f\", ${WALL[zst]} / ${WALL[plain]})")
WALL_GZ=$(calc "sprintf(\"%.2f\", ${WALL[gz]} / ${WALL[plain]})")
RATIO_S3=$(calc "sprintf(\"%.2f\", ${CPU[s3-zst]} / ${CPU[plain]})")
WALL_S3=$(calc "sprintf(\"%.2f\", ${WALL[s3-zst]} / ${WALL[plain]})")
T_ZST=$(verdict "$RATIO_ZST <= 1.3")
per_round() { calc "sprintf(\"%.2f\", $1 / $ROUNDS)"; }
size_mib() { calc "sprintf(\"%.0f\", $(wc -c < "$1") / 1048576)"; }

cat > "$OUT/compressed.json" <<EOF
{
  "log": "$(basename "$LOG")", "rounds": $ROUNDS,
  "cpu_seconds_per_replay": {"plain": $(per_round "${CPU[plain]}"), "zst": $(per_round "${CPU[zst]}"), "gz": $(per_round "${CPU[gz]}"), "s3_zst": $(per_round "${CPU[s3-zst]}")},
  "wall_seconds_per_replay": {"plain": $(per_round "${WALL[plain]}"), "zst": $(per_round "${WALL[zst]}"), "gz": $(per_round "${WALL[gz]}"), "s3_zst": $(per_round "${WALL[s3-zst]}")},
  "cpu_ratio": {"zst_over_plain": $RATIO_ZST, "gz_over_plain": $RATIO_GZ, "s3_zst_over_plain": $RATIO_S3},
  "wall_ratio": {"zst_over_plain": $WALL_ZST, "gz_over_plain": $WALL_GZ, "s3_zst_over_plain": $WALL_S3},
  "targets": {"zst_cpu_at_most_1.3x_plain": "$T_ZST"}
}
EOF

cat <<EOF

### Compressed logs: replay --threads 2 of the bench log ($ROUNDS rounds, in turns)

| input | size | CPU s (user+sys) per replay | wall s per replay | CPU vs plain | wall vs plain |
|---|---|---|---|---|---|
| plain | $(size_mib "$LOG") MiB | $(per_round "${CPU[plain]}") | $(per_round "${WALL[plain]}") | 1.00x | 1.00x |
| .zst (zstd -3) | $(size_mib "$LOG.zst") MiB | $(per_round "${CPU[zst]}") | $(per_round "${WALL[zst]}") | ${RATIO_ZST}x | ${WALL_ZST}x |
| .gz (gzip -6) | $(size_mib "$LOG.gz") MiB | $(per_round "${CPU[gz]}") | $(per_round "${WALL[gz]}") | ${RATIO_GZ}x | ${WALL_GZ}x |
| .zst from S3 (s3rver, loopback) | $(size_mib "$LOG.zst") MiB | $(per_round "${CPU[s3-zst]}") | $(per_round "${WALL[s3-zst]}") | ${RATIO_S3}x | ${WALL_S3}x |

| target | measured | verdict |
|---|---|---|
| .zst replay CPU <= 1.3x plain | ${RATIO_ZST}x | $T_ZST |
EOF
