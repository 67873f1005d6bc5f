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
    nginx -c "$dir/nginx.conf"
    sleep 0.3
}
