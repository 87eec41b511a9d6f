"""The Kubernetes work pools, offline: each base job template rendered for a sample flow run by
prefect-kubernetes itself (as its worker does before creating the Job), and the manifest
validated against Kubernetes' own schemas (kubernetes-validate, strict). No cluster here: what
a cluster would add (scheduling on GPU nodes, pulling the image) is not exercised."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from deployments.k8s.templates import HERE, IMAGE, SECRET, adapt, default_template

REPO = Path(__file__).resolve().parent.parent


def _render(template: dict, values: dict) -> dict:
    from prefect.client.schemas.objects import Flow, FlowRun
    from prefect.client.schemas.responses import DeploymentResponse
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    config = asyncio.run(
        KubernetesWorkerJobConfiguration.from_template_and_values(template, values)
    )
    flow = Flow(id=uuid.uuid4(), name="video")
    deployment = DeploymentResponse(id=uuid.uuid4(), name="video", flow_id=flow.id)
    run = FlowRun(id=uuid.uuid4(), name="calm-otter", flow_id=flow.id, deployment_id=deployment.id)
    config.prepare_for_flow_run(flow_run=run, deployment=deployment, flow=flow, worker_name="w1")
    return config.job_manifest


@pytest.mark.parametrize("pool", ["cpu", "gpu"])
def test_the_committed_template_is_the_generators(pool):
    committed = json.loads((HERE / f"{pool}.json").read_text())
    assert committed == adapt(default_template(), pool), "run python -m deployments.k8s.templates"


@pytest.mark.parametrize("pool", ["cpu", "gpu"])
def test_each_pool_renders_a_valid_job(pool):
    template = json.loads((HERE / f"{pool}.json").read_text())
    manifest = _render(template, {"namespace": "mpt"})
    assert kubernetes_validate.validate(manifest, "1.33", strict=True) == "1.33"
    pod = manifest["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == IMAGE
    assert container["envFrom"] == [{"secretRef": {"name": SECRET}}]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MPT_WORK_DIR"] == "/var/lib/mpt" and "PREFECT__FLOW_RUN_ID" in env
    assert pod["volumes"] == [{"name": "work", "emptyDir": {}}]
    limits = container["resources"]["limits"]
    if pool == "gpu":
        assert limits["nvidia.com/gpu"] == 1
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    else:
        assert "nvidia.com/gpu" not in limits and "nodeSelector" not in pod
    assert manifest["metadata"]["namespace"] == "mpt"


def test_a_broken_template_is_caught():
    template = json.loads((HERE / "cpu.json").read_text())
    template["job_configuration"]["job_manifest"]["spec"]["backoffLimit"] = "none"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(_render(template, {}), "1.33", strict=True)


def test_worker_values_and_k8s_deployments_match_the_project():
    values = yaml.safe_load((HERE / "worker-values.yaml").read_text())
    assert values["worker"]["config"]["type"] == "kubernetes"
    assert values["worker"]["config"]["workPool"] == "cpu"
    assert values["worker"]["apiConfig"] == "selfHostedServer"
    k8s = yaml.safe_load((HERE / "prefect.yaml").read_text())
    local = yaml.safe_load((REPO / "prefect.yaml").read_text())
    entry = {d["name"]: d["entrypoint"] for d in local["deployments"]}
    assert {d["name"]: d["entrypoint"] for d in k8s["deployments"]} == entry
    pools = {d["name"]: d["work_pool"]["name"] for d in k8s["deployments"]}
    assert pools["upscale"] == "gpu" and pools["video"] == "cpu"
    docker = (REPO / "deployments" / "Dockerfile").read_text()
    assert "WORKDIR /app" in docker and "/app" in str(k8s["pull"])
