"""The Kubernetes and KServe manifests in deploy/: valid, consistent with each other and with the images.

deploy/k8s/ is validated strictly against Kubernetes' own schemas (kubernetes-validate, offline); the
KServe files against the field names of KServe's own API models (the kserve SDK's generated classes).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kserve import models as kserve_models
from kubernetes.client import models as kubernetes_models

from harness import ROOT
from serving import create_app, tokens

K8S = sorted((ROOT / "deploy/k8s").glob("*.yaml"))
KSERVE = sorted((ROOT / "deploy/kserve").glob("*.yaml"))
API_LABELS = {"app.kubernetes.io/name": "fashion-softmax", "app.kubernetes.io/component": "api"}


def load(path: Path) -> dict:
    (document,) = yaml.safe_load_all(path.read_text())  # one resource per file
    return document


def by_kind(paths) -> dict[str, dict]:
    return {(document := load(path))["kind"]: document for path in paths}


def image_setting(dockerfile: str, pattern: str) -> str:
    return re.search(pattern, (ROOT / "docker" / dockerfile).read_text()).group(1)


def serving_port() -> int:
    """The port the serving image listens on (docker/serve.Dockerfile)."""
    return int(image_setting("serve.Dockerfile", r"FASHION_SOFTMAX_PORT=(\d+)"))


def test_every_kubernetes_manifest_passes_strict_validation():
    assert {path.name for path in K8S} >= {"deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml", "pvc.yaml",
                                          "train-job.yaml", "ingress.yaml", "networkpolicy.yaml"}  # fmt: skip
    validate = Path(sys.executable).with_name("kubernetes-validate")
    finished = subprocess.run([str(validate), "--strict", *map(str, K8S)], capture_output=True, text=True)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert finished.stdout.count("passed") == len(K8S)


def test_labels_selectors_and_names_agree():
    resources = by_kind(K8S)
    deployment, service = resources["Deployment"], resources["Service"]
    assert deployment["spec"]["selector"]["matchLabels"] == API_LABELS
    assert deployment["spec"]["template"]["metadata"]["labels"] == API_LABELS
    assert service["spec"]["selector"] == API_LABELS
    assert resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == API_LABELS
    target = resources["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    for document in resources.values():
        assert document["metadata"]["labels"]["app.kubernetes.io/name"] == "fashion-softmax"
        assert "namespace" not in document["metadata"]  # namespace-agnostic: kubectl -n decides


def test_the_api_pods_match_the_serving_image():
    resources = by_kind(K8S)
    pod = resources["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment_replicas(resources) == 2
    assert [p["containerPort"] for p in container["ports"]] == [serving_port()]
    assert resources["Service"]["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    assert pod["securityContext"]["runAsUser"] == int(image_setting("serve.Dockerfile", r"--uid (\d+)"))
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["FASHION_SOFTMAX_MODEL_RELOAD_INTERVAL"] and env["FASHION_SOFTMAX_WORKERS"] == "2"
    assert "requests" in container["resources"] and "limits" in container["resources"]
    assert container["lifecycle"]["preStop"]["sleep"]["seconds"] < pod["terminationGracePeriodSeconds"]


def deployment_replicas(resources) -> int:
    return resources["Deployment"]["spec"]["replicas"]


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_containers_are_locked_down(kind):
    pod = by_kind(K8S)[kind]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
        assert "/tmp" in mounts  # the only writable place besides the artifacts


def test_the_training_job_writes_the_claim_the_api_reads():
    resources = by_kind(K8S)
    claim = resources["PersistentVolumeClaim"]["metadata"]["name"]
    assert "ReadWriteMany" in resources["PersistentVolumeClaim"]["spec"]["accessModes"]
    job_pod, api_pod = resources["Job"]["spec"]["template"]["spec"], resources["Deployment"]["spec"]["template"]["spec"]
    for pod in (job_pod, api_pod):
        (volume,) = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
        assert volume["persistentVolumeClaim"]["claimName"] == claim
    (job,) = job_pod["containers"]
    assert "--out-dir=/artifacts" in job["args"]
    assert job_pod["securityContext"]["runAsUser"] == int(image_setting("train.Dockerfile", r"--uid (\d+)"))
    (api,) = api_pod["containers"]
    (artifacts,) = [m for m in api["volumeMounts"] if m["mountPath"] == "/artifacts"]
    assert artifacts["readOnly"] is True


def test_probe_paths_are_real_routes_that_answer(model_dir):
    client = create_app({"MODEL_DIR": str(model_dir), "MODEL_RELOAD_INTERVAL": 0}).test_client()
    containers = by_kind(K8S)["Deployment"]["spec"]["template"]["spec"]["containers"]
    containers += by_kind(KSERVE)["ServingRuntime"]["spec"]["containers"]
    paths = {container[probe]["httpGet"]["path"] for container in containers for probe in
             ("startupProbe", "readinessProbe", "livenessProbe") if probe in container}  # fmt: skip
    assert paths >= {"/ready", "/health", "/v2/health/ready", "/v2/health/live"}
    for path in paths:
        assert client.get(path).status_code == 200, path


def unknown_fields(data, model: type, where: str = "") -> list[str]:
    """Keys of `data` that KServe's (or Kubernetes') generated API model for it does not have, recursively."""
    json_to_python = {json_key: attribute for attribute, json_key in model.attribute_map.items()}
    found = []
    for key, value in data.items():
        if key not in json_to_python:
            found.append(f"{where}{key}")
            continue
        kind = model.openapi_types[json_to_python[key]]
        item = re.fullmatch(r"list\[(\w+)\]", kind)
        nested = _model_class(item.group(1) if item else kind)
        if nested is None:
            continue  # a scalar, a dict of scalars or a free-form object
        for element in value if item else [value]:
            found += unknown_fields(element, nested, f"{where}{key}.")
    return found


def _model_class(name: str) -> type | None:
    return getattr(kserve_models, name, None) or getattr(kubernetes_models, name, None)


def test_kserve_resources_use_only_fields_kserve_knows():
    for path in KSERVE:
        document = load(path)
        assert document["apiVersion"].startswith("serving.kserve.io/") and document["metadata"]["name"]
        spec_model = {"InferenceService": kserve_models.V1beta1InferenceServiceSpec,
                      "ServingRuntime": kserve_models.V1alpha1ServingRuntimeSpec}[document["kind"]]  # fmt: skip
        assert unknown_fields(document["spec"], spec_model) == [], path.name


def test_the_kserve_services_speak_v2_on_the_exported_artifacts():
    runtime = by_kind(KSERVE)["ServingRuntime"]
    services = {load(path)["metadata"]["name"]: load(path) for path in KSERVE if load(path)["kind"] != "ServingRuntime"}
    claim = by_kind(K8S)["PersistentVolumeClaim"]["metadata"]["name"]

    ours = services["fashion-softmax"]["spec"]["predictor"]["model"]
    assert ours["protocolVersion"] == "v2" and ours["runtime"] == runtime["metadata"]["name"]
    assert ours["modelFormat"]["name"] in {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    assert ours["storageUri"].rstrip("/") == f"pvc://{claim}"  # model.json at the root of the artifacts
    assert runtime["spec"]["protocolVersions"] == ["v2"]
    (container,) = runtime["spec"]["containers"]
    assert container["image"] == by_kind(K8S)["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert {"name": "FASHION_SOFTMAX_MODEL_DIR", "value": "/mnt/models"} in container["env"]  # KServe mounts it there
    assert container["ports"][0]["containerPort"] == int(
        image_setting("serve.Dockerfile", r"FASHION_SOFTMAX_PORT=(\d+)")
    )

    triton = services["fashion-softmax-triton"]["spec"]["predictor"]["model"]
    assert (triton["modelFormat"]["name"], triton["protocolVersion"]) == ("triton", "v2")
    assert triton["storageUri"] == f"pvc://{claim}/model_repository"  # the export's Triton repository


def test_the_ingress_serves_the_api_service_over_tls_with_limits_per_client():
    resources = by_kind(K8S)
    ingress, service = resources["Ingress"], resources["Service"]
    (tls,) = ingress["spec"]["tls"]
    (rule,) = ingress["spec"]["rules"]
    assert tls["secretName"] == "fashion-softmax-tls" and rule["host"] in tls["hosts"]
    (path,) = rule["http"]["paths"]
    backend = path["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/force-ssl-redirect"] == "true"
    assert int(annotations["nginx.ingress.kubernetes.io/limit-rps"]) > 0
    assert int(annotations["nginx.ingress.kubernetes.io/limit-connections"]) > 0


def test_only_the_ingress_controller_reaches_the_api_pods():
    resources = by_kind(K8S)
    policy = resources["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"] == API_LABELS and policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    (source,) = rule["from"]
    assert source["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}
    assert source["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "ingress-nginx"}
    (container,) = resources["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert [port["port"] for port in rule["ports"]] == [port["name"] for port in container["ports"]]


def token_mounts() -> list[tuple[dict, dict]]:
    """(pod spec, container) of the Deployment and of the ServingRuntime: both run the serving image."""
    deployment_pod = by_kind(K8S)["Deployment"]["spec"]["template"]["spec"]
    runtime = by_kind(KSERVE)["ServingRuntime"]["spec"]
    return [(deployment_pod, deployment_pod["containers"][0]), (runtime, runtime["containers"][0])]


def test_the_pods_read_their_tokens_from_the_secret_and_see_it_change():
    for pod, container in token_mounts():
        tokens_file = next(item["value"] for item in container["env"] if item["name"] == "FASHION_SOFTMAX_TOKENS_FILE")
        (mount,) = [m for m in container["volumeMounts"] if tokens_file.startswith(m["mountPath"] + "/")]
        assert mount["readOnly"] is True and "subPath" not in mount  # a subPath mount never sees an update
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["secret"]["secretName"] == "fashion-softmax-tokens"
        assert tokens_file == f"{mount['mountPath']}/tokens"  # the key `tokens` of the Secret


def test_with_tokens_the_probes_still_answer_and_nothing_else_does(model_dir, tmp_path):
    tokens.add(tmp_path / "tokens", "deploy-test")
    app = create_app({"MODEL_DIR": str(model_dir), "MODEL_RELOAD_INTERVAL": 0, "TOKENS_FILE": str(tmp_path / "tokens")})
    client = app.test_client()
    probes = {container[probe]["httpGet"]["path"] for _, container in token_mounts()
              for probe in ("startupProbe", "readinessProbe", "livenessProbe") if probe in container}  # fmt: skip
    assert all(client.get(path).status_code == 200 for path in probes), probes
    assert client.get("/metadata").status_code == client.get("/v2/models/fashion-softmax").status_code == 401


def test_the_readme_makes_the_secrets_the_manifests_use():
    readme = (ROOT / "README.md").read_text()
    assert "kubectl create secret generic fashion-softmax-tokens --from-file=tokens=" in readme
    assert "kubectl create secret tls fashion-softmax-tls " in readme
