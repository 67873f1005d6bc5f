#!/usr/bin/env python3
"""EC2 on one machine, for scripts/test-aws.sh: boots the runner of every stack that moto's
CloudFormation created, by running the template's user data as EC2 would.

moto creates stacks and instances on paper only. This watches its stacks in the given regions;
for each new CREATE_COMPLETE stack it renders the runner's UserData from the template with the
stack's parameters (Fn::Sub: ${Param}, ${AWS::Region}, ${AWS::Partition}, ${!literal}) and runs
it in a private mount namespace (tmpfs on /opt and /var/log, so runners share nothing), with
`shutdown` and `sysctl` replaced by stubs that log their calls. When a stack is deleted, its
runner is terminated, as EC2 terminates the instance. With --break REGION, that region's
runners get a corrupted binary from S3 (a failure the runner must report).

Only loopback is used: moto and the S3 server are the test's own.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

import boto3
import yaml


class CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        v = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        v = loader.construct_sequence(node, deep=True)
    else:
        v = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else "Fn::" + suffix: v}


CfnLoader.add_multi_constructor("!", _tag)


def render_user_data(template, params, region):
    """The exact script EC2 would run for a stack with these parameters."""
    props = template["Resources"]["Runner"]["Properties"]
    text = props["UserData"]["Fn::Base64"]["Fn::Sub"]
    values = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()}
    values.update(params)
    values["AWS::Region"] = region
    values["AWS::Partition"] = "aws"

    def sub(m):
        name = m.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name not in values:
            raise KeyError(f"user data names ${{{name}}}, which is no parameter")
        return values[name]

    return re.sub(r"\$\{([^}]*)\}", sub, text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--moto", required=True, help="moto server URL")
    ap.add_argument("--regions", required=True)
    ap.add_argument("--template", required=True)
    ap.add_argument("--state", required=True, help="folder for each runner's script, log, calls")
    ap.add_argument("--aws-bin", required=True, help="folder holding the real aws CLI")
    ap.add_argument("--break", dest="broken", default="", help="region whose binary is corrupted")
    ap.add_argument("--max-seconds", type=float, default=600)
    a = ap.parse_args()
    with open(a.template) as f:
        template = yaml.load(f, Loader=CfnLoader)
    stubs = os.path.join(a.state, "stubs")
    os.makedirs(stubs, exist_ok=True)
    for cmd in ("shutdown", "sysctl"):
        p = os.path.join(stubs, cmd)
        with open(p, "w") as f:
            f.write('#!/bin/sh\necho "$(basename "$0") $*" >> "$SIM_CALLS"\n')
        os.chmod(p, 0o755)
    broken = os.path.join(a.state, "broken")
    os.makedirs(broken, exist_ok=True)
    with open(os.path.join(broken, "aws"), "w") as f:
        # the real CLI, then one byte of a downloaded binary flipped (a corrupted download)
        f.write(
            '#!/bin/sh\n"$SIM_AWS_BIN/aws" "$@" || exit $?\n'
            'for x in "$@"; do last=$x; done\n'
            'case "$last" in */edgeload) printf X | dd of="$last" bs=1 seek=100 conv=notrunc 2>/dev/null ;; esac\n'
        )
    os.chmod(os.path.join(broken, "aws"), 0o755)

    clients = {
        r: boto3.client("cloudformation", region_name=r, endpoint_url=a.moto)
        for r in a.regions.split()
    }
    running = {}  # (region, stack) -> Popen
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    end = time.monotonic() + a.max_seconds
    while not stop["now"] and time.monotonic() < end:
        seen = set()
        for region, cf in clients.items():
            for s in cf.describe_stacks().get("Stacks", []):
                if s["StackStatus"] != "CREATE_COMPLETE":
                    continue
                key = (region, s["StackName"])
                seen.add(key)
                if key in running:
                    continue
                params = {p["ParameterKey"]: p["ParameterValue"] for p in s.get("Parameters", [])}
                d = os.path.join(a.state, f"{region}-{s['StackName']}")
                os.makedirs(d, exist_ok=True)
                script = os.path.join(d, "userdata.sh")
                with open(script, "w") as f:
                    f.write(render_user_data(template, params, region))
                with open(os.path.join(d, "params.json"), "w") as f:
                    json.dump(params, f, indent=1)
                path = [stubs, a.aws_bin, "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
                if region == a.broken:
                    path.insert(0, broken)
                env = dict(os.environ, PATH=":".join(path), SIM_CALLS=os.path.join(d, "calls.log"),
                           SIM_AWS_BIN=a.aws_bin)
                inner = (
                    "mount -t tmpfs tmpfs /opt && mount -t tmpfs tmpfs /var/log || exit 97; "
                    f"bash {script}; rc=$?; cp /var/log/edgeload-runner.log {d}/ 2>/dev/null; exit $rc"
                )
                log = open(os.path.join(d, "boot.log"), "w")
                running[key] = subprocess.Popen(
                    ["unshare", "-m", "--propagation", "private", "bash", "-c", inner],
                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
                print(f"booted {region}/{s['StackName']}", file=sys.stderr, flush=True)
        # a deleted stack's instance is terminated
        for key in [k for k in running if k not in seen]:
            p = running.pop(key)
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                print(f"terminated {key[0]}/{key[1]}", file=sys.stderr, flush=True)
            with open(os.path.join(a.state, "terminated"), "a") as f:
                f.write(f"{key[0]} {key[1]} {p.wait()}\n")
        time.sleep(0.2)
    for p in running.values():
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
