#!/usr/bin/env bash
# Runs every check and test of edgeload on a fresh Debian machine: installs what the tests need
# (idempotently), then format, lints, tests (release build: the measurement tests time real
# traffic), and a smoke run of the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v kill >/dev/null || need_apt+=(procps)
# plots measure their text with a TrueType font
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
# the CDN in the mirror's integration test
command -v varnishd >/dev/null || need_apt+=(varnish)
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --release --all-targets --locked -- -D warnings

log "cargo test"
cargo test --release --locked

if cargo fuzz --version >/dev/null 2>&1 && rustup toolchain list 2>/dev/null | grep -q nightly; then
    log "fuzzing each parser briefly"
    (cd fuzz && cargo +nightly fuzz run parse_line -- -max_total_time=30)
else
    log "cargo-fuzz or a nightly toolchain is missing: fuzz targets skipped (parsers_never_panic_on_mutated_lines ran instead)"
fi

log "demo smoke run"
demo_out=$(mktemp -d)
trap 'rm -rf "$demo_out"' EXIT
cargo run --release --locked --quiet -- demo --out "$demo_out" 2>"$demo_out/log" || { cat "$demo_out/log"; exit 1; }
for phase in cold warm; do
    test -s "$demo_out/$phase/MANIFEST.json" || { echo "demo left no $phase/MANIFEST.json"; cat "$demo_out/log"; exit 1; }
done
grep -q "hit ratio per second" "$demo_out/log"
echo "demo ok"
echo "all checks passed"
