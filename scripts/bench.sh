#!/usr/bin/env bash
# Side-by-side load-generator benchmark against one nginx (1 worker, loopback): edgeload vs wrk
# (and oha when installed; ab for new connections), alternating tools, medians of REPS runs, ratios to wrk.
#   1. saturation, keep-alive, 64 connections, a 4 KB and a 40 KB object: req/s, client CPU per
#      request (user+sys of the generator), peak RSS;
#   1b. idle-machine hiccups (a thread sleeping 1 ms, how late it wakes);
#   2. fixed rate (edgeload's open model; oha -q for CPU at the same rate): achieved rate, send
#      lag and CPU per request at 10k and 50k req/s, REPS runs each;
#   3. long-run memory: LONG requests (default 10M) at saturation, RSS sampled every second;
#   4. a new connection per request;
#   5. the latest extract, mirror and report figures (reports/bench/{extract,mirror,report}.md),
#      copied in so that one file holds every performance figure.
# Writes reports/bench/bench.md and bench.json. usage: scripts/bench.sh [SECONDS] [REPS] [LONG]
# (LONG=0 skips the long run). oha is installed with cargo install oha --locked when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10} reps=${2:-3} long=${3:-10000000}
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
command -v ab >/dev/null || need+=(apache2-utils)
if ((${#need[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --quiet
bin=$PWD/target/release/edgeload
work=$(mktemp -d)
port=$((30000 + RANDOM % 20000))
head -c 4096 /dev/urandom > "$work/4k.bin"
head -c 40960 /dev/urandom > "$work/40k.bin"
# shellcheck disable=SC1091
. scripts/bench-nginx.sh
bench_nginx "$work" "$port"
trap 'nginx -c "$work/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$work"' EXIT

# prints "requests cpu_seconds peak_rss_kb" for one generator run
measure() {
    local tool=$1 obj=$2 out="$work/out.txt"
    local url="http://127.0.0.1:$port/$obj"
    case "$tool" in
        wrk) /usr/bin/time -f "%U %S %M" -o "$work/t" wrk -t2 -c64 -d"${secs}s" "$url" > "$out" 2>&1
             # successful responses only (wrk counts error pages as requests)
             n=$(awk '/requests in/ {n = $1} /Non-2xx/ {bad = $NF} END {print n - bad}' "$out") ;;
        oha) /usr/bin/time -f "%U %S %M" -o "$work/t" oha -c 64 -z "${secs}s" --no-tui --output-format json "$url" > "$out" 2>/dev/null
             n=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(d["statusCodeDistribution"].values()))' "$out") ;;
        edgeload) printf '/%s\n' "$obj" > "$work/urls.txt"
             /usr/bin/time -f "%U %S %M" -o "$work/t" "$bin" run "$work/urls.txt" -t "n=http://127.0.0.1:$port" \
                -c 64 -d "${secs}s" -o "$work/res" -q --json > "$out"
             n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rate"]["completed"])' "$out")
             # the run's whole seconds (the last row holds the requests that ended after them)
             python3 -c 'import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    if float(r["t_s"]) < float(sys.argv[2]):
        print(r["requests"])' "$work/res/timeline.csv" "$secs" >> "$work/persec.$obj" ;;
    esac
    read -r u s rss < "$work/t"
    echo "$n $(awk -v u="$u" -v s="$s" 'BEGIN {print u + s}') $rss"
}

tools=(wrk edgeload)
# oha builds from source (~6 min on 2 cores); BENCH_NO_OHA=1 skips it
if [ -z "${BENCH_NO_OHA:-}" ] && ! command -v oha >/dev/null; then
    cargo install oha --locked --quiet || echo "oha could not be installed; skipping it" >&2
    export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v oha >/dev/null && tools+=(oha)
{
echo "# load generator benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, nginx 1 worker on loopback)"
echo
echo "Saturation, keep-alive, 64 connections, ${secs} s, median of $reps alternating runs."
echo "CPU = user+sys of the generator process. Ratios are to wrk in the same run. wrk -t2; edgeload"
echo "with its default threads (one fewer than the cores for a target on loopback: $(( $(nproc) > 1 ? $(nproc) - 1 : 1 )) here)."
echo
echo "| object | tool | req/s | ratio | CPU us/request | ratio | peak RSS MB |"
echo "|---|---|---|---|---|---|---|"
for obj in 4k.bin 40k.bin; do
    : > "$work/persec.$obj"
    bench_table "$obj"
    [ "$obj" = 4k.bin ] && sat4k=${rps[edgeload]}
done
echo
# How steady the machine is: edgeload's timeline has the requests of every second of its runs.
python3 - "$work/persec.4k.bin" <<'PY'
import statistics as st, sys
v = sorted(int(l) for l in open(sys.argv[1]) if l.strip())
if v:
    q = st.quantiles(v, n=10, method="inclusive") if len(v) > 1 else [v[0]] * 9
    print(f"Per-second rate of edgeload's 4 KB saturation runs ({len(v)} seconds, from its timeline):")
    print(f"min {v[0]}, p10 {q[0]:.0f}, median {st.median(v):.0f}, max {v[-1]} req/s. On a shared VM the")
    print("capacity of target + generator moves by this much from second to second; a fixed rate")
    print("above a second's capacity is sent late until the backlog drains.")
PY
echo
# How often the machine itself stalls a thread, with nothing running (jHiccup's idea): a thread
# sleeps 1 ms at a time and notes how late it wakes. A stall holds every send due during it.
python3 - "$((secs * 2))" <<'PY'
import sys, time
secs = float(sys.argv[1])
nxt = time.monotonic_ns(); end = nxt + int(secs * 1e9)
late = []
while nxt < end:
    nxt += 1_000_000
    d = (nxt - time.monotonic_ns()) / 1e9
    if d > 0:
        time.sleep(d)
    now = time.monotonic_ns()
    if now - nxt > 1_000_000:
        late.append(now - nxt); nxt = now  # missed ticks are not replayed
print(f"Idle machine hiccups: a thread sleeping 1 ms at a time for {secs:.0f} s woke more than 1 ms late")
print(f"{len(late)} times ({sum(late) / 1e6:.1f} ms in all), the longest {max(late, default=0) / 1e6:.2f} ms late.")
PY
echo
echo "Open model at a fixed rate, 4 KB object, ${secs} s, $reps alternating runs: edgeload --rate"
echo "--max-in-flight 64 (send lag = actual minus intended send time), and oha -q RATE -c 64"
echo "--latency-correction when installed (its CPU at the same rate; oha reports no send lag)."
echo "Load = the rate as a share of edgeload's 4 KB saturation rate above: target and generator"
echo "share the machine's $(nproc) cores, so the lag tail follows how close the rate is to it."
echo
echo "Seconds short = whole seconds of a run in which under 99 % of the rate completed (the"
echo "backlog grew: target and generator fell behind), each run."
echo
echo "Corrected latency = response time from the intended send time (both tools), p50 / p99 ms,"
echo "medians (each run's p99): what a user of each tool would read for the same target and rate."
echo
echo "| target req/s | load | tool | achieved req/s | send lag p50 ms | send lag p99 ms, median (each run) | seconds short | corrected latency p50 / p99 ms | CPU us/request | CPU ratio to oha |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '/4k.bin\n' > "$work/urls.txt"
for rate in 10000 50000; do
    : > "$work/el.open"; : > "$work/oha.open"
    for _ in $(seq "$reps"); do
        /usr/bin/time -f "%U %S %M" -o "$work/t" "$bin" run "$work/urls.txt" -t "n=http://127.0.0.1:$port" \
            -r "$rate" -d "${secs}s" --max-in-flight 64 -o "$work/res" -q --json > "$work/open.json"
        read -r u s _ < "$work/t"
        python3 - "$work/open.json" "$u" "$s" "$work/res/timeline.csv" "$rate" "$secs" >> "$work/el.open" <<'PY'
import csv, json, sys
s = json.load(open(sys.argv[1])); r = s["rate"]; lag = r["send_lag"] or {}
cpu = (float(sys.argv[2]) + float(sys.argv[3])) / max(r["completed"], 1) * 1e6
rate, secs = float(sys.argv[5]), float(sys.argv[6])
# whole seconds in which fewer than 99 % of the rate's requests completed: the backlog grew
short = sum(1 for row in csv.DictReader(open(sys.argv[4]))
            if float(row["t_s"]) < secs and int(row["requests"]) < 0.99 * rate)
c = s["targets"][0]["all"]["corrected"]["total"]  # latency from the intended send time
print(r["achieved_rps"], lag.get("p50", 0), lag.get("p99", 0), cpu, short, c["p50"], c["p99"])
PY
        if command -v oha >/dev/null; then
            /usr/bin/time -f "%U %S %M" -o "$work/t" oha -c 64 -q "$rate" -z "${secs}s" --latency-correction \
                --no-tui --output-format json "http://127.0.0.1:$port/4k.bin" > "$work/oha.json" 2>/dev/null
            read -r u s _ < "$work/t"
            python3 - "$work/oha.json" "$u" "$s" >> "$work/oha.open" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); n = sum(d["statusCodeDistribution"].values())
p = d["latencyPercentiles"]  # seconds; with --latency-correction from the intended send time
print(d["summary"]["requestsPerSec"], (float(sys.argv[2]) + float(sys.argv[3])) / max(n, 1) * 1e6,
      p["p50"] * 1e3, p["p99"] * 1e3)
PY
        fi
    done
    python3 - "$rate" "${sat4k:-0}" "$work/el.open" "$work/oha.open" <<'PY'
import statistics as st, sys
rate, sat = float(sys.argv[1]), float(sys.argv[2])
el = [list(map(float, l.split())) for l in open(sys.argv[3]) if l.strip()]
oha = [list(map(float, l.split())) for l in open(sys.argv[4]) if l.strip()]
med = lambda rows, i: st.median(r[i] for r in rows)
load = f"{rate / sat:.0%}" if sat else "-"
ratio = f"{med(el, 3) / med(oha, 1):.2f}" if oha else "-"
each = " / ".join(f"{r[2]:.3g}" for r in el)
short = " / ".join(f"{r[4]:.0f}" for r in el)
lat = lambda rows, i, j: f"{med(rows, i):.3f} / {med(rows, j):.3f} ({' / '.join(f'{r[j]:.3g}' for r in rows)})"
print(f"| {rate:.0f} | {load} | edgeload | {med(el, 0):.0f} | {med(el, 1):.3f} | {med(el, 2):.3f} ({each}) | {short} | {lat(el, 5, 6)} | {med(el, 3):.2f} | {ratio} |")
if oha:
    print(f"| {rate:.0f} | {load} | oha | {med(oha, 0):.0f} | - | - | - | {lat(oha, 2, 3)} | {med(oha, 1):.2f} | 1.00 |")
PY
done
if [ "$long" -gt 0 ]; then
    echo
    echo "Long run: $long requests, 64 connections, 4 KB, RSS sampled every second (MB):"
    echo
    printf '/4k.bin\n' > "$work/urls.txt"
    "$bin" run "$work/urls.txt" -t "n=http://127.0.0.1:$port" -c 64 -n "$long" -o "$work/res" -q &
    pid=$!
    : > "$work/rss.txt"
    while kill -0 "$pid" 2>/dev/null; do
        awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null >> "$work/rss.txt" || true
        sleep 1
    done
    wait "$pid"
    python3 - "$work/rss.txt" <<'PY'
import sys
r = [int(x) / 1024 for x in open(sys.argv[1]) if x.strip()]
n = len(r)
pick = lambda f: r[min(n - 1, int(n * f))]
print("| samples | at 10 % | at 50 % | at 100 % | max after 10 % |")
print("|---|---|---|---|---|")
print(f"| {n} | {pick(0.1):.1f} | {pick(0.5):.1f} | {r[-1]:.1f} | {max(r[n // 10:]):.1f} |")
PY
fi
echo
nk=30000
echo "New connection per request (edgeload --no-keepalive vs ab without -k), 4 KB, $nk requests, 16 concurrent, median of $reps alternating runs:"
echo
printf '/4k.bin\n' > "$work/urls.txt"
: > "$work/ab.nk"; : > "$work/el.nk"
for _ in $(seq "$reps"); do
    /usr/bin/time -f "%U %S" -o "$work/t" ab -q -n "$nk" -c 16 "http://127.0.0.1:$port/4k.bin" > /dev/null 2>&1
    awk -v n="$nk" '{printf "%.2f\n", ($1 + $2) / n * 1e6}' "$work/t" >> "$work/ab.nk"
    /usr/bin/time -f "%U %S" -o "$work/t" "$bin" run "$work/urls.txt" -t "n=http://127.0.0.1:$port" -c 16 -n "$nk" --no-keepalive -o "$work/res" -q
    awk -v n="$nk" '{printf "%.2f\n", ($1 + $2) / n * 1e6}' "$work/t" >> "$work/el.nk"
done
ab_cpu=$(median < "$work/ab.nk"); el_cpu=$(median < "$work/el.nk")
echo "| tool | CPU us/request | ratio |"
echo "|---|---|---|"
echo "| ab | $ab_cpu | 1.00 |"
echo "| edgeload | $el_cpu | $(awk -v a="$el_cpu" -v b="$ab_cpu" 'BEGIN {printf "%.2f", a / b}') |"
# 5. the other scripts' latest figures (they take minutes each; run them to refresh these)
for f in extract mirror report; do
    [ -f "reports/bench/$f.md" ] || continue
    echo
    echo "From reports/bench/$f.md (scripts/bench-$f.sh), $(head -1 "reports/bench/$f.md" | sed 's/^# //'):"
    echo
    sed -n '/^|/p' "reports/bench/$f.md"
done
} | tee reports/bench/bench.md
# the same tables as JSON, for tools
python3 - reports/bench/bench.md > reports/bench/bench.json <<'PY'
import json, sys
tables, cur, title = [], None, ""
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("|") and cur is None:
        cur = {"title": title, "columns": [c.strip() for c in line.strip("|").split("|")], "rows": []}
    elif line.startswith("|---"):
        continue
    elif line.startswith("|"):
        cur["rows"].append([c.strip() for c in line.strip("|").split("|")])
    else:
        if cur:
            tables.append(cur)
            cur = None
        if line.strip():
            title = line.strip()
if cur:
    tables.append(cur)
print(json.dumps({"tables": tables}, indent=1))
PY
