#!/usr/bin/env bash
# Benchmark: `edgeload extract` against `awk '$9==200{print $7}' | sort | uniq -c` on the same
# generated combined log, side by side in one run (alternating, medians, ratio), plus gzip input
# throughput and peak RSS. Writes reports/bench/extract.md.
# usage: scripts/bench-extract.sh [LINES] [DISTINCT] [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-2000000} distinct=${2:-300000} reps=${3:-3}
work=${BENCH_DIR:-/tmp/edgeload-bench}
mkdir -p "$work" reports/bench
log="$work/access-$lines-$distinct.log"
[ -s "$log" ] || python3 scripts/gen-access-log.py "$log" "$lines" "$distinct" 42
[ -s "$log.gz" ] || gzip -1 -k -c "$log" > "$log.gz"
cargo build --release --quiet
bin=target/release/edgeload
export LC_ALL=C

t() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: > "$work/awk.t"; : > "$work/el.t"; : > "$work/gz.t"; : > "$work/rss.t"
for _ in $(seq "$reps"); do
    t sh -c "awk '\$9==200{print \$7}' '$log' | sort | uniq -c > '$work/awk.out'" | awk '{print $1}' >> "$work/awk.t"
    t "$bin" extract "$log" -o "$work/urls.csv" -q | tee -a "$work/rss.t" | awk '{print $1}' >> "$work/el.t"
    t "$bin" extract "$log.gz" -o "$work/urls-gz.csv" -q | awk '{print $1}' >> "$work/gz.t"
done
awk_s=$(median < "$work/awk.t"); el_s=$(median < "$work/el.t"); gz_s=$(median < "$work/gz.t")
rss_kb=$(awk '{print $2}' "$work/rss.t" | sort -n | tail -1)
size_mb=$(( $(stat -L -c %s "$log") / 1000000 ))
distinct_out=$(($(wc -l < "$work/urls.csv") - 1))
ratio=$(awk -v a="$awk_s" -v e="$el_s" 'BEGIN {printf "%.2f", a / e}')
gz_mbs=$(awk -v s="$size_mb" -v t="$gz_s" 'BEGIN {printf "%.0f", s / t}')
plain_mbs=$(awk -v s="$size_mb" -v t="$el_s" 'BEGIN {printf "%.0f", s / t}')
{
    echo "# extract benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
    echo
    echo "Input: $lines generated combined log lines, $size_mb MB, $distinct_out distinct kept URLs (scripts/gen-access-log.py, seed 42)."
    echo "Median of $reps alternating runs."
    echo
    echo "| tool | seconds | MB/s | ratio |"
    echo "|---|---|---|---|"
    echo "| awk '\$9==200{print \$7}' \| sort \| uniq -c | $awk_s | | 1.00 |"
    echo "| edgeload extract (plain) | $el_s | $plain_mbs | $ratio x faster |"
    echo "| edgeload extract (gzip -1 input, uncompressed MB/s) | $gz_s | $gz_mbs | |"
    echo
    echo "Peak RSS of edgeload extract: $((rss_kb / 1024)) MB for $distinct_out distinct URLs."
} | tee reports/bench/extract.md
