"""The image, compose and Kubernetes files, checked statically: schema-valid manifests
(kubernetes-validate, strict), probes that point at real endpoints, variables the
settings really read, and the Dockerfile's choices."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.37.0"
# Read by libraries rather than our settings.
OTHER_VARIABLES = {"PROMETHEUS_MULTIPROC_DIR", "DJANGO_SETTINGS_MODULE"}


def settings_variables() -> set[str]:
    text = (ROOT / "orchestrator" / "settings.py").read_text()
    return set(re.findall(r'env_[a-z_]+\("([A-Z][A-Z0-9_]*)"', text)) | OTHER_VARIABLES


def rendered() -> list[dict[str, Any]]:
    """The kustomize base as kubectl would render it: its resources, with the image set.
    (This base has no patches; KustomizeTests compares with kubectl where it is installed.)"""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    images = {i["name"]: f"{i['newName']}:{i['newTag']}" for i in kustomization.get("images", [])}
    docs = []
    for resource in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / resource).read_text()):
            for container in _containers(doc):
                container["image"] = images.get(container["image"], container["image"])
            docs.append(doc)
    return docs


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in rendered() if d["kind"] == kind}


class ManifestSchemaTests:
    def test_every_manifest_is_valid_against_the_kubernetes_schema_strictly(self) -> None:
        docs = rendered()
        assert {d["kind"] for d in docs} >= {"Deployment", "Service", "Job", "ConfigMap", "Secret",
                                             "PodDisruptionBudget", "HorizontalPodAutoscaler"}
        for doc in docs:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)

    def test_the_validator_catches_a_misspelt_field(self) -> None:
        deployment = by_kind("Deployment")["loopgate-web"]
        deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)

    def test_kubectl_kustomize_renders_the_same_objects(self) -> None:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            pytest.skip("kubectl is not installed: the base was rendered by the test's own reader only")
        out = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, check=True).stdout
        from_kubectl = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(out)}
        assert from_kubectl == {(d["kind"], d["metadata"]["name"]) for d in rendered()}
        for doc in yaml.safe_load_all(out):
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


class ManifestShapeTests:
    def test_web_probes_point_at_endpoints_that_answer(self, db) -> None:  # type: ignore[no-untyped-def]
        container = by_kind("Deployment")["loopgate-web"]["spec"]["template"]["spec"]["containers"][0]
        port = {p["name"]: p["containerPort"] for p in container["ports"]}[container["readinessProbe"]["httpGet"]["port"]]
        assert port == 8000 and "8000" in container["command"]
        for probe, expected in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            path = container[probe]["httpGet"]["path"]
            assert path == expected
            # A probe names the pod by its IP, not a host in ALLOWED_HOSTS.
            assert Client().get(path, HTTP_HOST="10.42.0.9:8000").status_code == 200

    def test_worker_probes_run_the_probe_module(self) -> None:
        container = by_kind("Deployment")["loopgate-worker"]["spec"]["template"]["spec"]["containers"][0]
        for probe in ("readinessProbe", "livenessProbe"):
            command = container[probe]["exec"]["command"]
            assert command[:3] == ["python", "-m", "ops.probe"]
            result = subprocess.run([sys.executable, *command[1:], "--file", "/nonexistent/heartbeat"], cwd=ROOT,
                                    capture_output=True, text=True, timeout=30)
            assert result.returncode == 1 and "no heartbeat file" in result.stderr
        config = by_kind("ConfigMap")["loopgate-config"]["data"]
        assert config["LOOPGATE_WORKER_HEARTBEAT_FILE"].startswith("/tmp/")  # the writable emptyDir

    def test_the_worker_is_the_seeds_with_redis_url_and_a_token_budget_from_the_configmap(self) -> None:
        worker = by_kind("Deployment")["loopgate-worker"]
        container = worker["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["valueFrom"]["configMapKeyRef"] for e in container["env"]}
        assert env["REDIS_URL"] == {"name": "loopgate-config", "key": "REDIS_URL"}
        assert env["LOOPGATE_DEFAULT_TOKEN_BUDGET"] == {"name": "loopgate-config", "key": "LOOPGATE_DEFAULT_TOKEN_BUDGET"}
        assert container["command"][:4] == ["celery", "-A", "orchestrator", "worker"]
        assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60

    def test_every_variable_given_is_one_the_settings_read(self) -> None:
        known = settings_variables()
        given = set(by_kind("ConfigMap")["loopgate-config"]["data"]) | set(
            by_kind("Secret")["loopgate-secrets"]["stringData"])
        for deployment in by_kind("Deployment").values():
            for container in _containers(deployment):
                given |= {e["name"] for e in container.get("env", [])}
        assert given - known == set(), "variables no setting reads"
        assert {"SECRET_KEY", "DATABASE_URL"} <= set(by_kind("Secret")["loopgate-secrets"]["stringData"])

    def test_every_container_has_requests_limits_and_runs_as_non_root(self) -> None:
        for doc in rendered():
            if doc["kind"] not in ("Deployment", "Job"):
                continue
            pod = doc["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
            for container in pod["containers"]:
                assert set(container["resources"]) == {"requests", "limits"}, doc["metadata"]["name"]
                assert {"cpu", "memory"} <= set(container["resources"]["requests"])
                assert container["securityContext"]["allowPrivilegeEscalation"] is False
                assert container["image"] == "loopgate:local"
                assert {e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e} == {
                    "loopgate-config"}

    def test_one_beat_pdbs_and_the_worker_autoscaler_select_real_pods(self) -> None:
        deployments = by_kind("Deployment")
        beat = deployments["loopgate-beat"]
        assert beat["spec"]["replicas"] == 1 and beat["spec"]["strategy"]["type"] == "Recreate"
        labels = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()}
        for name, deployment in deployments.items():
            assert deployment["spec"]["selector"]["matchLabels"].items() <= labels[name].items()
        for pdb in by_kind("PodDisruptionBudget").values():
            selected = [n for n, lab in labels.items() if pdb["spec"]["selector"]["matchLabels"].items() <= lab.items()]
            assert len(selected) == 1, pdb["metadata"]["name"]
        hpa = by_kind("HorizontalPodAutoscaler")["loopgate-worker"]
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                 "name": "loopgate-worker"}
        assert hpa["spec"]["minReplicas"] >= 2
        service = by_kind("Service")["loopgate-web"]
        assert service["spec"]["selector"].items() <= labels["loopgate-web"].items()
        web_ports = {p["name"] for p in deployments["loopgate-web"]["spec"]["template"]["spec"]["containers"][0]["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= web_ports
        job = by_kind("Job")["loopgate-migrate"]
        assert "migrate" in " ".join(job["spec"]["template"]["spec"]["containers"][0]["command"])


class ComposeTests:
    def compose(self) -> dict[str, Any]:
        return yaml.safe_load((ROOT / "compose.yaml").read_text())

    def test_compose_starts_postgres_redis_a_migrate_web_two_workers_and_beat_with_health_checks(self) -> None:
        services = self.compose()["services"]
        assert set(services) == {"postgres", "redis", "migrate", "web", "worker", "beat"}
        for name in ("postgres", "redis", "web", "worker"):
            assert services[name]["healthcheck"]["test"], name
        assert services["worker"]["deploy"]["replicas"] == 2
        assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
        assert services["worker"]["healthcheck"]["test"][1:4] == ["python", "-m", "ops.probe"]
        assert "migrate" in " ".join(services["migrate"]["command"])
        assert services["migrate"]["restart"] == "no"
        for name in ("web", "worker", "beat"):
            depends = services[name]["depends_on"]
            assert depends["migrate"]["condition"] == "service_completed_successfully"
            assert depends["postgres"]["condition"] == depends["redis"]["condition"] == "service_healthy"
        assert services["beat"].get("deploy", {}).get("replicas", 1) == 1

    def test_compose_variables_are_ones_the_settings_read(self) -> None:
        services = self.compose()["services"]
        given = set()
        for service in ("migrate", "web", "worker", "beat"):
            given |= set(services[service]["environment"])
        assert given - settings_variables() == set()


class DockerfileTests:
    """What the image is made of, read from the Dockerfile (docker build proves it where it runs)."""

    def stages(self) -> list[list[str]]:
        lines, current = [], ""
        for raw in (ROOT / "Dockerfile").read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            current += line[:-1] + " " if line.endswith("\\") else line
            if not line.endswith("\\"):
                lines.append(current)
                current = ""
        stages: list[list[str]] = []
        for line in lines:
            if line.upper().startswith("FROM "):
                stages.append([])
            if stages:
                stages[-1].append(line)
        return stages

    def test_multi_stage_on_slim_python_311(self) -> None:
        text = (ROOT / "Dockerfile").read_text()
        assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim-\w+$", text, re.M)
        stages = self.stages()
        assert len(stages) == 2
        assert all(stage[0].startswith("FROM ${PYTHON_IMAGE} AS ") for stage in stages)
        assert ":latest" not in text

    def test_the_final_stage_runs_as_a_non_root_user_without_compilers_or_pip_cache(self) -> None:
        final = self.stages()[-1]
        users = [line.split()[1] for line in final if line.startswith("USER ")]
        assert users and users[-1].split(":")[0] not in ("root", "0")
        body = " ".join(final)
        for tool in ("gcc", "build-essential", "pip install", "apt-get install"):
            assert tool not in body, tool
        assert "COPY --from=build /opt/venv /opt/venv" in final

    def test_static_files_are_collected_at_build_from_pinned_requirements(self) -> None:
        build = " ".join(self.stages()[0])
        assert "pip install --no-cache-dir -r /tmp/requirements.txt" in build
        assert "collectstatic --noinput" in build and "DEBUG=0" in build
        requirements = (ROOT / "requirements.txt").read_text().splitlines()
        assert all("==" in line for line in requirements if line and not line.startswith("#"))

    def test_one_image_for_web_worker_and_beat_chosen_by_the_command(self) -> None:
        final = self.stages()[-1]
        assert any(line.startswith("CMD [\"daphne\"") for line in final)
        assert not any(line.startswith("ENTRYPOINT") for line in final)
        commands = {d["metadata"]["name"]: _containers(d)[0]["command"][0] for d in rendered()
                    if d["kind"] in ("Deployment", "Job")}
        assert set(commands.values()) == {"daphne", "celery", "sh"}

    def test_the_build_context_leaves_out_environments_tests_and_secrets(self) -> None:
        ignored = (ROOT / ".dockerignore").read_text().splitlines()
        for entry in (".git", ".venv", "tests/", "var/", ".env", "staticfiles/"):
            assert entry in ignored, entry


class DashboardTests:
    def test_the_grafana_dashboard_charts_only_metrics_that_exist_and_are_documented(self) -> None:
        import json

        dashboard = json.loads((ROOT / "deploy" / "grafana" / "loopgate.json").read_text())
        exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        used = {re.sub(r"_(bucket|sum|count|total)$", "", m) for e in exprs for m in re.findall(r"loopgate_[a-z_]+", e)}
        source = (ROOT / "ops" / "metrics.py").read_text()
        readme = (ROOT / "README.md").read_text()
        for metric in used:
            assert f'"{metric}"' in source, f"{metric} is not a metric ops/metrics.py defines"
            assert metric in readme, f"{metric} is not in the README's metrics table"
        assert len(dashboard["panels"]) >= 10
        assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
