#!/usr/bin/env bash
# Benchmark: scale. `edgeload extract` (in memory by default, and under --max-memory 256M)
# against `awk '$9==200{print $7}' | sort | uniq -c` at 1M, 10M and 30M distinct URLs
# (examples/gen_log.rs, seeded: 1.5 lines a URL); `run` start-up with the 1M and 10M lists it
# wrote; `report` over 10 and 100 results directories x 3600 s (examples/gen_results.rs).
# Time and peak RSS from /usr/bin/time, one run each (they are long), side by side.
# usage: scripts/bench-scale.sh [DISTINCT...]   -> reports/bench/scale.md
# BENCH_DIR (default /tmp/edgeload-bench) keeps the generated inputs between runs: the 30M
# log is 10 GB, the 100 results directories 610 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000 10000000 30000000)
work=${BENCH_DIR:-/tmp/edgeload-bench}/scale
mkdir -p "$work" reports/bench
cargo build --release --quiet --example gen_log --example gen_results
cargo build --release --quiet
bin=target/release/edgeload
export LC_ALL=C

# "seconds peak-MB" of a command (its output thrown away)
t() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%s %d", $1, $2 / 1024}'; }

extract_rows=()
for d in "${sizes[@]}"; do
    log="$work/access-$d.log"
    [ -s "$log" ] || target/release/examples/gen_log "$log" "$d" 42
    mb=$(( $(stat -L -c %s "$log") / 1000000 ))
    lines=$(wc -l < "$log")
    read -r a_s a_mb <<< "$(t sh -c "awk '\$9==200{print \$7}' '$log' | sort | uniq -c > '$work/awk.out'")"
    read -r e_s e_mb <<< "$(t "$bin" extract "$log" -o "$work/urls-$d.csv" -q)"
    read -r b_s b_mb <<< "$(t "$bin" extract "$log" -o "$work/urls-b-$d.csv" -q --max-memory 256M)"
    cmp -s "$work/urls-$d.csv" "$work/urls-b-$d.csv" || { echo "the 256M list differs at $d" >&2; exit 1; }
    n=$(( $(wc -l < "$work/urls-$d.csv") - 1 ))
    [ "$n" -eq "$(wc -l < "$work/awk.out")" ] || { echo "awk and extract disagree at $d" >&2; exit 1; }
    ratio() { awk -v a="$a_s" -v e="$1" 'BEGIN {printf "%.2f", a / e}'; }
    extract_rows+=("| $n | $lines | $mb | $a_s s, $a_mb MB | $e_s s, $e_mb MB ($(ratio "$e_s")x) | $b_s s, $b_mb MB ($(ratio "$b_s")x) |")
    rm -f "$work/awk.out" "$work/urls-b-$d.csv"
done

# run start-up: load the list, send one request to the embedded edge
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" edge -l "127.0.0.1:$port" > /dev/null 2>&1 &
edge=$!
trap 'kill $edge 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/_edge/stats" && break; sleep 0.1; done
run_rows=()
for d in 1000000 10000000; do
    list="$work/urls-$d.csv"
    [ -s "$list" ] || continue
    read -r s mb <<< "$(t "$bin" run "$list" -t "http://127.0.0.1:$port" -n 1 -o "$work/run-$d" -q)"
    rm -rf "$work/run-$d"
    run_rows+=("| $d | $(( $(stat -c %s "$list") / 1000000 )) | $s | $mb |")
done

# report: 10 and 100 results directories of 3600 1-s intervals
[ -d "$work/report-100" ] || target/release/examples/gen_results "$work/report-100" 100 3600 > /dev/null
mkdir -p "$work/report-10"
dirs=("$work"/report-100/*/)
for r in "${dirs[@]:0:10}"; do ln -sfn "$r" "$work/report-10/$(basename "$r")"; done
report_rows=()
for n in 10 100; do
    read -r s mb <<< "$(t "$bin" report "$work/report-$n" -o "$work/report-$n.out")"
    report_rows+=("| $n | $s | $mb |")
done

{
    echo "# scale benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB)"
    echo
    echo "One run each (minutes long); \`scripts/bench-scale.sh\`. Peak RSS from /usr/bin/time."
    echo
    echo "## extract"
    echo
    echo "Generated combined logs (examples/gen_log.rs, seed 42): 1.5 lines a URL, 5 % 404s."
    echo "awk | sort | uniq -c with LC_ALL=C (GNU sort spills to disk; its RSS is the largest one"
    echo "process's). edgeload's default budget is min(1 GiB, RAM / 4); both lists are byte for byte"
    echo "the same (checked by the script)."
    echo
    echo "| distinct URLs | lines | MB | awk pipeline | edgeload extract (default) | --max-memory 256M |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${extract_rows[@]}"
    echo
    echo "## run start-up"
    echo
    echo "\`run LIST -t EDGE -n 1\`: the list read (in parts, on every CPU) and one request sent."
    echo
    echo "| URLs | list MB | seconds | peak RSS MB |"
    echo "|---|---|---|---|"
    printf '%s\n' "${run_rows[@]}"
    echo
    echo "## report"
    echo
    echo "Results directories of 3600 1-s intervals (examples/gen_results.rs: 8 histograms an"
    echo "interval), merged exactly, every table and plot drawn."
    echo
    echo "| directories | seconds | peak RSS MB |"
    echo "|---|---|---|"
    printf '%s\n' "${report_rows[@]}"
} | tee reports/bench/scale.md
