#!/usr/bin/env bash
# `make run`: the loop streamscore exists for, on generated data, from a fresh state:
# generate a history, train a model on it, activate the model, then run the daemon that
# computes the features of a live stream and scores every customer whose features change.
# Usage: scripts/demo.sh path/to/streamscore
set -euo pipefail

streamscore=${1:?usage: scripts/demo.sh path/to/streamscore}
data=data
port=${DEMO_HTTP_PORT:-8480}

step() { printf '\n== %s\n' "$*"; }

rm -rf "$data/state" "$data/models" "$data/dead-letter.jsonl" "$data/history.jsonl"
mkdir -p "$data"

step "1/4 generate a history: 500,000 records over 45 days (duplicates, late and bad records included)"
"$streamscore" generate --events 500000 --days 45 --seed 1 --out "$data/history.jsonl"

step "2/4 train the high-value-customer model on it (point-in-time rows, one cut a day)"
"$streamscore" train --events "$data/history.jsonl" --models "$data/models"

step "3/4 activate it"
"$streamscore" model activate v1 --models "$data/models"

step "4/4 run the daemon: 1,000,000 live records at 100,000/s, features and scores into RocksDB"
echo "While it runs (about 10 s), in another terminal:"
echo "  curl -s http://127.0.0.1:$port/v1/customers/C0000042"
echo "  build/streamscore status --url http://127.0.0.1:$port"
"$streamscore" run --set source.kind=generator --set source.events=1000000 --set source.rate=100000 \
  --set state.path="$data/state" --set dead_letter.path="$data/dead-letter.jsonl" \
  --set model.dir="$data/models" --set http.port="$port"

echo
echo "The state is in $data/state: 'build/streamscore export --state $data/state --out items.jsonl'"
echo "writes every customer's item (features, score, model_version, version) sorted by PK."
