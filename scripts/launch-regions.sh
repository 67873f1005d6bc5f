#!/usr/bin/env bash
# Runs one edgeload load test in several AWS regions at once:
#   uploads the binary and the scenario, deploys cloudformation/regional-runner.yaml to every
#   region in parallel with one run id and one start time, waits for each region's
#   MANIFEST.json, merges everything with `edgeload report`, and deletes the stacks.
#
# usage: scripts/launch-regions.sh --bucket BUCKET --bucket-region REGION --scenario FILE
#            [--binary target/release/edgeload] [--prefix edgeload] [--regions "us-east-1 eu-west-1"]
#            [--start-in 300] [--max-minutes 120] [--dry-run]
# --dry-run prints every AWS command instead of running it.
set -euo pipefail

bucket="" bucket_region="" scenario="" binary="target/release/edgeload" prefix="edgeload"
regions="us-east-1 eu-west-1 ap-southeast-1" start_in=300 max_minutes=120 dry=0
while (($#)); do
    case "$1" in
        --bucket) bucket=$2; shift 2 ;;
        --bucket-region) bucket_region=$2; shift 2 ;;
        --scenario) scenario=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        --prefix) prefix=$2; shift 2 ;;
        --regions) regions=$2; shift 2 ;;
        --start-in) start_in=$2; shift 2 ;;
        --max-minutes) max_minutes=$2; shift 2 ;;
        --dry-run) dry=1; shift ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
if [ -z "$bucket" ] || [ -z "$bucket_region" ] || [ -z "$scenario" ]; then
    echo "need --bucket, --bucket-region and --scenario" >&2
    exit 2
fi
[ -f "$scenario" ] || { echo "no scenario file $scenario" >&2; exit 2; }
[ -f "$binary" ] || [ "$dry" = 1 ] || { echo "no binary $binary (cargo build --release)" >&2; exit 2; }

# run a command, or only show it
aws_() {
    if [ "$dry" = 1 ]; then
        printf '+ aws'; printf ' %q' "$@"; printf '\n'
    else
        aws "$@"
    fi
}

here=$(cd "$(dirname "$0")/.." && pwd)
run_id="$(date -u +%Y%m%dT%H%M%SZ)-$(printf '%04x' $((RANDOM)))"
start_at=$(date -u -d "@$(($(date +%s) + start_in))" +%Y-%m-%dT%H:%M:%SZ)
sha=$( [ -f "$binary" ] && sha256sum "$binary" | cut -d' ' -f1 || printf '0%.0s' $(seq 64) )
bin_key="$prefix/bin/$run_id/edgeload"
scenario_key="$prefix/scenarios/$run_id/$(basename "$scenario")"
stack="edgeload-$run_id"
echo "run $run_id: regions $regions, start at $start_at" >&2

# the scenario checked here first (its targets, thresholds and, as this machine sees them, the
# files it names): a bad scenario fails now, not in every region after the instances boot.
# (The runners still get the scenario file only, not the files it names: see issue #19.)
if [ -f "$binary" ]; then
    rc=0
    "$binary" run --scenario "$scenario" --check -q > /dev/null || rc=$?
    case $rc in
        0) ;;
        126|127) echo "warning: $binary does not run here (built for another machine?): scenario not checked" >&2 ;;
        *) echo "the scenario does not pass edgeload run --check (above); nothing launched" >&2; exit 2 ;;
    esac
else
    printf '+ %q run --scenario %q --check -q\n' "$binary" "$scenario"
fi

aws_ s3 cp --region "$bucket_region" "$binary" "s3://$bucket/$bin_key"
aws_ s3 cp --region "$bucket_region" "$scenario" "s3://$bucket/$scenario_key"

pids=()
for r in $regions; do
    aws_ cloudformation deploy --region "$r" --stack-name "$stack" \
        --template-file "$here/cloudformation/regional-runner.yaml" --capabilities CAPABILITY_IAM \
        --parameter-overrides "ResultsBucket=$bucket" "ResultsBucketRegion=$bucket_region" "Prefix=$prefix" \
        "RunId=$run_id" "BinaryKey=$bin_key" "BinarySha256=$sha" "ScenarioKey=$scenario_key" \
        "StartAt=$start_at" "MaxRunMinutes=$max_minutes" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || echo "warning: a stack failed to deploy" >&2; done

# wait for every region's MANIFEST.json (or the dead-man time)
deadline=$(($(date +%s) + start_in + max_minutes * 60))
for r in $regions; do
    key="$prefix/runs/$run_id/$r/MANIFEST.json"
    if [ "$dry" = 1 ]; then
        aws_ s3api head-object --region "$bucket_region" --bucket "$bucket" --key "$key"
        continue
    fi
    until aws s3api head-object --region "$bucket_region" --bucket "$bucket" --key "$key" >/dev/null 2>&1; do
        if [ "$(date +%s)" -gt "$deadline" ]; then echo "warning: $r never finished" >&2; break; fi
        sleep 30
    done
done

if [ "$dry" = 1 ]; then
    printf '+ edgeload report s3://%s/%s/runs/%s/ --s3-region %s -o report-%s\n' "$bucket" "$prefix" "$run_id" "$bucket_region" "$run_id"
else
    "$binary" report "s3://$bucket/$prefix/runs/$run_id/" --s3-region "$bucket_region" -o "report-$run_id" || true
fi
for r in $regions; do
    aws_ cloudformation delete-stack --region "$r" --stack-name "$stack"
done
echo "done: s3://$bucket/$prefix/runs/$run_id/ and report-$run_id/" >&2
