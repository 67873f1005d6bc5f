#!/usr/bin/env bash
# HTTPS side by side: edgeload vs wrk (OpenSSL) against one nginx with TLS (1 worker, loopback,
# keep-alive), 64 connections, a 4 KB and a 40 KB object, alternating tools, medians of REPS
# runs: req/s, client CPU per request (user+sys of the generator), peak RSS, ratios to wrk;
# HTTP/2 (2 connections, 64 streams in flight) vs h2load (nghttp2); oha (rustls) in both when
# installed (scripts/bench.sh installs it); then a new connection per request (full handshakes
# and resumed ones) vs ab (a full handshake each).
# Writes reports/bench/tls.md. usage: scripts/bench-tls.sh [SECONDS] [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8} reps=${2:-3}
need=()
command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v ab >/dev/null || need+=(apache2-utils)
if ((${#need[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --quiet
export PATH="$HOME/.cargo/bin:$PATH"
bin=$PWD/target/release/edgeload
work=$(mktemp -d)
port=$((30000 + RANDOM % 20000))
port2=$((port + 1))
head -c 4096 /dev/urandom > "$work/4k.bin"
head -c 40960 /dev/urandom > "$work/40k.bin"
# a CA and a leaf it signs (a self-signed CA certificate is not a valid server certificate)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
    -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$work/key.pem" -out "$work/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' > "$work/ext.cnf"
openssl x509 -req -in "$work/leaf.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
    -days 2 -extfile "$work/ext.cnf" -out "$work/cert.pem" 2>/dev/null
tls="ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem; root $work;"
# shellcheck disable=SC1091
. scripts/bench-nginx.sh
trap 'nginx -c "$work/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$work"' EXIT
# (Debian 12's nginx 1.22 offers TLS 1.2 at most unless told: 1.23.4 added 1.3 by default)
bench_nginx "$work" "$port" "ssl_session_cache shared:tls:1m; ssl_protocols TLSv1.2 TLSv1.3;
    server { listen 127.0.0.1:$port ssl; $tls }
    server { listen 127.0.0.1:$port2 ssl http2; $tls }"
bench_check "https://localhost:$port/4k.bin" 4096 --cacert "$work/ca.pem"
bench_check "https://localhost:$port/40k.bin" 40960 --cacert "$work/ca.pem"

# prints "requests cpu_seconds peak_rss_kb" for one generator run
measure() {
    local tool=$1 obj=$2 out="$work/out.txt"
    case "$tool" in
        wrk) /usr/bin/time -f "%U %S %M" -o "$work/t" wrk -t2 -c64 -d"${secs}s" "https://localhost:$port/$obj" > "$out" 2>&1
             # successful responses only (wrk counts error pages as requests)
             n=$(awk '/requests in/ {n = $1} /Non-2xx/ {bad = $NF} END {print n - bad}' "$out") ;;
        edgeload) printf '/%s\n' "$obj" > "$work/urls.txt"
             /usr/bin/time -f "%U %S %M" -o "$work/t" "$bin" run "$work/urls.txt" -t "n=https://localhost:$port" \
                --cacert "$work/ca.pem" -c 64 -d "${secs}s" -o "$work/res" -q --json > "$out"
             # successful responses only: a run whose handshakes fail must not look fast
             n=$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["targets"][0]; print(t["requests"] - t["errors"])' "$out") ;;
        oha|oha-h2) local url="https://localhost:$port/$obj" h2=()
             [ "$tool" = oha-h2 ] && { url="https://localhost:$port2/$obj"; h2=(--http2 -c 2 -p 32); }
             [ "$tool" = oha ] && h2=(-c 64)
             /usr/bin/time -f "%U %S %M" -o "$work/t" oha "${h2[@]}" -z "${secs}s" --no-tui --output-format json \
                --cacert "$work/ca.pem" "$url" > "$out" 2>/dev/null
             n=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["statusCodeDistribution"].get("200", 0))' "$out") ;;
        h2load) /usr/bin/time -f "%U %S %M" -o "$work/t" h2load -t2 -c2 -m32 -D "$secs" "https://localhost:$port2/$obj" > "$out" 2>&1
             n=$(awk '/^requests:/ {print $8}' "$out") ;;
        edgeload-h2) printf '/%s\n' "$obj" > "$work/urls.txt"
             /usr/bin/time -f "%U %S %M" -o "$work/t" "$bin" run "$work/urls.txt" -t "n=https://localhost:$port2" \
                --cacert "$work/ca.pem" --http2 --connections 2 -c 64 -d "${secs}s" -o "$work/res" -q --json > "$out"
             n=$(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["targets"][0]; assert "HTTP/2" in t["connections"]["protocols"]; print(t["requests"] - t["errors"])' "$out") ;;
    esac
    read -r u s rss < "$work/t"
    echo "$n $(awk -v u="$u" -v s="$s" 'BEGIN {print u + s}') $rss"
}
tools=(wrk edgeload)
command -v oha >/dev/null && tools+=(oha)
mkdir -p reports/bench
{
echo "# HTTPS load generator benchmark ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, nginx 1 worker with TLS on loopback)"
echo
echo "Keep-alive, 64 connections, ${secs} s, median of $reps alternating runs; ECDSA P-256"
echo "certificate, TLS 1.3 with each tool's default suite (before 2026-11-30 these runs were TLS 1.2:"
echo "the benchmark's nginx offered no more). CPU = user+sys of the generator process;"
echo "ratios to wrk in the same run. wrk -t2; edgeload with its default threads."
echo
echo "| object | tool | req/s | ratio | CPU us/request | ratio | peak RSS MB |"
echo "|---|---|---|---|---|---|---|"
for obj in 4k.bin 40k.bin; do
    bench_table "$obj"
done
echo
echo "HTTP/2 over TLS: 2 connections, 64 streams in flight (h2load -t2 -c2 -m32; edgeload --http2"
echo "--connections 2 -c 64; oha --http2 -c 2 -p 32), ratios to h2load:"
echo
echo "| object | tool | req/s | ratio | CPU us/request | ratio | peak RSS MB |"
echo "|---|---|---|---|---|---|---|"
# shellcheck disable=SC2034  # base: read by bench_table
tools=(h2load edgeload-h2) base=h2load
command -v oha >/dev/null && tools+=(oha-h2)
for obj in 4k.bin 40k.bin; do
    bench_table "$obj"
done
echo
echo "A new connection per request (edgeload --no-keepalive, 16 workers, ${secs} s, 4 KB; ab -c 16,"
echo "which makes a full handshake each, the same time):"
echo
echo "| tool, TLS sessions | req/s | handshakes | resumed | handshake p50 ms | p99 ms | CPU us/request |"
echo "|---|---|---|---|---|---|---|"
/usr/bin/time -f "%U %S %M" -o "$work/t" ab -q -c 16 -t "$secs" -n 10000000 "https://localhost:$port/4k.bin" > "$work/ab.txt" 2>&1 || true
read -r u s _ < "$work/t"
awk -v u="$u" -v s="$s" -v secs="$secs" '/^Complete requests:/ {n = $3} /^Failed requests:/ {f = $3}
    END {ok = n - f; printf "| ab, full handshakes | %.0f | %d | 0 | - | - | %.1f |\n", ok / secs, ok, (u + s) / ok * 1e6}' "$work/ab.txt"
printf '/4k.bin\n' > "$work/urls.txt"
for resume in on off; do
    /usr/bin/time -f "%U %S %M" -o "$work/t" "$bin" run "$work/urls.txt" -t "n=https://localhost:$port" \
        --cacert "$work/ca.pem" -c 16 -d "${secs}s" --no-keepalive --tls-resume "$resume" \
        -o "$work/res" -q --json > "$work/out.txt"
    read -r u s _ < "$work/t"
    python3 - "$work/out.txt" "$u" "$s" "$resume" "$secs" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); t = d["targets"][0]; c = t["connections"]
n = t["requests"] - t["errors"]  # successful responses only
cpu = (float(sys.argv[2]) + float(sys.argv[3])) / n * 1e6 if n else float("inf")
print(f"| edgeload, {'resumed' if sys.argv[4] == 'on' else 'full handshakes'} | {n / float(sys.argv[5]):.0f} | {c['tls_handshakes']} | {c['tls_resumed']} | {c['tls_handshake']['p50']:.2f} | {c['tls_handshake']['p99']:.2f} | {cpu:.1f} |")
PY
done
} | tee reports/bench/tls.md
