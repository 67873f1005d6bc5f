# shellcheck shell=bash
# Sourced by the load-generator benchmarks: bench_nginx DIR PORT starts one nginx (1 worker,
# loopback, keep-alive without limit, no access log) serving DIR on 127.0.0.1:PORT, its files
# in DIR too; stop it with `nginx -c "DIR/nginx.conf" -s stop`.
bench_nginx() {
    local dir=$1 port=$2
    cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server { listen 127.0.0.1:$port; root $dir; }
}
CONF
    # nginx's workers run as nobody: a mktemp folder (0700, root's) would answer 403 to every
    # request, and the benchmark would time error pages
    chmod 755 "$dir"
    chmod 644 "$dir"/*.bin
    nginx -c "$dir/nginx.conf"
    sleep 0.3
    bench_check "http://127.0.0.1:$port/4k.bin" 4096
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
