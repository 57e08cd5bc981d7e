"""The deployment files agree with each other and with the CLI: offline, YAML only.

compose.yaml, deploy/k8s/*.yaml and the Dockerfile are parsed and checked for the things that
break a deployment silently: a service missing or started with the wrong command, one container
with a different environment, a probe on the wrong path, a manifest kustomize never applies.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from libs.events.catalog import all_topics

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
K8S = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "Dockerfile"

SERVICES = ("intake", "routing", "sla", "notify", "query", "gateway", "relay")
HTTP_SERVICES = ("intake", "query", "gateway")
ENV_NAMES = {
    "DESKSTREAM_DATABASE_URL",
    "DESKSTREAM_KAFKA_BOOTSTRAP",
    "DESKSTREAM_SMTP_URL",
    "DESKSTREAM_SECRET_KEY",
    "DESKSTREAM_OTLP_ENDPOINT",
    "DESKSTREAM_LOG_LEVEL",
}
TOPICS = set(all_topics())  # what the code produces to and consumes from
PORT = 8080


# -- loading -------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def compose_services() -> dict[str, dict[str, Any]]:
    services = compose()["services"]
    assert isinstance(services, dict) and services
    return services


def app_services() -> dict[str, dict[str, Any]]:
    """Compose services built from this repository (the Deskstream image)."""
    apps = {name: s for name, s in compose_services().items() if s.get("build") is not None}
    assert apps, "no compose service is built from the repository"
    return apps


def k8s_files() -> list[Path]:
    files = sorted(K8S.glob("*.yaml")) + sorted(K8S.glob("*.yml"))
    assert files, f"no manifests in {K8S}"
    return files


def k8s_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in k8s_files():
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is None:
                continue
            assert isinstance(doc, dict), f"{path.name}: a document is not a mapping"
            docs.append(doc)
    assert docs
    return docs


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in k8s_documents() if d.get("kind") == kind]


def only(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in of_kind(kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def invocation(container: dict[str, Any]) -> list[str]:
    """What follows the image's ENTRYPOINT (deskstream): `command` would replace it."""
    assert "command" not in container, "command would override the deskstream ENTRYPOINT"
    return [str(a) for a in container.get("args", [])]


def deployments_by_service() -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for deployment in of_kind("Deployment"):
        containers = deployment["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1, f"{deployment['metadata']['name']}: one container expected"
        args = invocation(containers[0])
        assert args[:1] == ["serve"], f"{deployment['metadata']['name']}: args {args}"
        assert args[1] not in result, f"two Deployments serve {args[1]}"
        result[args[1]] = deployment
    return result


def pod_containers() -> list[tuple[str, dict[str, Any]]]:
    """Every app container in Deployments and Jobs, with the workload's name."""
    found = []
    for doc in of_kind("Deployment") + of_kind("Job"):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            found.append((doc["metadata"]["name"], container))
    assert found
    return found


def env_keys(doc: dict[str, Any]) -> set[str]:
    return set(doc.get("data") or {}) | set(doc.get("stringData") or {})


def mapping_value(node: yaml.Node, key: str) -> yaml.Node:
    """The value node for `key` in a composed mapping, following `<<:` merge keys."""
    assert isinstance(node, yaml.MappingNode)
    merged: list[yaml.Node] = []
    for key_node, value_node in node.value:
        if key_node.value == key:
            assert isinstance(value_node, yaml.Node)
            return value_node
        if key_node.tag == "tag:yaml.org,2002:merge":
            merged.extend(
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
    for source in merged:
        try:
            return mapping_value(source, key)
        except KeyError:
            continue
    raise KeyError(key)


def named_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    matches = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert len(matches) == 1, f"port {port!r} is not a named container port"
    return int(matches[0])


# -- compose -------------------------------------------------------------------------------------


def test_compose_parses_and_has_every_service() -> None:
    services = compose_services()
    for name in (*SERVICES, "migrate", "postgres", "kafka", "mailpit"):
        assert name in services, f"compose has no {name}"


@pytest.mark.parametrize("name", SERVICES)
def test_compose_runs_each_service_from_the_repository_image(name: str) -> None:
    service = compose_services()[name]
    assert service.get("build") == "."
    assert service["command"] == ["serve", name, "--host", "0.0.0.0", "--port", str(PORT)]
    depends = service["depends_on"]
    assert depends["migrate"] == {"condition": "service_completed_successfully"}
    assert depends["kafka"] == {"condition": "service_healthy"}
    health = " ".join(map(str, service["healthcheck"]["test"]))
    assert f"127.0.0.1:{PORT}/healthz" in health


def test_compose_app_containers_share_the_environment_anchor() -> None:
    data = compose()
    anchor = data["x-deskstream-env"]
    assert set(anchor) == ENV_NAMES
    apps = app_services()
    assert set(apps) == {*SERVICES, "migrate"}
    root = yaml.compose(COMPOSE.read_text())
    assert root is not None
    anchor_node = mapping_value(root, "x-deskstream-env")
    services_node = mapping_value(root, "services")
    for name, service in apps.items():
        assert service["environment"] == anchor, f"{name}: environment differs"
        # The very node behind &deskstream-env (directly or through a `<<:` merge): an alias,
        # not a copy that could drift.
        node = mapping_value(mapping_value(services_node, name), "environment")
        assert node is anchor_node, f"{name} does not use *deskstream-env"


def test_compose_environment_points_at_the_compose_infrastructure() -> None:
    env = compose()["x-deskstream-env"]
    services = compose_services()
    assert env["DESKSTREAM_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in env["DESKSTREAM_DATABASE_URL"]
    assert env["DESKSTREAM_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["DESKSTREAM_SMTP_URL"] == "smtp://mailpit:1025"
    assert services["postgres"]["environment"]["POSTGRES_DB"] == "deskstream"


def test_compose_gateway_is_published_on_8080() -> None:
    services = compose_services()
    assert "8080:8080" in [str(p) for p in services["gateway"].get("ports", [])]
    published = [n for n, s in app_services().items() if s.get("ports")]
    assert published == ["gateway"], f"only the gateway is published, not {published}"


def test_compose_migrate_is_a_one_shot_after_postgres() -> None:
    migrate = compose_services()["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert migrate.get("restart") == "no"


def test_compose_infrastructure_has_healthchecks() -> None:
    services = compose_services()
    kafka = services["kafka"]
    assert kafka["image"] == "apache/kafka:3.9.0"
    assert set(kafka["environment"]["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "kafka-broker-api-versions.sh" in " ".join(kafka["healthcheck"]["test"])
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert services["mailpit"]["image"].startswith("axllent/mailpit")


def test_the_kubernetes_guide_names_every_topic() -> None:
    guide = (ROOT / "deploy" / "k8s" / "README.md").read_text()
    assert [t for t in sorted(TOPICS) if not t.endswith(".dlq") and f"`{t}`" not in guide] == []


def test_compose_creates_every_topic_and_dead_letter_topic() -> None:
    jobs = [
        s
        for s in compose_services().values()
        if str(s.get("image", "")).startswith("apache/kafka")
        and "kafka-topics.sh" in " ".join(map(str, s.get("command") or []))
    ]
    assert len(jobs) == 1, "expected one topic-creation job"
    job = jobs[0]
    script = " ".join(map(str, job["command"]))
    assert set(re.findall(r"deskstream\.[a-z]+\.v1(?:\.dlq)?", script)) == TOPICS
    assert "--partitions 6" in script
    assert "--replication-factor 1" in script
    assert job["depends_on"]["kafka"] == {"condition": "service_healthy"}
    assert compose_services()["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


# -- kubernetes ----------------------------------------------------------------------------------


def test_every_k8s_manifest_parses_with_kind_and_name() -> None:
    for doc in k8s_documents():
        assert doc.get("apiVersion") and doc.get("kind"), doc
        assert doc["metadata"]["name"]


def test_kustomization_lists_every_manifest_in_the_folder() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources)), "a resource is listed twice"
    on_disk = {p.name for p in k8s_files()} - {"kustomization.yaml"}
    assert set(resources) == on_disk
    namespace = only("Namespace", kustomization["namespace"])
    assert namespace["metadata"]["name"] == "deskstream"


@pytest.mark.parametrize("name", SERVICES)
def test_k8s_deployment_per_service(name: str) -> None:
    deployment = deployments_by_service()[name]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert invocation(container) == ["serve", name, "--host", "0.0.0.0", "--port", str(PORT)]
    assert container["image"] == "deskstream"  # set by the kustomization's images entry
    expected = 1 if name == "relay" else 2
    assert deployment["spec"]["replicas"] == expected


def test_k8s_has_exactly_the_seven_deployments() -> None:
    assert set(deployments_by_service()) == set(SERVICES)


def test_k8s_relay_never_runs_twice() -> None:
    relay = deployments_by_service()["relay"]
    assert relay["spec"]["replicas"] == 1
    assert relay["spec"]["strategy"]["type"] == "Recreate"


@pytest.mark.parametrize("name", SERVICES)
def test_k8s_probes_and_prometheus_annotations(name: str) -> None:
    template = deployments_by_service()[name]["spec"]["template"]
    (container,) = template["spec"]["containers"]
    live = container["livenessProbe"]["httpGet"]
    ready = container["readinessProbe"]["httpGet"]
    assert live["path"] == "/healthz"
    assert ready["path"] == "/readyz"
    assert named_port(container, live["port"]) == PORT
    assert named_port(container, ready["port"]) == PORT
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(PORT)
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("name", SERVICES)
def test_k8s_pods_are_constrained_and_non_root(name: str) -> None:
    pod = deployments_by_service()[name]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("name", SERVICES)
def test_k8s_service_selects_each_deployment(name: str) -> None:
    deployment = deployments_by_service()[name]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    service = only("Service", deployment["metadata"]["name"])
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert [named_port(container, p["targetPort"]) for p in service["spec"]["ports"]] == [PORT]


@pytest.mark.parametrize("name", HTTP_SERVICES)
def test_k8s_http_services_have_a_disruption_budget(name: str) -> None:
    deployment = deployments_by_service()[name]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    budgets = [
        b
        for b in of_kind("PodDisruptionBudget")
        if b["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    ]
    assert len(budgets) == 1, f"{name}: expected one PodDisruptionBudget"
    assert budgets[0]["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_k8s_environment_matches_compose() -> None:
    (configmap,) = of_kind("ConfigMap")
    (secret,) = of_kind("Secret")
    config_keys, secret_keys = env_keys(configmap), env_keys(secret)
    assert not config_keys & secret_keys, "a key set twice: which one wins is order-dependent"
    assert config_keys | secret_keys == ENV_NAMES == set(compose()["x-deskstream-env"])
    assert {"DESKSTREAM_SECRET_KEY", "DESKSTREAM_DATABASE_URL"} <= secret_keys
    for key in ("DESKSTREAM_SECRET_KEY", "DESKSTREAM_DATABASE_URL"):
        assert "REPLACE" in secret["stringData"][key], f"{key} must be an obvious placeholder"

    expected_refs = [
        {"configMapRef": {"name": configmap["metadata"]["name"]}},
        {"secretRef": {"name": secret["metadata"]["name"]}},
    ]
    for workload, container in pod_containers():
        assert container["envFrom"] == expected_refs, f"{workload}: envFrom"
        inline = {e["name"] for e in container.get("env", [])}
        assert not inline, f"{workload}: inline env {inline} would differ from the others"


def test_k8s_migrate_job() -> None:
    (job,) = of_kind("Job")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert invocation(container) == ["migrate"]
    assert container["image"] == "deskstream"
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_k8s_kustomization_sets_the_image_every_workload_names() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert [i["name"] for i in kustomization["images"]] == ["deskstream"]
    assert {c["image"] for _, c in pod_containers()} == {"deskstream"}


# -- image ---------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        found.append((keyword.upper(), rest.strip()))
    assert found
    return found


def test_dockerfile_runs_deskstream_as_non_root() -> None:
    instructions = dockerfile_instructions()
    final_stage = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    assert all(rest.split()[0] == "python:3.11-slim" for k, rest in instructions if k == "FROM")
    entrypoints = [rest for k, rest in final_stage if k == "ENTRYPOINT"]
    assert entrypoints and json.loads(entrypoints[-1]) == ["deskstream"]
    users = [rest for k, rest in final_stage if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert [rest for k, rest in final_stage if k == "EXPOSE"] == [str(PORT)]
    assert any(k == "RUN" and "pip install ." in rest for k, rest in instructions)


def test_dockerignore_keeps_the_context_small() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "an allow-list: everything is excluded first"
    assert {"!pyproject.toml", "!libs/", "!services/"} <= set(lines)
    assert not {"!.venv", "!.git", "!var", "!tests"} & set(lines)
