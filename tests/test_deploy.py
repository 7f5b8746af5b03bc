"""The deployment files: docker-compose and the Helm chart parse, render, fit together, and
pass only settings the hub has.

The Helm templates are rendered by tests/helm_render.py (the subset of Go templates the
chart uses; `helm` itself is not installable here), then YAML-parsed and checked as
Kubernetes objects: kinds, names and references between them, labels, hooks, and every
`FNHUB_SERVER_*` variable against `ServerSettings` (then loaded into it, so each value
validates too).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from fnhub.hub.settings import ServerSettings
from tests.helm_render import Chart
from tests.helpers import ROOT

DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "fnhub"
OTHER_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
             "FORWARDED_ALLOW_IPS"}
FILES = {"index-key.pem"}  # Secret keys mounted as files, not variables
SETTINGS = {f"FNHUB_SERVER_{name.upper()}" for name in ServerSettings.model_fields}


def _check_env(env: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> ServerSettings:
    """Every variable is a hub setting (or a standard one); together they load."""
    unknown = {k for k in env if k not in SETTINGS | OTHER_ENV}
    assert not unknown, f"settings the hub does not have: {sorted(unknown)}"
    for key, value in env.items():
        if key in SETTINGS:
            monkeypatch.setenv(key, str(value))
    return ServerSettings()


# --------------------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return data


def test_compose_runs_two_replicas_behind_a_proxy(compose: dict[str, Any],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose["services"]
    assert {"postgres", "minio", "minio-bucket", "migrate", "hub1", "hub2", "proxy"} <= set(
        services)
    hub1, hub2 = services["hub1"], services["hub2"]
    assert hub1["environment"] == hub2["environment"]
    assert hub1["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY.parent / hub1["build"]["dockerfile"]).is_file()
    env = {k: v for k, v in hub1["environment"].items() if "${" not in str(v)}
    settings = _check_env(env, monkeypatch)
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.database_url.split("@")[1].startswith("postgres:5432/")
    assert settings.storage_url.startswith("s3://")
    assert env["FNHUB_SERVER_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert "FNHUB_SERVER_ADMIN_TOKEN" in hub1["environment"]
    assert "FNHUB_SERVER_OCI_TOKEN_SECRET" in hub1["environment"]  # shared by the replicas
    assert hub1["secrets"] == ["index_key"]  # one index key file, shared by the replicas
    assert env["FNHUB_SERVER_INDEX_KEY"] == "/run/secrets/index_key"
    assert compose["secrets"]["index_key"]["file"] == "./index-key.pem"
    assert hub1["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["hub", "admin", "migrate"]
    assert services["migrate"]["environment"] == hub1["environment"]

    proxy = services["proxy"]
    assert set(proxy["depends_on"]) == {"hub1", "hub2"}
    [mount] = proxy["volumes"]
    conf = (DEPLOY / mount.split(":")[0]).read_text()
    upstream = re.search(r"upstream fnhub \{(.*?)\}", conf, re.DOTALL)
    assert upstream is not None
    assert re.findall(r"server (\S+?):8080", upstream.group(1)) == ["hub1", "hub2"]
    assert "proxy_request_buffering off" in conf and "client_max_body_size 0" in conf
    assert "X-Request-ID" in conf


# --------------------------------------------------------------------------- helm


def _render(**values: Any) -> dict[str, list[dict[str, Any]]]:
    docs = Chart(CHART, values).render()
    for template, objects in docs.items():
        for obj in objects:
            assert {"apiVersion", "kind", "metadata"} <= set(obj), template
            assert obj["metadata"]["name"].startswith("demo-fnhub"), template
    return docs


def _one(docs: dict[str, list[dict[str, Any]]], kind: str) -> dict[str, Any]:
    [obj] = [o for objects in docs.values() for o in objects if o["kind"] == kind]
    return obj


def test_chart_renders_every_object(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _render()
    kinds = sorted(o["kind"] for objects in docs.values() for o in objects)
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Ingress", "Job",
                     "Secret", "Service"]
    config, secret = _one(docs, "ConfigMap"), _one(docs, "Secret")
    variables = {k: v for k, v in secret["stringData"].items() if k not in FILES}
    settings = _check_env({**config["data"], **variables}, monkeypatch)
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.rate_limit_enabled and settings.log_format == "json"
    assert settings.oci_token_secret is not None  # shared by the replicas

    deployment = _one(docs, "Deployment")
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    refs = {next(iter(ref)): next(iter(ref.values()))["name"] for ref in container["envFrom"]}
    assert refs == {"configMapRef": config["metadata"]["name"],
                    "secretRef": secret["metadata"]["name"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    # the index key: the Secret's index-key.pem, mounted where FNHUB_SERVER_INDEX_KEY points
    assert "index-key.pem" in secret["stringData"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    key_volume = volumes["index-key"]["secret"]
    assert key_volume["secretName"] == secret["metadata"]["name"]
    [item] = key_volume["items"]
    assert item["key"] == "index-key.pem"
    assert f"{mounts['index-key']}/{item['path']}" == str(settings.index_key)
    assert container["image"] == "fnhub-hub:0.1.0"

    service = _one(docs, "Service")
    selector = service["spec"]["selector"]
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    job = _one(docs, "Job")
    assert not selector.items() <= job["spec"]["template"]["metadata"]["labels"].items()
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "hub", "admin", "migrate"]
    for hook in (job, config, secret):  # the Job's inputs exist before it runs
        assert "pre-install" in hook["metadata"]["annotations"]["helm.sh/hook"]
    assert int(config["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"])

    hpa = _one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2 and "replicas" not in deployment["spec"]
    [rule] = _one(docs, "Ingress")["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


def test_chart_options() -> None:
    docs = _render(ingress={"enabled": False}, autoscaling={"enabled": False},
                   migrations={"enabled": False}, existingSecret="fnhub-prod",
                   image={"tag": "1.2.3"})
    kinds = {o["kind"] for objects in docs.values() for o in objects}
    assert kinds == {"ConfigMap", "Deployment", "Service"}
    deployment = _one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert {"secretRef": {"name": "fnhub-prod"}} in container["envFrom"]
    assert container["image"] == "fnhub-hub:1.2.3"
    tls = _render(ingress={"tlsSecretName": "hub-cert"})
    assert _one(tls, "Ingress")["spec"]["tls"] == [{"hosts": ["hub.example.com"],
                                                    "secretName": "hub-cert"}]


def test_values_file_names_only_what_templates_use() -> None:
    """Every leaf of values.yaml is read by some template (no dead knobs)."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    templates = "".join(p.read_text() for p in (CHART / "templates").iterdir())

    def leaves(data: dict[str, Any], prefix: str) -> list[str]:
        out = []
        for key, value in data.items():
            path = f"{prefix}.{key}"
            if isinstance(value, dict) and key != "annotations" and key != "resources":
                out += leaves(value, path)
            else:
                out.append(path)
        return out

    unused = [path for path in leaves(values, ".Values") if path not in templates]
    assert unused == []


def test_the_image_serves_by_default() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'CMD ["hub", "serve"]' in dockerfile and '".[server]"' in dockerfile
