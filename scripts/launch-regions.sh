#!/usr/bin/env bash
# Runs one edgeload load test from several AWS regions at once, N runners a region:
#   checks the scenario and bundles it with the files it names (edgeload run --check --bundle),
#   uploads the bundle and the static binary for the instance type's architecture, deploys
#   cloudformation/regional-runner.yaml once per runner (region x N) with one run id and one
#   start time, waits for each runner's MANIFEST.json or FAILED marker, merges everything with
#   `edgeload report`, and deletes the stacks (also on failure, Ctrl-C or TERM).
#
# usage: scripts/launch-regions.sh --bucket BUCKET --bucket-region REGION --scenario FILE
#          [--regions "us-east-1 eu-west-1 ap-southeast-1"] [--runners-per-region 1]
#          [--instance-type c6i.large] [--binary FILE] [--edgeload FILE] [--prefix edgeload]
#          [--start-in 300] [--margin-minutes 20] [--max-minutes 120] [--poll-seconds 30]
#          [--subnet REGION=subnet-...] [--security-group REGION=sg-...] [--ssm] [--dry-run]
#   --binary     the build the instances run (default: scripts/build-release.sh's static build
#                for the instance type's architecture; Graviton types such as c7g get arm64)
#   --edgeload   the build that checks the scenario and writes the report here (default:
#                target/release/edgeload, else edgeload on PATH)
#   --max-minutes  the runners' dead-man time when the scenario has no duration
#   --subnet, --security-group  per region (repeatable); default: the region's default VPC
#   --ssm        let SSM Session Manager open a shell on the runners
#   --dry-run    checks and bundles the scenario, then prints every AWS command instead
# Exit: 0 when every runner uploaded its results and the report was written; 1 when a runner
# failed or never finished (its log's tail is printed); 2 on bad arguments; 130 on Ctrl-C.
set -euo pipefail

bucket="" bucket_region="" scenario="" binary="" edgeload="" prefix="edgeload"
regions="us-east-1 eu-west-1 ap-southeast-1" runners=1 instance_type="c6i.large"
start_in=300 margin=20 max_minutes=120 poll=30 ssm=false dry=0
subnets=() sgroups=()   # REGION=ID each (plain arrays: bash 3.2 on a Mac has no associative ones)
while (($#)); do
    case "$1" in
        --bucket) bucket=$2; shift 2 ;;
        --bucket-region) bucket_region=$2; shift 2 ;;
        --scenario) scenario=$2; shift 2 ;;
        --regions) regions=$2; shift 2 ;;
        --runners-per-region) runners=$2; shift 2 ;;
        --instance-type) instance_type=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        --edgeload) edgeload=$2; shift 2 ;;
        --prefix) prefix=$2; shift 2 ;;
        --start-in) start_in=$2; shift 2 ;;
        --margin-minutes) margin=$2; shift 2 ;;
        --max-minutes) max_minutes=$2; shift 2 ;;
        --poll-seconds) poll=$2; shift 2 ;;
        --subnet) subnets+=("$2"); shift 2 ;;
        --security-group) sgroups+=("$2"); shift 2 ;;
        --ssm) ssm=true; shift ;;
        --dry-run) dry=1; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (--help)" >&2; exit 2 ;;
    esac
done
die() { echo "$*" >&2; exit 2; }
if [ -z "$bucket" ] || [ -z "$bucket_region" ] || [ -z "$scenario" ]; then
    die "need --bucket, --bucket-region and --scenario (--help)"
fi
[ -f "$scenario" ] || die "no scenario file $scenario"
for n in "$runners" "$start_in" "$margin" "$max_minutes" "$poll"; do
    [[ $n =~ ^[0-9]+$ ]] || die "not a whole number: $n"
done
((runners >= 1 && runners <= 100)) || die "--runners-per-region $runners: 1 to 100"
[[ $prefix =~ ^[a-zA-Z0-9._-]+$ ]] || die "--prefix $prefix: letters, digits, . _ - only"
[[ $bucket =~ ^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$ ]] || die "--bucket $bucket: not an S3 bucket name"
[[ $bucket_region =~ ^[a-z0-9-]+$ ]] || die "--bucket-region $bucket_region: not a region"
# the value for REGION in a list of REGION=ID (empty when none)
for_region() {
    local r=$1 kv; shift
    for kv in "$@"; do
        if [ "${kv%%=*}" = "$r" ]; then
            [[ ${kv#*=} =~ ^[a-z]+-[0-9a-f]+$ ]] || die "not an id: ${kv#*=}"
            printf '%s' "${kv#*=}"
        fi
    done
}
[[ $instance_type =~ ^[a-z0-9.-]+$ ]] || die "--instance-type $instance_type: not an instance type"
for r in $regions; do [[ $r =~ ^[a-z0-9-]+$ ]] || die "not a region: $r"; done

here=$(cd "$(dirname "$0")/.." && pwd)
# Graviton families have a g after their generation digit (c7g, m6gd, c6gn, t4g, x2gd, g5g)
if [[ ${instance_type%%.*} =~ ^[a-z]+[0-9]+[a-z-]*g ]]; then arch=aarch64 ami=arm64; else arch=x86_64 ami=x86_64; fi
[ -n "$binary" ] || binary="$here/target/$arch-unknown-linux-musl/release/edgeload"
if [ -z "$edgeload" ]; then
    if [ -x "$here/target/release/edgeload" ]; then edgeload="$here/target/release/edgeload"
    else edgeload=$(command -v edgeload) || die "no local edgeload: cargo build --release, or --edgeload FILE"; fi
fi
if [ ! -f "$binary" ] && [ "$dry" = 0 ]; then
    die "no $arch build $binary for $instance_type: scripts/build-release.sh (or --binary FILE)"
fi

run_id="$(date -u +%Y%m%dT%H%M%SZ)-$(printf '%04x' $((RANDOM)))"
work=$(mktemp -d)
stacks=()     # "region stack" of every stack asked for
uploaded=()   # keys of the binary and the bundle (deleted at the end: the scenario may hold secrets)
pids=()       # the deploys
# shellcheck disable=SC2317  # (called by the traps)
on_exit() {
    local rc=$?
    trap - EXIT INT TERM HUP
    delete_stacks
    rm -rf "$work"
    exit "$rc"
}
trap on_exit EXIT

# the scenario checked here (targets, thresholds, the URL list's every path) and bundled with
# the files it names: a bad scenario fails now, not in every region after the instances boot
rc=0
"$edgeload" run --scenario "$scenario" --check --bundle "$work/bundle" -q > "$work/plan.json" || rc=$?
case $rc in
    0) ;;
    126|127) die "$edgeload does not run here (--edgeload FILE: a build for this machine)" ;;
    *) die "the scenario does not pass edgeload run --check (above); nothing launched" ;;
esac
# the last runner's share too (a closed model's workers are split over the runners)
if ((runners > 1)); then
    "$edgeload" run --scenario "$scenario" --check --runner "$runners/$runners" -q > /dev/null ||
        die "the scenario cannot be split over $runners runners (above); nothing launched"
fi
# the runners' dead-man time: the plan's duration and a margin (or --max-minutes)
duration=$(sed -n 's/^  "duration_s": \([0-9.]*\),\{0,1\}$/\1/p' "$work/plan.json")
if [ -n "$duration" ]; then
    run_minutes=$(( (${duration%.*} + 59) / 60 + margin ))
else
    run_minutes=$max_minutes
fi
((run_minutes >= 5)) || run_minutes=5
start_epoch=$(($(date +%s) + start_in))
# (GNU date, or BSD date on a Mac)
start_at=$(date -u -d "@$start_epoch" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$start_epoch" +%Y-%m-%dT%H:%M:%SZ)
sha() {
    if [ ! -f "$1" ]; then printf '0%.0s' $(seq 64)
    elif command -v sha256sum > /dev/null; then sha256sum "$1" | cut -d' ' -f1
    else shasum -a 256 "$1" | cut -d' ' -f1; fi
}
bin_sha=$(sha "$binary")
bundle_sha=$(sha "$work/bundle/SHA256SUMS")
bin_key="$prefix/bin/$run_id/edgeload-$arch"
bundle_key="$prefix/bundles/$run_id"
runs="s3://$bucket/$prefix/runs/$run_id"
echo "run $run_id: regions $regions, $runners runner(s) each ($instance_type, $arch), start at $start_at, dead-man after $run_minutes min" >&2

# run an AWS command, or only show it
aws_() {
    if [ "$dry" = 1 ]; then
        printf '+ aws'; printf ' %q' "$@"; printf '\n'
    else
        aws "$@"
    fi
}

# shellcheck disable=SC2317  # (called by the traps)
delete_stacks() {
    local s p
    # the deploys still running are stopped first (each is the aws process itself: `exec`)
    for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2>/dev/null || true; done
    pids=()
    for s in ${stacks[@]+"${stacks[@]}"}; do
        aws_ cloudformation delete-stack --region "${s%% *}" --stack-name "${s#* }" ||
            echo "warning: could not delete stack ${s#* } in ${s%% *}: delete it by hand" >&2
    done
    for s in ${stacks[@]+"${stacks[@]}"}; do
        aws_ cloudformation wait stack-delete-complete --region "${s%% *}" --stack-name "${s#* }" ||
            echo "warning: stack ${s#* } in ${s%% *} is not deleted yet: check it" >&2
    done
    stacks=()
    for s in ${uploaded[@]+"${uploaded[@]}"}; do
        aws_ s3 rm --only-show-errors --region "$bucket_region" "s3://$bucket/$s" ||
            echo "warning: could not delete s3://$bucket/$s" >&2
    done
    uploaded=()
}
# shellcheck disable=SC2317  # (called by the traps)
on_signal() {
    echo "interrupted: deleting the stacks" >&2
    exit 130   # (the EXIT trap deletes them)
}
trap on_signal INT TERM HUP

put() {  # file, key
    uploaded+=("$2")
    aws_ s3 cp --only-show-errors --region "$bucket_region" "$1" "s3://$bucket/$2"
}
put "$binary" "$bin_key"
while read -r _ name; do
    put "$work/bundle/$name" "$bundle_key/$name"
done < "$work/bundle/SHA256SUMS"
put "$work/bundle/SHA256SUMS" "$bundle_key/SHA256SUMS"

# one deploy, in the background: `exec` makes the job the aws process, so that a kill reaches it
deploy() {
    if [ "$dry" = 1 ]; then aws_ cloudformation deploy "$@"; else exec aws cloudformation deploy "$@"; fi
}
names=()
for r in $regions; do
    net=()
    s=$(for_region "$r" ${subnets[@]+"${subnets[@]}"}) || exit 2
    [ -z "$s" ] || net+=("SubnetId=$s")
    s=$(for_region "$r" ${sgroups[@]+"${sgroups[@]}"}) || exit 2
    [ -z "$s" ] || net+=("SecurityGroupId=$s")
    for k in $(seq "$runners"); do
        stack="edgeload-$run_id-runner-$k"
        stacks+=("$r $stack")
        deploy --region "$r" --stack-name "$stack" \
            --template-file "$here/cloudformation/regional-runner.yaml" --capabilities CAPABILITY_IAM \
            --parameter-overrides "ResultsBucket=$bucket" "ResultsBucketRegion=$bucket_region" \
            "Prefix=$prefix" "RunId=$run_id" "RunnerIndex=$k" "RunnerCount=$runners" \
            "BinaryKey=$bin_key" "BinarySha256=$bin_sha" "BundleSha256=$bundle_sha" \
            "StartAt=$start_at" "RunMinutes=$run_minutes" "InstanceType=$instance_type" \
            "LatestAmiId=/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-$ami" \
            "SsmAccess=$ssm" ${net[@]+"${net[@]}"} > "$work/deploy-$r-$k.log" 2>&1 &
        pids+=($!) names+=("$r/runner-$k")
    done
done
# a runner is pending until its MANIFEST.json (done) or FAILED (failed) is there; states[i] is
# names[i]'s
states=()
for i in "${!pids[@]}"; do
    log="$work/deploy-${names[$i]%%/*}-${names[$i]##*-}.log"
    states[i]=pending
    if ! wait "${pids[$i]}"; then
        # the CLI can fail (throttled) after the stack was made: the stack says
        st=$(aws cloudformation describe-stacks --region "${names[$i]%%/*}" \
            --stack-name "edgeload-$run_id-${names[$i]##*/}" --query 'Stacks[0].StackStatus' \
            --output text 2>/dev/null) || st=missing
        if [ "$st" != CREATE_COMPLETE ]; then
            states[i]=failed
            echo "${names[$i]}: the stack did not deploy ($st):" >&2
            tail -n 5 "$log" >&2
        fi
    fi
    [ "$dry" = 0 ] || cat "$log"
done
pids=()

# 0: there; 1: not there (404); 2: cannot tell (said once)
exists() {
    local err
    if err=$(aws s3api head-object --region "$bucket_region" --bucket "$bucket" --key "$1" 2>&1 > /dev/null); then
        return 0
    fi
    case $err in *"(404)"*|*"Not Found"*) return 1 ;; esac
    if [ -z "${said_s3_error:-}" ]; then
        echo "warning: cannot read s3://$bucket/$1 (retrying): $err" >&2
        said_s3_error=1
    fi
    return 2
}
# the runners power off at the deadline: a last upload may land a little after
deadline=$((start_epoch + run_minutes * 60 + 2 * poll + 60))
failed=0
if [ "$dry" = 1 ]; then
    for n in "${names[@]}"; do
        aws_ s3api head-object --region "$bucket_region" --bucket "$bucket" --key "$prefix/runs/$run_id/$n/MANIFEST.json"
    done
else
    last_line=0
    while :; do
        pending=0
        for i in "${!names[@]}"; do
            n=${names[$i]}
            [ "${states[$i]}" = pending ] || continue
            key="$prefix/runs/$run_id/$n"
            if exists "$key/MANIFEST.json"; then
                states[i]="done"
                echo "$n: done" >&2
            elif exists "$key/FAILED"; then
                states[i]=failed
                echo "$n: FAILED: $(aws s3 cp --region "$bucket_region" "s3://$bucket/$key/FAILED" - 2>/dev/null)" >&2
                echo "--- the end of its runner.log ($runs/$n/runner.log):" >&2
                aws s3 cp --region "$bucket_region" "s3://$bucket/$key/runner.log" - 2>/dev/null | tail -n 20 >&2 || true
                echo "---" >&2
            else
                pending=$((pending + 1))
            fi
        done
        ((pending > 0)) || break
        if (($(date +%s) > deadline)); then
            for i in "${!names[@]}"; do
                if [ "${states[$i]}" = pending ]; then
                    states[i]=failed
                    echo "${names[$i]}: never finished (its dead-man time passed)" >&2
                fi
            done
            break
        fi
        if (($(date +%s) - last_line >= 60)); then
            echo "$(date -u +%H:%M:%S) waiting for $pending of ${#names[@]} runner(s)" >&2
            last_line=$(date +%s)
        fi
        sleep "$poll"
    done
fi
for st in "${states[@]}"; do [ "$st" != failed ] || failed=$((failed + 1)); done

report_rc=0
if [ "$dry" = 1 ]; then
    printf '+ %q report %q --s3-region %q -o %q\n' "$edgeload" "$runs/" "$bucket_region" "report-$run_id"
elif ((failed < ${#names[@]})); then
    "$edgeload" report "$runs/" --s3-region "$bucket_region" -o "report-$run_id" || report_rc=$?
fi
delete_stacks
echo "results: $runs/ and report-$run_id/" >&2
if ((failed > 0)); then
    echo "$failed of ${#names[@]} runner(s) failed (above): the report holds the others only" >&2
    exit 1
fi
exit "$report_rc"
