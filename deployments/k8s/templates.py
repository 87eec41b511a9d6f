"""The Kubernetes work pools' base job templates, made from prefect-kubernetes' default
(`prefect work-pool get-default-base-job-template --type kubernetes`) and adapted:

- the image defaults to the worker image `deployments/Dockerfile` builds;
- every pod gets its settings from the Secret `mpt-env` (MPT_* storage and database
  settings, PREFECT_API_URL) and an emptyDir work dir: pods share no disk, S3 shares the work;
- `cpu`: 2 CPUs and 4 GiB requested per video; `gpu`: one `nvidia.com/gpu`, scheduled only on
  GPU nodes (node selector and the NVIDIA taint's toleration);
- `completions`/`parallelism` moved from the pod spec (where the default puts them, which a
  strict schema check refuses) to the Job spec.

    python -m deployments.k8s.templates          # rewrite cpu.json and gpu.json beside this file
    prefect work-pool create cpu --type kubernetes --base-job-template deployments/k8s/cpu.json
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
IMAGE = "ghcr.io/moneyprinterturbo-plus/worker:latest"
SECRET = "mpt-env"
WORK_DIR = "/var/lib/mpt"

POOLS: dict[str, dict[str, Any]] = {
    "cpu": {"cpu_request": "2", "memory_request": "4Gi", "cpu_limit": "4", "memory_limit": "8Gi"},
    "gpu": {"cpu_request": "4", "memory_request": "16Gi", "cpu_limit": "8", "memory_limit": "32Gi"},
}


def default_template() -> dict[str, Any]:
    from prefect_kubernetes.worker import KubernetesWorker

    return KubernetesWorker.get_default_base_job_template()


def adapt(template: dict[str, Any], pool: str) -> dict[str, Any]:
    t = copy.deepcopy(template)
    job = t["job_configuration"]["job_manifest"]
    pod = job["spec"]["template"]["spec"]
    for field in ("completions", "parallelism"):
        job["spec"][field] = pod.pop(field, 1)
    container = pod["containers"][0]
    container["envFrom"] = [{"secretRef": {"name": SECRET}}]
    container["volumeMounts"] = [{"name": "work", "mountPath": WORK_DIR}]
    pod["volumes"] = [{"name": "work", "emptyDir": {}}]
    if pool == "gpu":
        container["resources"]["limits"]["nvidia.com/gpu"] = 1
        pod["nodeSelector"] = {"nvidia.com/gpu.present": "true"}
        pod["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    props = t["variables"]["properties"]
    props["image"]["default"] = IMAGE
    props["env"]["default"] = {
        "MPT_WORK_DIR": WORK_DIR,
        "MPT_OUTPUT_ROOT": f"{WORK_DIR}/output",
        "PREFECT_LOGGING_EXTRA_LOGGERS": "tasks,blocks,flows",
    }
    props["finished_job_ttl"]["default"] = 3600
    for name, value in POOLS[pool].items():
        props[name]["default"] = value
    return t


def write() -> None:
    base = default_template()
    for pool in POOLS:
        path = HERE / f"{pool}.json"
        path.write_text(json.dumps(adapt(base, pool), indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    write()
    sys.exit(0)
