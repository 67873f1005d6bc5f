# shellcheck shell=bash
# Sourced by the load-generator benchmarks (bench_nginx, bench_check, bench_table, median).
# bench_nginx DIR PORT [HTTP_CONF] starts one nginx (1 worker, loopback, keep-alive without
# limit, no access log) serving DIR, its files in DIR too: on 127.0.0.1:PORT, or with the
# server blocks (and http settings) of HTTP_CONF instead when given (the TLS benchmark's);
# stop it with `nginx -c "DIR/nginx.conf" -s stop`.
bench_nginx() {
    local dir=$1 port=$2
    local conf=${3:-"server { listen 127.0.0.1:$port; root $dir; }"}
    cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    $conf
}
CONF
    # nginx's workers run as nobody: a mktemp folder (0700, root's) would answer 403 to every
    # request, and the benchmark would time error pages
    chmod 755 "$dir"
    chmod 644 "$dir"/*.bin
    nginx -c "$dir/nginx.conf"
    sleep 0.3
    [ $# -gt 2 ] || bench_check "http://127.0.0.1:$port/4k.bin" 4096
}

# Fails unless URL answers 200 with SIZE bytes; more arguments go to curl (--cacert FILE).
bench_check() {
    local url=$1 size=$2 got
    shift 2
    got=$(curl -s "$@" -o /dev/null -w '%{http_code} %{size_download}' "$url" || true)
    if [ "$got" != "200 $size" ]; then
        echo "benchmark target $url answered '$got', not '200 $size': refusing to time it" >&2
        exit 1
    fi
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# bench_table OBJ: the saturation rows for OBJ, one per tool of the caller's `tools`, from `reps`
# alternating runs of the caller's `measure TOOL OBJ` (prints "requests cpu_seconds rss_kb")
# over `secs` seconds each; medians, ratios to the caller's `base` tool (default wrk). Leaves the
# medians in `rps`.
# shellcheck disable=SC2154  # tools, reps, secs, work and measure are the caller's
bench_table() {
    local obj=$1 t n c r b=${base:-wrk}
    declare -gA rps cpu rss
    for t in "${tools[@]}"; do : > "$work/$t.rps"; : > "$work/$t.cpu"; : > "$work/$t.rss"; done
    for _ in $(seq "$reps"); do
        for t in "${tools[@]}"; do
            read -r n c r <<< "$(measure "$t" "$obj")"
            awk -v n="$n" -v s="$secs" 'BEGIN {printf "%.0f\n", n / s}' >> "$work/$t.rps"
            awk -v n="$n" -v c="$c" 'BEGIN {if (n > 0) printf "%.2f\n", c / n * 1e6; else print "inf"}' >> "$work/$t.cpu"
            echo "$r" >> "$work/$t.rss"
        done
    done
    for t in "${tools[@]}"; do
        rps[$t]=$(median < "$work/$t.rps"); cpu[$t]=$(median < "$work/$t.cpu"); rss[$t]=$(sort -n "$work/$t.rss" | tail -1)
    done
    for t in "${tools[@]}"; do
        echo "| $obj | $t | ${rps[$t]} | $(awk -v a="${rps[$t]}" -v b="${rps[$b]}" 'BEGIN {printf "%.2f", a / b}') | ${cpu[$t]} | $(awk -v a="${cpu[$t]}" -v b="${cpu[$b]}" 'BEGIN {printf "%.2f", a / b}') | $((rss[$t] / 1024)) |"
    done
}
