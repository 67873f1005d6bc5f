#!/usr/bin/env bash
# Benchmark: `edgeload observe` against `edgeload extract` on the same CDN-style log (the
# combined log of scripts/gen-access-log.py with nginx's `rt=`, `cs=` and `pop=` fields
# appended), side by side in one run (alternating, medians, ratios), plain and gzip, with peak
# RSS; and observe under --max-memory. Writes reports/bench/observe.md.
# usage: scripts/bench-observe.sh [LINES] [DISTINCT] [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-2000000} distinct=${2:-300000} reps=${3:-3}
work=${BENCH_DIR:-/tmp/edgeload-bench}
mkdir -p "$work" reports/bench
base="$work/access-$lines-$distinct.log"
log="$work/cdn-$lines-$distinct.log"
[ -s "$base" ] || python3 scripts/gen-access-log.py "$base" "$lines" "$distinct" 42
# 80 % hits, a miss more likely for a URL's first lines: enough to rank misses; four POPs
[ -s "$log" ] || awk '{
    h = (NR * 2654435761) % 100
    printf "%s rt=0.%03d cs=%s pop=%s\n", $0, h * 3 % 1000, (h < 80 ? "HIT" : "MISS"), substr("FRAAMSLHRIAD", (NR % 4) * 3 + 1, 3)
}' "$base" > "$log"
[ -s "$log.gz" ] || gzip -1 -k -c "$log" > "$log.gz"
cargo build --release --quiet
bin=target/release/edgeload
export LC_ALL=C

t() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
names="ex ob obpop exgz obgz obmem"
for n in $names; do : > "$work/$n.t"; done
for _ in $(seq "$reps"); do
    t "$bin" extract "$log" -o "$work/o-urls.csv" -q >> "$work/ex.t"
    t "$bin" observe "$log" -o "$work/o-obs" -q >> "$work/ob.t"
    t "$bin" observe "$log" -o "$work/o-obs-pop" --split pop -q >> "$work/obpop.t"
    t "$bin" extract "$log.gz" -o "$work/o-urls-gz.csv" -q >> "$work/exgz.t"
    t "$bin" observe "$log.gz" -o "$work/o-obs-gz" -q >> "$work/obgz.t"
    t "$bin" observe "$log" -o "$work/o-obs-mem" --max-memory 32M -q >> "$work/obmem.t"
done
s() { awk '{print $1}' "$work/$1.t" | median; }
rss() { awk '{print $2}' "$work/$1.t" | sort -n | tail -1 | awk '{printf "%.0f", $1 / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
size_mb=$(( $(stat -L -c %s "$log") / 1000000 ))
cmp -s "$work/o-obs/misses.csv" "$work/o-obs-mem/misses.csv" && same=yes || same=NO
{
    echo "# observe benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
    echo
    echo "Input: $lines combined log lines with rt=, cs= and pop= ($size_mb MB; scripts/gen-access-log.py seed 42, $distinct URLs drawn)."
    echo "Median of $reps alternating runs; peak RSS is the largest of the runs."
    echo
    echo "| command | seconds | MB/s | vs extract | peak RSS MB |"
    echo "|---|---|---|---|---|"
    echo "| extract (plain) | $(s ex) | $(ratio "$size_mb" "$(s ex)") | 1.00 | $(rss ex) |"
    echo "| observe --interval 1h (plain) | $(s ob) | $(ratio "$size_mb" "$(s ob)") | $(ratio "$(s ob)" "$(s ex)") | $(rss ob) |"
    echo "| observe --split pop (plain) | $(s obpop) | $(ratio "$size_mb" "$(s obpop)") | $(ratio "$(s obpop)" "$(s ex)") | $(rss obpop) |"
    echo "| extract (gzip -1) | $(s exgz) | $(ratio "$size_mb" "$(s exgz)") | 1.00 | $(rss exgz) |"
    echo "| observe (gzip -1) | $(s obgz) | $(ratio "$size_mb" "$(s obgz)") | $(ratio "$(s obgz)" "$(s exgz)") | $(rss obgz) |"
    echo "| observe --max-memory 32M (plain) | $(s obmem) | $(ratio "$size_mb" "$(s obmem)") | $(ratio "$(s obmem)" "$(s ex)") | $(rss obmem) |"
    echo
    echo "misses.csv under --max-memory 32M is byte for byte the in-memory one: $same."
} | tee reports/bench/observe.md
