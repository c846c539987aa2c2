"""deploy/k8s and docker-compose.yml agree with the app and with each other.

The manifests are validated against Kubernetes's own OpenAPI schemas (kubernetes-validate, strict:
an unknown or misspelt field is an error), then checked against what the app really serves:
probe paths are routes of ``create_app()``, ports and ``LOSSD_*`` variables are real settings,
the security context matches the Dockerfile's user, and the memory limit covers the measured
peak of a request at the body limit (docs/container.md).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.30"  # the oldest Kubernetes these manifests are meant for

# docs/memory.md: peak RSS ~ 150 MB + F x body bytes, F at most 31 (JSON of one-digit integers,
# measured on one worker); a limit below that lets such a request OOM-kill the pod.
BASE_BYTES = 150e6
PEAK_BYTES_PER_BODY_BYTE = 31


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def objects() -> dict[str, dict[str, Any]]:
    """Every object of the kustomization, by kind."""
    kustomization = load(K8S / "kustomization.yaml")[0]
    found: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for doc in load(K8S / name):
            assert doc["kind"] not in found, f"two {doc['kind']} objects"
            found[doc["kind"]] = doc
    return found


@pytest.fixture(scope="module")
def container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (only,) = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    return dict(only)


@pytest.fixture(scope="module")
def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"]}


def quantity(text: str | int) -> float:
    """A Kubernetes quantity (``500m``, ``1``, ``256Mi``, ``1Gi``, ``2G``) as a number."""
    units = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(text))
    assert match, text
    return float(match[1]) * units[match[2]]


def test_kustomization_lists_every_manifest() -> None:
    listed = set(load(K8S / "kustomization.yaml")[0]["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_manifests_are_valid_kubernetes_objects(objects: dict[str, dict[str, Any]]) -> None:
    assert set(objects) == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    for doc in objects.values():
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert objects["HorizontalPodAutoscaler"]["apiVersion"] == "autoscaling/v2"


def test_probes_use_the_apps_routes_and_port(
    container: dict[str, Any], env: dict[str, str]
) -> None:
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    # the app (started: lifespan run) answers 200 on every probe's path
    with TestClient(create_app(Settings())) as client:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = container[probe]["httpGet"]
            assert client.get(get["path"]).status_code == 200, (probe, get["path"])
            assert ports[get["port"]] == int(env["LOSSD_PORT"]), probe
    # the server must listen where the probes knock, on every interface of the pod
    assert env["LOSSD_HOST"] == "0.0.0.0"


def test_env_holds_real_settings_with_valid_values(env: dict[str, str]) -> None:
    fields = {f"LOSSD_{name.upper()}": name for name in Settings.model_fields}
    assert set(env) <= set(fields), set(env) - set(fields)
    settings = Settings.model_validate({fields[k]: v for k, v in env.items()})
    assert settings.port == 8000  # the Dockerfile's EXPOSE


def test_runs_as_the_images_non_root_user(objects: dict[str, dict[str, Any]]) -> None:
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    user = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert user, "the Dockerfile's USER is numeric"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(user[1])
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    # read-only root: the image's WORKDIR (/tmp) must be a writable volume
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_resources_cover_a_request_at_the_body_limit(
    container: dict[str, Any], env: dict[str, str]
) -> None:
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    for resource in ("cpu", "memory"):
        assert quantity(requests[resource]) <= quantity(limits[resource]), resource
    per_worker = BASE_BYTES + int(env["LOSSD_MAX_BODY_BYTES"]) * PEAK_BYTES_PER_BODY_BYTE
    peak = per_worker * int(env["LOSSD_WORKERS"])
    assert quantity(limits["memory"]) > peak


def test_shutdown_outlasts_prestop_and_graceful_timeout(
    objects: dict[str, dict[str, Any]], container: dict[str, Any], env: dict[str, str]
) -> None:
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    # lossd's graceful-shutdown timeout (the manifest's value, else the setting's default), or
    # compose's stop_grace_period (30 s) if lossd has no such setting
    graceful = [
        float(env.get(f"LOSSD_{name.upper()}", field.default))
        for name, field in Settings.model_fields.items()
        if "graceful" in name or "shutdown" in name
    ]
    assert pod["terminationGracePeriodSeconds"] > float(command[1]) + max(graceful or [30.0])


def test_service_hpa_and_pdb_select_the_deployment(
    objects: dict[str, dict[str, Any]], container: dict[str, Any]
) -> None:
    deployment = objects["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = objects["Service"]
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {p["name"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    pdb = objects["PodDisruptionBudget"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = objects["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["kind"] == "Deployment"
    assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    # CPU utilisation is relative to the request: without one the HPA cannot scale
    assert "cpu" in container["resources"]["requests"]
    # the PDB lets a drain proceed only if one pod can go while another still serves
    assert hpa["minReplicas"] >= 2
    assert hpa["minReplicas"] - pdb["spec"]["maxUnavailable"] >= 1


# ---------------------------------------------------------------------------------------------
# docker-compose.yml


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def test_image_name_matches_compose(compose: dict[str, Any], container: dict[str, Any]) -> None:
    assert container["image"] == compose["services"]["lossd"]["image"]
    (image,) = load(K8S / "kustomization.yaml")[0]["images"]
    assert container["image"].split(":")[0] == image["name"]


def test_compose_runs_replicas_behind_nginx(compose: dict[str, Any]) -> None:
    lossd, nginx = compose["services"]["lossd"], compose["services"]["nginx"]
    assert "replicas" in lossd["deploy"]
    assert "ports" not in lossd  # several replicas cannot share a host port; nginx publishes
    assert "healthcheck" in lossd
    assert nginx["depends_on"]["lossd"]["condition"] == "service_healthy"
    (mount,) = nginx["volumes"]
    source, target = mount.split(":")[:2]
    assert (ROOT / source).resolve() == ROOT / "deploy" / "nginx" / "lossd.conf"
    assert target.startswith("/etc/nginx/templates/") and target.endswith(".template")
    # every variable of the template is given, and nginx gets lossd's own body limit
    template = (ROOT / source).read_text()
    variables = set(re.findall(r"\$\{([A-Z_]+)\}", template))
    assert variables == set(nginx["environment"])
    body_limit = nginx["environment"]["LOSSD_MAX_BODY_BYTES"]
    assert body_limit == lossd["environment"]["LOSSD_MAX_BODY_BYTES"]
    assert nginx["environment"]["LOSSD_UPSTREAM"] == "lossd:" + lossd["environment"]["LOSSD_PORT"]
    published = nginx["ports"][0].rsplit(":", 1)[1]
    assert nginx["environment"]["NGINX_LISTEN"] == published


def test_compose_lists_every_setting(compose: dict[str, Any]) -> None:
    # the file's header promises every LOSSD_* setting with its default
    listed = set(compose["services"]["lossd"]["environment"])
    assert {f"LOSSD_{name.upper()}" for name in Settings.model_fields} <= listed
