# Helpers the bench scripts share (sourced, not run).

log() { echo "bench: $*" >&2; }

# Value of a top-level scalar field in a flat one-line JSON object (no jq needed).
jget() {
  local v
  v=$(printf '%s\n' "$1" | grep -o "\"$2\":[^,}]*" | head -n1 | cut -d: -f2-)
  [ -n "$v" ] || { echo "bench: no \"$2\" in: $1" >&2; exit 1; }
  printf '%s' "$v"
}

# awk arithmetic: calc 'expression' -> printed with %s
calc() { awk "BEGIN { print $1 }"; }

# PASS when the awk condition holds, else FAIL.
verdict() { if [ "$(calc "($1) ? 1 : 0")" = 1 ]; then echo PASS; else echo FAIL; fi; }
