#!/usr/bin/env bash
# Two edgeload builds side by side against one nginx (1 worker, loopback, keep-alive, 64
# connections, a 4 KB object), with wrk as the yardstick: alternating runs, REPS each, and per
# run the requests/s, client CPU per request (user+sys) and peak RSS. For a change that must not
# move the plain-HTTP figures (a refactor): compare the medians' ratios, not absolute numbers.
# usage: scripts/bench-ab.sh OLD_BIN NEW_BIN [SECONDS] [REPS]
set -euo pipefail
old=$1 new=$2 secs=${3:-5} reps=${4:-5}
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null || ! command -v curl >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk curl >/dev/null
fi
work=$(mktemp -d)
port=$((30000 + RANDOM % 20000))
head -c 4096 /dev/urandom > "$work/4k.bin"
# shellcheck disable=SC1091
. "$(dirname "$0")/bench-nginx.sh"
bench_nginx "$work" "$port"
trap 'nginx -c "$work/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$work"' EXIT
printf '/4k.bin\n' > "$work/urls.txt"
url="http://127.0.0.1:$port/4k.bin"
run() {
    local tool=$1
    case "$tool" in
        wrk) /usr/bin/time -f "%U %S %M" -o "$work/t" wrk -t2 -c64 -d"${secs}s" "$url" > "$work/o" 2>&1
             n=$(awk '/requests in/ {print $1}' "$work/o") ;;
        *) /usr/bin/time -f "%U %S %M" -o "$work/t" "$tool" run "$work/urls.txt" -t "n=http://127.0.0.1:$port" \
               -c 64 -d "${secs}s" -o "$work/res" -q --json > "$work/o"
           n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["rate"]["completed"])' "$work/o") ;;
    esac
    read -r u s m < "$work/t"
    python3 -c "import sys; n,u,s,m,d=map(float,sys.argv[1:]); print(f'{n/d:.0f} {(u+s)/n*1e6:.2f} {m/1024:.1f}')" "$n" "$u" "$s" "$m" "$secs"
}
echo "tool rep req/s cpu_us_per_req peak_rss_mb"
for r in $(seq "$reps"); do
    for t in wrk "$old" "$new"; do
        label=$t; [ "$t" = "$old" ] && label=old; [ "$t" = "$new" ] && label=new
        echo "$label $r $(run "$t")"
    done
done
