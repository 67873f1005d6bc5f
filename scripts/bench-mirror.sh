#!/usr/bin/env bash
# Benchmark: mirror ingest (parse + filter + enqueue-or-drop) from stdin against a target far
# slower than the input (embedded edge, 10 ms per request, 16 in flight), and its peak RSS for a
# small and a 10x larger flood (flat memory = bounded queue). Writes reports/bench/mirror.md.
# usage: scripts/bench-mirror.sh [LINES]
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-2000000}
work=${BENCH_DIR:-/tmp/edgeload-bench}
mkdir -p "$work" reports/bench
log="$work/access-$lines-300000.log"
[ -s "$log" ] || python3 scripts/gen-access-log.py "$log" "$lines" 300000 42
small="$work/access-small.log"
head -n $((lines / 10)) "$log" > "$small"
cargo build --release --quiet
bin=target/release/edgeload
port=$((20000 + RANDOM % 20000))
"$bin" edge --listen 127.0.0.1:$port --hit-latency 10ms --miss-latency 10ms 2>/dev/null &
edge=$!
trap 'kill $edge 2>/dev/null || true' EXIT
sleep 0.5
run() {
    /usr/bin/time -f "%e %M" -o "$work/mirror.time" "$bin" mirror --stdin -t "new=http://127.0.0.1:$port" \
        --queue 1000 --max-in-flight 16 --quiet --json < "$1" > "$work/mirror.json"
    read -r secs rss < "$work/mirror.time"
    python3 - "$work/mirror.json" "$secs" "$rss" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); m = s["mirror"]; t = m["targets"][0]
lines = m["lines"]; secs = float(sys.argv[2])
ok = lines == m["accepted"] + m["filtered"] + m["malformed"] + m["unsafe_target"] + m["deduped"] and \
     m["accepted"] == t["enqueued"] + t["dropped"] and t["enqueued"] == t["sent"] + t["unsent"]
print(f"{lines} {secs} {lines / secs:.0f} {int(sys.argv[3]) // 1024} {t['sent']} {t['dropped']} {'exact' if ok else 'MISMATCH'}")
PY
}
big=$(run "$log"); little=$(run "$small")
{
    echo "# mirror ingest benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
    echo
    echo "stdin -> parse -> filter -> bounded queue (1000) -> target at 10 ms/request, 16 in flight."
    echo "Wall time includes start-up and the final drain."
    echo
    echo "| lines | seconds | lines/s | peak RSS MB | sent | dropped | accounting |"
    echo "|---|---|---|---|---|---|---|"
    for r in "$little" "$big"; do
        read -r l s lps rss sent dropped acc <<< "$r"
        echo "| $l | $s | $lps | $rss | $sent | $dropped | $acc |"
    done
} | tee reports/bench/mirror.md
