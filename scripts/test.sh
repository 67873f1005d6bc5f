#!/usr/bin/env bash
# Runs every check and test of edgeload on a fresh Debian machine: installs what the tests need
# (idempotently), then format, lints, tests (release build: the measurement tests time real
# traffic), and a smoke run of the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }
export PATH="$HOME/.cargo/bin:/usr/sbin:/sbin:$PATH"

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v kill >/dev/null || need_apt+=(procps)
# plots measure their text with a TrueType font
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
# real caches in front of the edge: the mirror's CDN and the cache-header tests (tests/it/caches.rs)
command -v varnishd >/dev/null || need_apt+=(varnish)
command -v nginx >/dev/null || need_apt+=(nginx-light)
command -v traffic_server >/dev/null || need_apt+=(trafficserver)
command -v shellcheck >/dev/null || need_apt+=(shellcheck)
# report.html is checked in a real browser (tests/it/report.rs)
command -v chromium >/dev/null || need_apt+=(chromium)
if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# a real S3-compatible server for the S3 tests (built once per machine, ~7 min on 2 cores)
if ! command -v garage >/dev/null; then
    log "installing garage (S3-compatible store) from crates.io"
    cargo install garage --locked --no-default-features --features lmdb,bundled-libs
fi
python3 -c 'import cfnlint' 2>/dev/null || { log "installing cfn-lint"; python3 -m pip install --quiet cfn-lint; }
# the console script may be missing from PATH (pyenv shims): call its entry point directly
cfn_lint() { python3 -c 'import sys; from cfnlint.runner import main; sys.argv[0] = "cfn-lint"; sys.exit(main())' "$@"; }

log "cfn-lint cloudformation/"
cfn_lint --regions us-east-1 eu-west-1 ap-southeast-1 -- cloudformation/*.yaml

log "shellcheck scripts/"
shellcheck scripts/*.sh .ci/run


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

log "launch-regions.sh --dry-run"
scripts/launch-regions.sh --bucket example-bucket --bucket-region us-east-1 --scenario scenarios/example.toml \
    --regions "us-east-1 eu-west-1" --runners-per-region 2 --instance-type c7g.large \
    --subnet eu-west-1=subnet-0abc --dry-run > /tmp/edgeload-launch-dry-run.txt 2>&1
# a stack per runner; a Graviton type gets the arm64 build and AMI; a subnet for its region only
for said in "cloudformation deploy --region eu-west-1 --stack-name edgeload-.*-runner-2 " \
    "edgeload-aarch64" "al2023-ami-kernel-default-arm64" "deploy --region eu-west-1 .*SubnetId=subnet-0abc"; do
    grep -q "$said" /tmp/edgeload-launch-dry-run.txt || { cat /tmp/edgeload-launch-dry-run.txt; echo "dry run lacks: $said" >&2; exit 1; }
done
if grep -q "deploy --region us-east-1 .*SubnetId" /tmp/edgeload-launch-dry-run.txt; then echo "subnet given to the wrong region" >&2; exit 1; fi
# a scenario that cannot run is stopped by the launcher's `run --check`, before anything is sent
printf 'urls = "missing.csv"\n[targets]\ne = "http://127.0.0.1:9"\n' > /tmp/edgeload-bad-scenario.toml
if scripts/launch-regions.sh --bucket example-bucket --bucket-region us-east-1 \
    --scenario /tmp/edgeload-bad-scenario.toml --dry-run > /tmp/edgeload-launch-bad.txt 2>&1; then
    cat /tmp/edgeload-launch-bad.txt; echo "the launcher went on with a scenario that cannot run" >&2; exit 1
fi
for said in missing.csv "nothing launched"; do
    grep -q "$said" /tmp/edgeload-launch-bad.txt || { cat /tmp/edgeload-launch-bad.txt; echo "the launcher did not say: $said" >&2; exit 1; }
done
if grep -q "aws s3 cp" /tmp/edgeload-launch-bad.txt; then echo "uploaded despite a failed check" >&2; exit 1; fi

log "AWS flow: the launcher, CloudFormation (moto), each runner's user data, S3 (Garage)"
# (each simulated instance gets its own mount namespace: root and unshare)
if [ "$(id -u)" = 0 ] && command -v unshare > /dev/null; then
    scripts/test-aws.sh
else
    echo "not root or no unshare: scripts/test-aws.sh cannot run here" >&2
    exit 1
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
