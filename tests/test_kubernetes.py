"""deploy/kubernetes: the StatefulSet runs options the image's ``p8815-sim serve`` has."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from simulator.cli import ENV_PREFIX, build_parser, parse_args
from simulator.schema.load import parse_scenario

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"


def load(name: str) -> Any:
    """A manifest."""
    return yaml.safe_load((DEPLOY / name).read_text())


def container() -> dict[str, Any]:
    """The simulator's container of the StatefulSet."""
    return dict(load("statefulset.yaml")["spec"]["template"]["spec"]["containers"][0])


def test_each_pod_serves_its_own_shard() -> None:
    sts, c = load("statefulset.yaml"), container()
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert int(env["SHARDS"]) == sts["spec"]["replicas"]
    for k in range(sts["spec"]["replicas"]):
        script = c["args"][0]
        shell = {"HOSTNAME": f"{sts['metadata']['name']}-{k}", "SHARDS": env["SHARDS"]}
        argv = subprocess.run(
            [*c["command"], script.replace("exec p8815-sim", "printf '%s\\n'"), "sh"],
            env=shell, capture_output=True, text=True, check=True, timeout=30,
        ).stdout.split()  # fmt: skip
        args = parse_args(argv, {})
        assert args.shard == (k, sts["spec"]["replicas"])
        assert args.scenario == "/etc/p8815-sim/scenario.yaml"


def test_every_environment_variable_is_a_serve_option() -> None:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    dests = {a.dest.upper() for a in sub.choices["serve"]._actions}
    names = [e["name"] for e in container()["env"] if e["name"].startswith(ENV_PREFIX)]
    assert names and all(n.removeprefix(ENV_PREFIX) in dests for n in names)


def test_the_configmap_holds_a_valid_scenario() -> None:
    scenario = parse_scenario(load("configmap.yaml")["data"]["scenario.yaml"])
    assert len(scenario.devices) == 1000
