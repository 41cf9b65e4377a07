"""The Kubernetes manifests parse and carry what operators rely on (probes, limits, secrets, PVC)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.conftest import KUBERNETES, load_all
from tradewatch.config import load_settings
from tradewatch.matching import load_rulebook


def _objects() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_all(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, f"{path.name}: duplicate {key}"
            found[key] = doc
    return found


OBJECTS = _objects()


def _worker() -> dict[str, Any]:
    return OBJECTS[("Deployment", "tradewatch")]


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def test_every_object_has_api_version_kind_name_and_namespace() -> None:
    """Each manifest is a well-formed object in the tradewatch namespace."""
    for (kind, name), doc in OBJECTS.items():
        assert doc.get("apiVersion"), (kind, name)
        if kind != "Namespace":
            assert doc["metadata"].get("namespace") == "tradewatch", (kind, name)


def test_kustomization_lists_every_manifest_but_the_rules() -> None:
    """kustomization.yaml applies every manifest file in the folder, except the starter rules:
    an `apply -k` (an upgrade) must never replace the rules ConfigMap made from rules/."""
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    files = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml", "rules-starter.yaml"}
    assert set(kustomization["resources"]) == files
    applied = [doc for name in kustomization["resources"] for doc in load_all(KUBERNETES / name)]
    assert ("ConfigMap", "tradewatch-rules") not in {(d["kind"], d["metadata"]["name"]) for d in applied}


def test_deployment_runs_two_or_more_replicas_with_probes() -> None:
    """The worker Deployment has 2+ replicas, liveness on /healthz and readiness on /readyz."""
    deployment = _worker()
    assert deployment["spec"]["replicas"] >= 2
    container = _container(deployment)
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port_names["http"] == 8080
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize(
    ("kind", "name"), [("Deployment", "tradewatch"), ("StatefulSet", "tradewatch-redis")]
)
def test_workloads_set_requests_and_limits(kind: str, name: str) -> None:
    """Every container states CPU and memory requests and limits."""
    resources = _container(OBJECTS[(kind, name)])["resources"]
    for section in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[section]), (name, section)


def test_deployment_is_scraped_by_prometheus() -> None:
    """The pod template carries the Prometheus scrape annotations pointing at /metrics on 8080."""
    annotations = _worker()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == "8080"


def test_worker_runs_as_non_root_with_config_rules_and_secrets_mounted() -> None:
    """The worker is non-root, mounts config and rules from ConfigMaps and takes tokens from the Secret."""
    spec = _worker()["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    container = _container(_worker())
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert volumes[mounts["/etc/tradewatch/config"]]["configMap"]["name"] == "tradewatch-config"
    assert volumes[mounts["/etc/tradewatch/rules"]] == {"name": "rules", "emptyDir": {}}
    assert "/var/lib/tradewatch" in mounts
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["TRADEWATCH_CONFIG"] == "/etc/tradewatch/config/tradewatch.yaml"
    assert [ref["secretRef"]["name"] for ref in container["envFrom"]] == ["tradewatch-secrets"]
    assert ("Secret", "tradewatch-secrets") in OBJECTS


def test_redis_statefulset_persists_on_a_pvc() -> None:
    """Redis runs as a StatefulSet with a PersistentVolumeClaim mounted at its data dir, AOF on."""
    redis = OBJECTS[("StatefulSet", "tradewatch-redis")]
    claims = {c["metadata"]["name"]: c for c in redis["spec"]["volumeClaimTemplates"]}
    mounts = {m["name"]: m["mountPath"] for m in _container(redis)["volumeMounts"]}
    assert mounts["data"] == "/data"
    assert claims["data"]["spec"]["resources"]["requests"]["storage"]
    args = _container(redis)["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert OBJECTS[("Service", redis["spec"]["serviceName"])]["spec"]["clusterIP"] == "None"


def test_configmap_config_is_a_valid_tradewatch_config(tmp_path: Any) -> None:
    """The ConfigMap's tradewatch.yaml loads with tradewatch's own validation, secrets from env."""
    config = OBJECTS[("ConfigMap", "tradewatch-config")]["data"]["tradewatch.yaml"]
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "tradewatch.yaml").write_text(config, encoding="utf-8")
    settings = load_settings(
        folder / "tradewatch.yaml", env={"SLACK_BOT_TOKEN": "xoxb-1", "TRADEWATCH_PAGE_TOKEN": "t"}
    )
    assert str(settings.rules) == "/etc/tradewatch/rules"  # where the init container copies them
    assert settings.server.host == "0.0.0.0"
    assert settings.server.port == 8080
    assert "tradewatch-redis-0.tradewatch-redis" in (settings.redis_url or "")
    secret_keys = set(OBJECTS[("Secret", "tradewatch-secrets")]["stringData"])
    assert {"SLACK_BOT_TOKEN", "TRADEWATCH_PAGE_TOKEN"} <= secret_keys


def test_rules_are_copied_out_of_the_configmap_before_the_worker_starts() -> None:
    """An init container copies the rules ConfigMap into the worker's rules folder (no ..data twins)."""
    spec = _worker()["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    (init,) = spec["initContainers"]
    mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
    assert volumes[mounts["/rules-configmap"]]["configMap"]["name"] == "tradewatch-rules"
    assert mounts["/etc/tradewatch/rules"] == "rules"
    assert "cp -L /rules-configmap/" in " ".join(init["command"])
    assert {"cpu", "memory"} <= set(init["resources"]["limits"])


def test_starter_rules_in_the_configmap_are_valid(tmp_path: Any) -> None:
    """The rules ConfigMap's files pass tradewatch's own rule validation."""
    for name, text in OBJECTS[("ConfigMap", "tradewatch-rules")]["data"].items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    book = load_rulebook(tmp_path)
    assert [rule.id for rule in book.rules] == ["mofcom-rare-earth-export-control"]


def test_only_the_workers_reach_redis() -> None:
    """Redis holds the outbox (whoever writes to it can make tradewatch post): a NetworkPolicy
    lets only the worker pods in, on Redis's port."""
    policy = OBJECTS[("NetworkPolicy", "tradewatch-redis")]["spec"]
    redis_labels = OBJECTS[("StatefulSet", "tradewatch-redis")]["spec"]["template"]["metadata"]["labels"]
    worker_labels = _worker()["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= redis_labels.items()
    (rule,) = policy["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "tradewatch"}}}]
    assert {"app.kubernetes.io/name": "tradewatch"}.items() <= worker_labels.items()
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]
