#!/usr/bin/env bash
# Tests the multi-region flow as written, on one machine with no AWS account:
#   scripts/launch-regions.sh with the real AWS CLI, CloudFormation answered by moto's server,
#   S3 by Garage, and every runner's user data, rendered from cloudformation/regional-runner.yaml
#   with its stack's parameters, run as EC2 would run it (scripts/aws-sim.py) against the
#   embedded edge on loopback. Three cases:
#   1. 2 regions x 2 runners: the merged report counts exactly what the edge served, each
#      runner sent its share, every stack is deleted, the dead-man timer counts from StartAt;
#   2. 3 regions, one runner's binary corrupted: the launcher prints its FAILED marker and log,
#      exits 1, reports the other regions and deletes all stacks;
#   3. Ctrl-C while waiting: exit 130, stacks deleted, the runners terminated.
# Needs: garage on PATH, python3 (a venv with moto[server] and awscli is made once), unshare
# and root (each runner gets tmpfs on /opt and /var/log in its own mount namespace), and
# target/release/edgeload (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bin=$repo/target/release/edgeload
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
venv=${EDGELOAD_AWS_VENV:-$HOME/.cache/edgeload/aws-venv}
if [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/aws" ]; then
    echo "installing moto[server] and awscli into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'moto[server]' awscli
fi

T=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -z "${lp:-}" ] || kill "$lp" 2>/dev/null || true
    wait 2>/dev/null || true
    if [ -n "${EDGELOAD_TEST_KEEP:-}" ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fail() { echo "FAIL: $*" >&2; exit 1; }
wait_until() {  # what, command...: polls for up to 60 s
    local what=$1; shift
    for _ in $(seq 600); do "$@" > /dev/null 2>&1 && return 0; sleep 0.1; done
    fail "timed out waiting for $what"
}

# S3: Garage, one node, bucket "results"
gd=$T/garage; mkdir -p "$gd"
s3p=$(port); rpc=$(port); adm=$(port)
cat > "$gd/garage.toml" <<CONF
metadata_dir = "$gd/meta"
data_dir = "$gd/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3p"
[admin]
api_bind_addr = "127.0.0.1:$adm"
CONF
G=(garage -c "$gd/garage.toml")
"${G[@]}" server > "$gd/log" 2>&1 & pids+=($!)
wait_until "garage" "${G[@]}" status
"${G[@]}" layout assign -z dc1 -c 1G "$("${G[@]}" node id -q | cut -c1-64)" > /dev/null
"${G[@]}" layout apply --version 1 > /dev/null
"${G[@]}" key import --yes -n test GK0123456789abcdef01234567 "$(printf '0%.0s' {1..64})" > /dev/null
"${G[@]}" bucket create results > /dev/null
"${G[@]}" bucket allow --read --write --owner results --key test > /dev/null

# the AWS API: moto's server; every AWS client here talks to these two
mp=$(port)
"$venv/bin/moto_server" -p "$mp" > "$T/moto.log" 2>&1 & pids+=($!)
export AWS_ACCESS_KEY_ID=GK0123456789abcdef01234567
AWS_SECRET_ACCESS_KEY=$(printf '0%.0s' {1..64}); export AWS_SECRET_ACCESS_KEY
export AWS_ENDPOINT_URL="http://127.0.0.1:$s3p" AWS_ENDPOINT_URL_S3="http://127.0.0.1:$s3p"
export AWS_ENDPOINT_URL_CLOUDFORMATION="http://127.0.0.1:$mp" AWS_DEFAULT_REGION=us-east-1
export PATH="$venv/bin:$PATH"
wait_until "moto" aws cloudformation list-stacks --region us-east-1

# the CDN: the embedded edge, with its ground truth at /_edge/stats
ep=$(port)
"$bin" edge --listen "127.0.0.1:$ep" --hit-latency 1ms --miss-latency 2ms > "$T/edge.log" 2>&1 & pids+=($!)
wait_until "the edge" curl -sf "http://127.0.0.1:$ep/_edge/stats"
served() { curl -sf "http://127.0.0.1:$ep/_edge/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'; }

mkdir -p "$T/sc"
python3 -c 'print("\n".join(f"/img/{i}.jpg" for i in range(300)))' > "$T/sc/urls.txt"
cat > "$T/sc/s.toml" <<TOML
urls = "urls.txt"
order = "shuffled"
region = "ignored-the-runner-says"
thresholds = ["error_rate<0.01"]
[targets]
edge = "http://127.0.0.1:$ep"
[load]
rate = 40
duration = "2s"
TOML

sim() {  # state dir, regions, extra...: the simulated EC2, in the background
    python3_=$venv/bin/python
    "$python3_" scripts/aws-sim.py --moto "http://127.0.0.1:$mp" --regions "$2" \
        --template cloudformation/regional-runner.yaml --state "$1" --aws-bin "$venv/bin" \
        "${@:3}" > "$1.log" 2>&1 &
    sim_pid=$!; pids+=("$sim_pid")
}
stop_sim() { kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; }
no_stacks() {  # region...: none left (deleted stacks are not listed by describe-stacks)
    local r n
    for r in "$@"; do
        n=$(aws cloudformation describe-stacks --region "$r" --query 'length(Stacks)' --output text)
        [ "$n" = 0 ] || fail "$n stack(s) left in $r"
    done
}
# the launcher's AWS CLI, recording every API call it makes (service.Operation)
mkdir -p "$T/rec"
export REC_DIR="$T/rec" REAL_AWS="$venv/bin/aws"
cat > "$T/rec/aws" <<'SH'
#!/bin/sh
echo "$*" >> "$REC_DIR/args"
"$REAL_AWS" --debug "$@" 2> "$REC_DIR/debug.$$"; rc=$?
grep -o 'Event before-call\.[a-z0-9-]*\.[A-Za-z0-9]*:' "$REC_DIR/debug.$$" | cut -c19- | tr -d : >> "$REC_DIR/calls"
# what the CLI says to a user, without its debug log
grep '^An error occurred\|^aws: \|^usage: \|^Unable \|^fatal error' "$REC_DIR/debug.$$" >&2
rm -f "$REC_DIR/debug.$$"
exit $rc
SH
chmod +x "$T/rec/aws"
launch() {  # out, args...
    local out=$1; shift
    rc=0
    (cd "$T" && PATH="${rec_path:-$PATH}" "$repo/scripts/launch-regions.sh" --bucket results --bucket-region garage \
        --scenario "$T/sc/s.toml" --binary "$bin" --edgeload "$bin" --poll-seconds 1 "$@") \
        > "$out" 2>&1 || rc=$?
    run_id=$(sed -n 's/^run \([^:]*\):.*/\1/p' "$out" | head -n 1)
}

echo "== 2 regions x 2 runners" >&2
mkdir -p "$T/ok"; sim "$T/ok" "us-east-1 eu-west-1"
before=$(served)
rec_path="$T/rec:$PATH" launch "$T/ok.out" --regions "us-east-1 eu-west-1" --runners-per-region 2 --start-in 4
stop_sim
[ "$rc" = 0 ] || { cat "$T/ok.out" "$T/ok.log"; cat "$T"/ok/*/edgeload-runner.log 2>/dev/null; fail "launcher exited $rc"; }
got=$(( $(served) - before ))
# each region sends the plan (40/s for 2 s), its two runners half of it each
[ "$got" = 160 ] || fail "the edge served $got requests, the plan is 2 regions x 40/s x 2 s = 160"
merged=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(sum(t["requests"] for t in s["targets"]))' \
    "$T/report-$run_id/summary.json")
[ "$merged" = "$got" ] || fail "the merged report counts $merged requests, the edge served $got"
for r in us-east-1 eu-west-1; do
    for k in 1 2; do
        aws s3 cp --region garage "s3://results/edgeload/runs/$run_id/$r/runner-$k/summary.json" "$T/s.json" > /dev/null
        python3 - "$T/s.json" "$r" "$k" <<'PY' || fail "runner $2/$3's summary"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["region"] == sys.argv[2], s["region"]
assert s["runner"] == {"index": int(sys.argv[3]), "count": 2}, s["runner"]
assert s["rate"]["sent"] == 40, s["rate"]
PY
    done
done
grep -q "| eu-west-1 | 2/2 |" "$T/report-$run_id/report.md" || fail "no row for eu-west-1 runner 2/2 in the report"
# the runners ran the bundle; it is deleted after the run (it may hold secrets), the binary too
for f in SHA256SUMS scenario.toml urls.csv plan.json; do
    grep -q "s3://results/edgeload/bundles/$run_id/$f" "$T/rec/args" || fail "bundle file $f not uploaded"
    if aws s3api head-object --region garage --bucket results --key "edgeload/bundles/$run_id/$f" > /dev/null 2>&1; then
        fail "bundle file $f left in the bucket"
    fi
done
no_stacks us-east-1 eu-west-1
# every API call the launcher made is in the README's list of the operator's permissions
iam=$(sed -n '/<!-- operator-iam -->/,/^  ```$/p' README.md)
calls=$(sort -u "$T/rec/calls")
[ -n "$calls" ] || fail "no AWS call recorded"
for c in $calls; do
    c=${c#before-call.}
    case $c in
        s3.HeadObject) action=s3:GetObject ;;
        s3.ListObjects*) action=s3:ListBucket ;;
        s3.CreateMultipartUpload|s3.UploadPart|s3.CompleteMultipartUpload) action=s3:PutObject ;;
        *) action="${c%%.*}:${c#*.}" ;;
    esac
    grep -qw -- "$action" <<< "$iam" || fail "the launcher calls $c, which needs $action: not in README's operator IAM list"
done
# the dead-man timer: from StartAt + the scenario's 2 s rounded up + 20 min of margin
calls=$(cat "$T"/ok/us-east-1-*runner-1/calls.log)
grep -Eq '^shutdown -h \+2[0-2]$' <<< "$calls" || fail "dead-man timer: $calls"
grep -q '^shutdown -h now$' <<< "$calls" || fail "the runner did not power off: $calls"

echo "== a failed runner" >&2
mkdir -p "$T/bad"; sim "$T/bad" "us-east-1 eu-west-1 ap-southeast-1" --break ap-southeast-1
launch "$T/bad.out" --regions "us-east-1 eu-west-1 ap-southeast-1" --start-in 4
stop_sim
[ "$rc" = 1 ] || { cat "$T/bad.out"; fail "the launcher exited $rc with a failed runner"; }
for said in "ap-southeast-1/runner-1: FAILED" '"step": "fetch-binary"' "edgeload: FAILED" \
    "1 of 3 runner(s) failed"; do
    grep -qF "$said" "$T/bad.out" || { cat "$T/bad.out"; fail "the launcher did not say: $said"; }
done
[ -f "$T/report-$run_id/summary.json" ] || fail "no report of the regions that ran"
no_stacks us-east-1 eu-west-1 ap-southeast-1

echo "== Ctrl-C while waiting" >&2
mkdir -p "$T/int"; sim "$T/int" "us-east-1 eu-west-1"
# (job control: a background job of a script would otherwise start with SIGINT ignored)
set -m
(cd "$T" && exec "$repo/scripts/launch-regions.sh" --bucket results --bucket-region garage \
    --scenario "$T/sc/s.toml" --binary "$bin" --edgeload "$bin" --poll-seconds 1 \
    --regions "us-east-1 eu-west-1" --start-in 300 --ssm) > "$T/int.out" 2>&1 &
lp=$!
set +m
lines_are() { [ "$(grep -c "$2" "$1" 2>/dev/null)" = "$3" ]; }  # file, pattern, count
wait_until "two runners booted" lines_are "$T/int.log" '^booted' 2
# --ssm: the runner's role may open Session Manager's channels (and nothing else is added)
stack=$(aws cloudformation describe-stacks --region eu-west-1 --query 'Stacks[0].StackName' --output text)
role=$(aws cloudformation describe-stack-resources --region eu-west-1 --stack-name "$stack" \
    --query "StackResources[?LogicalResourceId=='RunnerRole'].PhysicalResourceId" --output text)
AWS_ENDPOINT_URL_IAM="http://127.0.0.1:$mp" aws iam list-role-policies --region eu-west-1 --role-name "$role" --output text | grep -q edgeload-runner-session-manager ||
    fail "--ssm: no Session Manager policy on $role"
kill -INT "$lp"
rc=0; wait "$lp" || rc=$?
[ "$rc" = 130 ] || { cat "$T/int.out"; fail "the launcher exited $rc on SIGINT"; }
no_stacks us-east-1 eu-west-1
wait_until "the runners terminated" lines_are "$T/int/terminated" . 2
stop_sim
echo "aws flow ok: 2x2 runners merged exactly ($got requests), a failed runner reported, Ctrl-C cleaned up" >&2
