#!/usr/bin/env bash
# What each crate ships (`cargo package --list`): its sources, and for `d1ns` the README, the
# migrations and the quickstart; never CI, scripts, tests or benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
check() {
  local package=$1 required=$2 listing
  listing=$(cargo package --list --allow-dirty --quiet -p "$package")
  local shipped_by_mistake
  shipped_by_mistake=$(grep -E '^(\.ci|scripts|tests|benches|target|examples/worker)/|^\.gitignore$|^BENCHMARKS\.md$' <<<"$listing" || true)
  if [[ -n $shipped_by_mistake ]]; then
    printf '%s ships files users do not need:\n%s\n' "$package" "$shipped_by_mistake" >&2
    status=1
  fi
  for path in $required; do
    if ! grep -qxF "$path" <<<"$listing"; then
      printf '%s does not ship %s\n' "$package" "$path" >&2
      status=1
    fi
  done
}

check d1ns "src/lib.rs README.md docs/kv-rules.md docs/atomic.md docs/indexes.md docs/edge-reads.md docs/scale-and-move.md migrations/0001_d1ns.sql migrations/0002_d1ns_size.sql migrations/0003_d1ns_version.sql examples/quickstart.rs"
check d1ns-runtime "src/lib.rs"
check d1ns-macros "src/lib.rs"
check d1ns-limits "src/lib.rs"
if [[ $status == 0 ]]; then
  echo "package contents: ok"
fi
exit "$status"
