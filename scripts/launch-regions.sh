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
declare -A subnet=() sgroup=()
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
        --subnet) subnet[${2%%=*}]=${2#*=}; shift 2 ;;
        --security-group) sgroup[${2%%=*}]=${2#*=}; shift 2 ;;
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
# shellcheck disable=SC2317  # (called by the traps)
cleanup_work() { rm -rf "$work"; }
trap cleanup_work EXIT

# the scenario checked here (targets, thresholds, the URL list's every path) and bundled with
# the files it names: a bad scenario fails now, not in every region after the instances boot
rc=0
"$edgeload" run --scenario "$scenario" --check --bundle "$work/bundle" -q > "$work/plan.json" || rc=$?
case $rc in
    0) ;;
    126|127) die "$edgeload does not run here (--edgeload FILE: a build for this machine)" ;;
    *) die "the scenario does not pass edgeload run --check (above); nothing launched" ;;
esac
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

aws_ s3 cp --only-show-errors --region "$bucket_region" "$binary" "s3://$bucket/$bin_key"
while read -r _ name; do
    aws_ s3 cp --only-show-errors --region "$bucket_region" "$work/bundle/$name" "s3://$bucket/$bundle_key/$name"
done < "$work/bundle/SHA256SUMS"
aws_ s3 cp --only-show-errors --region "$bucket_region" "$work/bundle/SHA256SUMS" "s3://$bucket/$bundle_key/SHA256SUMS"

stacks=()   # "region stack" of every stack asked for
delete_stacks() {
    local s
    for s in "${stacks[@]}"; do
        aws_ cloudformation delete-stack --region "${s%% *}" --stack-name "${s#* }" ||
            echo "warning: could not delete stack ${s#* } in ${s%% *}: delete it by hand" >&2
    done
    stacks=()
}
# shellcheck disable=SC2317  # (called by the trap)
on_signal() {
    trap - INT TERM
    echo "interrupted: deleting the stacks" >&2
    # the deploys still running are stopped first (a deleted stack is not created after)
    jobs -p | xargs -r kill 2>/dev/null || true
    wait 2>/dev/null || true
    delete_stacks
    exit 130
}
trap on_signal INT TERM

pids=() names=()
for r in $regions; do
    net=()
    [ -n "${subnet[$r]:-}" ] && net+=("SubnetId=${subnet[$r]}")
    [ -n "${sgroup[$r]:-}" ] && net+=("SecurityGroupId=${sgroup[$r]}")
    for k in $(seq "$runners"); do
        stack="edgeload-$run_id-runner-$k"
        stacks+=("$r $stack")
        aws_ cloudformation deploy --region "$r" --stack-name "$stack" \
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
# a runner is pending until its MANIFEST.json (done) or FAILED (failed) is there
declare -A state=()
for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
        state[${names[$i]}]=pending
    else
        state[${names[$i]}]=failed
        echo "${names[$i]}: the stack did not deploy:" >&2
        tail -n 5 "$work/deploy-${names[$i]%%/*}-${names[$i]##*-}.log" >&2
    fi
    [ "$dry" = 0 ] || cat "$work/deploy-${names[$i]%%/*}-${names[$i]##*-}.log"
done

exists() { aws s3api head-object --region "$bucket_region" --bucket "$bucket" --key "$1" > /dev/null 2>&1; }
deadline=$((start_epoch + run_minutes * 60))
failed=0
if [ "$dry" = 1 ]; then
    for n in "${names[@]}"; do
        aws_ s3api head-object --region "$bucket_region" --bucket "$bucket" --key "$prefix/runs/$run_id/$n/MANIFEST.json"
    done
else
    last_line=0
    while :; do
        pending=0
        for n in "${names[@]}"; do
            [ "${state[$n]}" = pending ] || continue
            key="$prefix/runs/$run_id/$n"
            if exists "$key/MANIFEST.json"; then
                state[$n]="done"
                echo "$n: done" >&2
            elif exists "$key/FAILED"; then
                state[$n]=failed
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
            for n in "${names[@]}"; do
                if [ "${state[$n]}" = pending ]; then state[$n]=failed; echo "$n: never finished (dead-man time passed)" >&2; fi
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
for n in "${names[@]}"; do [ "${state[$n]}" != failed ] || failed=$((failed + 1)); done

report_rc=0
if [ "$dry" = 1 ]; then
    printf '+ %q report %q --s3-region %q -o %q\n' "$edgeload" "$runs/" "$bucket_region" "report-$run_id"
elif ((failed < ${#names[@]})); then
    "$edgeload" report "$runs/" --s3-region "$bucket_region" -o "report-$run_id" || report_rc=$?
fi
trap - INT TERM
delete_stacks
echo "results: $runs/ and report-$run_id/" >&2
if ((failed > 0)); then
    echo "$failed of ${#names[@]} runner(s) failed (above): the report holds the others only" >&2
    exit 1
fi
exit "$report_rc"
