"""The deployment files are valid: compose against the compose specification's schema, the
Kubernetes manifests against the Kubernetes API schemas, and every gateway config they carry
against the gateway's own configuration model. No container engine is needed for any of it.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.config import parse_config

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
K8S = DEPLOY / "kubernetes" / "gateway.yaml"


def _need(module: str, package: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"the validator is not installed: pip install {package}")


def test_compose_file_matches_the_compose_spec() -> None:
    _need("check_jsonschema", "check-jsonschema")
    r = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_compose_services_are_wired() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert {"postgres", "gateway-1", "gateway-2", "sftp", "agencies", "migrate"} <= set(services)
    for name in ("gateway-1", "gateway-2"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for secret in {s for svc in services.values() for s in svc.get("secrets", [])}:
        assert secret in spec["secrets"], f"secret {secret} is used but not declared"


def test_kubernetes_manifests_match_the_api_schemas() -> None:
    _need("kubernetes_validate", "kubernetes-validate")
    r = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", "1.30.0", str(K8S)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_kubernetes_deployment_has_two_replicas_and_probes() -> None:
    docs = {d["kind"]: d for d in yaml.safe_load_all(K8S.read_text())}
    assert {"ConfigMap", "Secret", "Deployment", "Service", "Job"} <= set(docs)
    dep = docs["Deployment"]["spec"]
    assert dep["replicas"] == 2
    c = dep["template"]["spec"]["containers"][0]
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"


@pytest.mark.parametrize("source", ["compose-1", "compose-2", "kubernetes"])
def test_gateway_configs_in_deploy_files_are_valid(source: str) -> None:
    if source == "kubernetes":
        cm = next(d for d in yaml.safe_load_all(K8S.read_text()) if d["kind"] == "ConfigMap")
        data = yaml.safe_load(cm["data"]["gateway.yaml"])
    else:
        data = yaml.safe_load((DEPLOY / "compose" / f"gateway-{source[-1]}.yaml").read_text())
    cfg = parse_config(data, source=source)
    assert cfg.gateway.store.backend == "postgres" and cfg.gateway.store.dsn is not None
