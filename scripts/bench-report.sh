#!/usr/bin/env bash
# Benchmark: `edgeload report` merging REGIONS x SECONDS of 1 s interval histograms (each interval
# holds 8 histograms: hit and miss x corrected/service x total/TTFB) and drawing every plot.
# usage: scripts/bench-report.sh [REGIONS] [SECONDS] [REPS]   -> reports/bench/report.md
set -euo pipefail
cd "$(dirname "$0")/.."
regions=${1:-10} secs=${2:-3600} reps=${3:-3}
work=${BENCH_DIR:-/tmp/edgeload-bench}/report-$regions-$secs
cargo build --release --quiet --example gen_results
cargo build --release --quiet
[ -d "$work" ] || target/release/examples/gen_results "$work" "$regions" "$secs"
hists=$(cat "$work"/*/latency.hlog | grep -c '^Tag=')
: > "$work.times"
for _ in $(seq "$reps"); do
    /usr/bin/time -f "%e %M" target/release/edgeload report "$work" -o "$work.out" 2>&1 >/dev/null | tail -1 >> "$work.times"
done
med=$(awk '{print $1}' "$work.times" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
rss=$(awk '{print $2}' "$work.times" | sort -n | tail -1)
mkdir -p reports/bench
{
    echo "# report benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
    echo
    echo "$regions regions x $secs intervals of 1 s = $((regions * secs)) interval rows, $hists interval histograms"
    echo "(hit and miss x corrected/service x total/TTFB); merged exactly, 5 plots as SVG+PNG, report.md/html."
    echo
    echo "| median of $reps | seconds | peak RSS |"
    echo "|---|---|---|"
    echo "| edgeload report | $med | $((rss / 1024)) MB |"
} | tee reports/bench/report.md
