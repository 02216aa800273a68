"""The Helm chart deploy/ssm-operator: what it renders, what its schema
refuses, and what a real API server accepts from it.

Run with the venv python of testenv/setup.sh (it has pytest and PyYAML):

    . ~/.cache/ssm-operator/env.sh
    "$SSM_OPERATOR_TESTENV_PYTHON" -m pytest -q -p no:cacheprovider deploy/tests

Helm is built from Go modules once by deploy/helm.sh. The tests that talk to
the API server start their own control plane (testenv/env.py); there are no
nodes, so Pods are created but never run.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "ssm-operator"
CI_VALUES = CHART / "ci"
# The CRDs, each in crds/ and copied into the chart's crd/.
CRD_NAMES = ["ssmparameters.ssm-operator.io", "clusterssmparameters.ssm-operator.io"]
ENV_PY = ROOT / "testenv" / "env.py"

RELEASE_NAMESPACE = "ssm-operator"
HELM_DEADLINE_SECONDS = 600  # a cold build of helm from Go modules
STARTUP_DEADLINE_SECONDS = 90
STOP_DEADLINE_SECONDS = 30
CONTROLLER_DEADLINE_SECONDS = 60

RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted",
              "pod-security.kubernetes.io/enforce-version": "latest"}

# The operator's permissions, exactly (deploy/ssm-operator/README.md, "Permissions").
COMMON_RULES = [
    {"apiGroups": ["ssm-operator.io"], "resources": ["ssmparameters"],
     "verbs": ["list", "watch", "patch"]},
    {"apiGroups": ["ssm-operator.io"], "resources": ["ssmparameters/status"],
     "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["secrets"],
     "verbs": ["get", "list", "watch", "create", "patch", "delete"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets", "daemonsets"],
     "verbs": ["get", "patch"]},
]
SERVICE_ACCOUNT_IDENTITY_RULES = [
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
]
NAMESPACE_RULE = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}
# Serving every namespace, the operator also serves ClusterSsmParameters: it
# keeps an SsmParameter in each namespace they choose, by the namespaces' labels.
CLUSTER_WIDE_RULES = [
    {"apiGroups": ["ssm-operator.io"], "resources": ["ssmparameters"],
     "verbs": ["list", "watch", "patch", "create", "delete"]},
    *COMMON_RULES[1:],
    {"apiGroups": ["ssm-operator.io"], "resources": ["clusterssmparameters"],
     "verbs": ["list", "watch"]},
    {"apiGroups": ["ssm-operator.io"], "resources": ["clusterssmparameters/status"],
     "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
]


def own_namespace_rule(namespace: str) -> dict:
    """In a Role: reading its own Namespace object only."""
    return {**NAMESPACE_RULE, "resourceNames": [namespace]}


VIEW_RULES = [{"apiGroups": ["ssm-operator.io"], "resources": ["ssmparameters"],
               "verbs": ["get", "list", "watch"]}]
EDIT_RULES = [{"apiGroups": ["ssm-operator.io"], "resources": ["ssmparameters"],
               "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}]
# In every scope: whether a CRD is being deleted (then Secrets are orphaned).
CRD_RULE = {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"],
            "resourceNames": CRD_NAMES, "verbs": ["get"]}
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"
FULLNAME = "ssm-operator"  # the release "ssm-operator" of the chart of that name
LEASE_RULE = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
              "verbs": ["get", "create", "update"]}


# --- helpers -----------------------------------------------------------------

def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def poll(condition, deadline_seconds: float, what: str):
    deadline = time.monotonic() + deadline_seconds
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {deadline_seconds} s")
        time.sleep(0.2)


def sort_rule(rule: dict) -> dict:
    return {key: sorted(value) if isinstance(value, list) else value
            for key, value in rule.items()}


def same_rules(actual: list[dict], expected: list[dict]) -> bool:
    def canonical(rules):
        return sorted(json.dumps(sort_rule(rule), sort_keys=True) for rule in rules)
    return canonical(actual) == canonical(expected)


class Helm:
    def __init__(self, binary: str, home: Path):
        self.binary = binary
        # Helm's own config, cache and data stay inside the test's directory.
        self.env = {**os.environ,
                    "HELM_CONFIG_HOME": str(home / "config"),
                    "HELM_CACHE_HOME": str(home / "cache"),
                    "HELM_DATA_HOME": str(home / "data")}

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([self.binary, *args], capture_output=True, text=True,
                                timeout=120, env=self.env)
        if check and result.returncode != 0:
            pytest.fail(f"helm {' '.join(args)} failed:\n{result.stderr}")
        return result

    def template(self, *args: str, namespace: str = RELEASE_NAMESPACE,
                 release: str = "ssm-operator") -> list[dict]:
        out = self.run("template", release, str(CHART), "--namespace", namespace, *args).stdout
        return [doc for doc in yaml.safe_load_all(out) if doc]

    def refusal(self, *args: str) -> str:
        """The error of a render that must fail."""
        result = self.run("template", "ssm-operator", str(CHART), *args, check=False)
        assert result.returncode != 0, f"helm template {' '.join(args)} rendered"
        return result.stderr


def values_file(name: str) -> list[str]:
    return ["--values", str(CI_VALUES / f"{name}-values.yaml")]


def find(documents: list[dict], kind: str, name: str | None = None,
         namespace: str | None = None) -> dict:
    matches = [doc for doc in documents if doc["kind"] == kind
               and (name is None or doc["metadata"]["name"] == name)
               and (namespace is None or doc["metadata"].get("namespace") == namespace)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def kinds(documents: list[dict]) -> list[str]:
    return sorted(doc["kind"] for doc in documents)


def operator_container(documents: list[dict]) -> dict:
    containers = find(documents, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [container["name"] for container in containers] == ["ssm-operator"]
    return containers[0]


def environment_of(documents: list[dict]) -> dict:
    return {var["name"]: var.get("value", var.get("valueFrom"))
            for var in operator_container(documents)["env"]}


@pytest.fixture(scope="session")
def helm(tmp_path_factory) -> Helm:
    built = subprocess.run([str(ROOT / "deploy" / "helm.sh")], capture_output=True,
                           text=True, timeout=HELM_DEADLINE_SECONDS)
    if built.returncode != 0:
        pytest.fail(f"deploy/helm.sh could not provide helm:\n{built.stderr}")
    return Helm(built.stdout.strip(), tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def default_render(helm) -> list[dict]:
    return helm.template(*values_file("default"))


# --- lint and schema -----------------------------------------------------------

def test_kube_version_floor_is_the_api_server_the_admission_cases_run_on():
    """`make test` runs the CRD's admission cases on the kube-apiserver that
    testenv/controlplane/floor pins: the chart claims no older Kubernetes."""
    floor_go_mod = (ROOT / "testenv" / "controlplane" / "floor" / "go.mod").read_text()
    pinned = next(line.split()[-1] for line in floor_go_mod.splitlines()
                  if line.startswith("require k8s.io/kubernetes "))
    major, minor = pinned.removeprefix("v").split(".")[:2]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == f">={major}.{minor}.0-0"


@pytest.mark.parametrize("values", ["default", "namespaced", "all-features"])
def test_lint_passes_strict(helm, values):
    helm.run("lint", "--strict", str(CHART), *values_file(values))


def test_schema_refuses_a_misspelt_key(helm):
    error = helm.refusal("--set", "region=ap-northeast-1", "--set", "replicaCunt=2")
    assert "replicaCunt" in error and "not allowed" in error


def test_schema_refuses_a_misspelt_nested_key(helm):
    error = helm.refusal("--set", "region=ap-northeast-1",
                         "--set", "serviceAccount.anotations.a=b")
    assert "anotations" in error and "not allowed" in error


def test_schema_refuses_a_wrong_type(helm):
    error = helm.refusal("--set", "region=ap-northeast-1", "--set", "replicaCount=two")
    assert "/replicaCount" in error and "want integer" in error


def test_schema_refuses_an_unknown_log_format(helm):
    error = helm.refusal("--set", "region=ap-northeast-1", "--set", "logFormat=xml")
    assert "/logFormat" in error


def test_schema_refuses_namespace_scope_without_watched_namespaces(helm):
    error = helm.refusal("--set", "region=ap-northeast-1", "--set", "rbac.scope=namespace")
    assert "/watchNamespaces" in error


def test_schema_refuses_cluster_role_arns_that_are_not_a_list(helm):
    error = helm.refusal("--set", "region=ap-northeast-1",
                         "--set", "clusterRoleArns=arn:aws:iam::111122223333:role/platform")
    assert "/clusterRoleArns" in error and "want array" in error


@pytest.mark.parametrize("url", [
    "arn:aws:sqs:ap-northeast-1:111122223333:ssm-changes",  # an ARN, not a URL
    "sqs.ap-northeast-1.amazonaws.com/111122223333/ssm-changes",  # no scheme
    "https://sqs.ap-northeast-1.amazonaws.com/ssm-changes",  # no account
    "https://sqs.ap-northeast-1.amazonaws.com/1111/ssm-changes",  # not 12 digits
    "https://sqs.ap-northeast-1.amazonaws.com/111122223333/ssm.changes",  # not a queue name
    "https://sqs.ap-northeast-1.amazonaws.com/111122223333/ssm-changes/x",
    f"https://sqs.ap-northeast-1.amazonaws.com/111122223333/{'q' * 81}",  # over 80
    f"https://sqs.ap-northeast-1.amazonaws.com/111122223333/{'q' * 76}.fifo",  # over 80 with .fifo
])
def test_schema_refuses_change_event_queues_that_are_not_queue_urls(helm, url):
    error = helm.refusal("--set", "region=ap-northeast-1",
                         "--set-json", f"changeEventQueues={json.dumps([url])}")
    assert "/changeEventQueues/0" in error and "does not match pattern" in error


def test_schema_refuses_change_event_queues_that_are_not_a_list(helm):
    error = helm.refusal("--set", "region=ap-northeast-1", "--set",
                         "changeEventQueues=https://sqs.ap-northeast-1.amazonaws.com/111122223333/q")
    assert "/changeEventQueues" in error and "want array" in error


def test_region_is_required(helm):
    assert "region is required" in helm.refusal()


def test_more_than_one_replica_requires_leader_election(helm):
    error = helm.refusal(*values_file("default"), "--set", "replicaCount=2",
                         "--set", "leaderElection.enabled=false")
    assert "requires leaderElection.enabled" in error


def test_schema_refuses_a_duration_prometheus_cannot_parse(helm):
    error = helm.refusal("--set", "region=ap-northeast-1", "--set", "prometheusRule.enabled=true",
                         "--set", "prometheusRule.notSyncedFor=1.5m")
    assert "/prometheusRule/notSyncedFor" in error and "does not match pattern" in error


def test_global_values_are_accepted(helm):
    """Helm passes `global` to every subchart: a schema that refused it would
    make the chart unusable as a dependency."""
    documents = helm.template(*values_file("default"), "--set", "global.foo=bar")
    assert find(documents, "Deployment")


def test_the_chart_renders_as_a_subchart(helm, tmp_path):
    parent = tmp_path / "platform"
    shutil.copytree(CHART, parent / "charts" / "ssm-operator", ignore=shutil.ignore_patterns("ci"))
    (parent / "Chart.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "v2", "name": "platform", "version": "1.0.0"}))
    (parent / "values.yaml").write_text(yaml.safe_dump(
        {"global": {"imageRegistry": "registry.example.com"},
         "ssm-operator": {"region": "ap-northeast-1"}}))
    out = helm.run("template", "platform", str(parent), "--namespace", RELEASE_NAMESPACE).stdout
    documents = [doc for doc in yaml.safe_load_all(out) if doc]
    assert find(documents, "Deployment")["metadata"]["name"] == "platform-ssm-operator"


def test_service_monitor_requires_the_metrics_service(helm):
    error = helm.refusal(*values_file("default"), "--set", "metrics.serviceMonitor.enabled=true",
                         "--set", "metrics.service.enabled=false")
    assert "requires metrics.service.enabled" in error


# Objects whose fields are Kubernetes' own; the README describes them whole.
KUBERNETES_OBJECT_VALUES = {"resources", "podSecurityContext", "securityContext", "affinity"}
# Maps of any keys, described whole too (grafanaDashboard.labels has a default key).
FREE_FORM_VALUES = {"labels", "annotations"}
# Values Helm itself passes (to a subchart): in the schema, not in values.yaml.
HELM_VALUES = {"global"}


def value_paths(values: dict, prefix: str = "") -> list[str]:
    paths = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value \
                and key not in KUBERNETES_OBJECT_VALUES | FREE_FORM_VALUES:
            paths += value_paths(value, f"{path}.")
        else:
            paths.append(path)
    return paths


def test_readme_documents_every_value():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    missing = [path for path in value_paths(values) if f"| `{path}` |" not in readme]
    assert not missing, f"deploy/ssm-operator/README.md has no row for {missing}"


def shell_commands(markdown: str, program: str) -> list[str]:
    """The commands of ```sh blocks that start with `program`, continuation
    lines joined."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, re.DOTALL):
        for command in re.split(r"(?<!\\)\n", block):
            command = re.sub(r"\\\n\s*", "", command)
            if command.startswith(program + " "):
                commands.append(command)
    return commands


@pytest.mark.parametrize("readme", ["README.md", "deploy/ssm-operator/README.md"])
def test_readme_installs_the_image_it_builds_and_pushes(readme):
    """The default image.repository is in no registry: each `helm install`
    names the image that the commands before it build and push."""
    markdown = (ROOT / readme).read_text()
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    image = "$registry/ssm-operator"
    assert f"docker build -t {image}:{version} ." in shell_commands(markdown, "docker")
    assert f"docker push {image}:{version}" in shell_commands(markdown, "docker")
    installs = shell_commands(markdown, "helm install")
    assert installs
    for command in installs:
        assert f"--set image.repository={image} --set image.tag={version}" in command, command


def test_schema_describes_exactly_the_values_of_values_yaml():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())

    def compare(values: dict, schema: dict, path: str, exact: bool = True):
        """Every key of values.yaml is in the schema; for the chart's own
        objects also the reverse (Kubernetes objects have more fields than
        their defaults)."""
        assert schema.get("additionalProperties") is False, f"{path or 'the root'} allows any key"
        if exact:
            helm_values = HELM_VALUES if not path else set()
            assert set(values) == set(schema["properties"]) - helm_values, path
        else:
            assert set(values) <= set(schema["properties"]), path
        for key, value in values.items():
            child = schema_definitions(schema["properties"][key])
            if isinstance(value, dict) and child.get("properties"):
                compare(value, child, f"{path}{key}.",
                        exact and key not in KUBERNETES_OBJECT_VALUES)

    def schema_definitions(node: dict) -> dict:
        if "$ref" in node:
            return schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
        return node

    compare(values, schema, "")


# --- what the chart renders ----------------------------------------------------

def test_default_render_has_exactly_the_expected_objects(default_render):
    assert kinds(default_render) == sorted([
        "ServiceAccount", "CustomResourceDefinition", "CustomResourceDefinition",
        "ClusterRole", "ClusterRoleBinding",  # the operator's
        "ClusterRole", "ClusterRoleBinding",  # its tenant identities
        "ClusterRole", "ClusterRole",  # aggregated to view, edit and admin
        "ClusterRole", "ClusterRoleBinding",  # reading the CRD
        "Role", "RoleBinding", "Service", "Deployment"])


def bound_rules(documents: list[dict]) -> dict[tuple[str, str | None, str], list[dict]]:
    """The rules bound to the operator's ServiceAccount, by (binding kind,
    namespace, role name)."""
    roles = {(doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"]): doc
             for doc in documents if doc["kind"] in ("Role", "ClusterRole")}
    account = find(documents, "ServiceAccount")["metadata"]["name"]
    bound = {}
    for binding in documents:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account,
                                        "namespace": RELEASE_NAMESPACE}]
        namespace = binding["metadata"].get("namespace")
        reference = binding["roleRef"]
        role = roles[(reference["kind"], namespace if reference["kind"] == "Role" else None,
                      reference["name"])]
        bound[(binding["kind"], namespace, reference["name"])] = role["rules"]
    return bound


def test_default_deployment_is_hardened(default_render):
    pod = find(default_render, "Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = operator_container(default_render)["securityContext"]
    assert container["runAsNonRoot"] is True
    assert container["runAsUser"] == 65532
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["seccompProfile"] == {"type": "RuntimeDefault"}


def test_default_deployment_runs_the_operator_with_its_settings(default_render):
    container = operator_container(default_render)
    assert container["image"] == "ssm-operator:0.1.0"
    assert container["args"] == ["run"]
    assert environment_of(default_render) == {
        "AWS_REGION": "ap-northeast-1",
        "SSM_OPERATOR_LOG_FORMAT": "json",
        "SSM_OPERATOR_LOG_LEVEL": "info",
        "SSM_OPERATOR_BATCH_WINDOW": "250ms",
        "SSM_OPERATOR_AWS_READ_RATE": "32",
        "SSM_OPERATOR_KUBE_API_QPS": "500",
        "SSM_OPERATOR_KUBE_API_BURST": "1000",
        "SSM_OPERATOR_SERVICE_ACCOUNT_IDENTITIES": "true",
        # Shared with no namespace unless the admin lists some.
        "SSM_OPERATOR_OPERATOR_IDENTITY_NAMESPACES": "",
        # ClusterSsmParameters chain to no role unless the admin lists some.
        "SSM_OPERATOR_CLUSTER_ROLE_ARNS": "",
        # No change events unless the admin names their queues.
        "SSM_OPERATOR_CHANGE_EVENT_QUEUES": "",
        "SSM_OPERATOR_AWS_SESSION_DURATION": "1h",
        "SSM_OPERATOR_HTTP_ADDR": "0.0.0.0:8080",
        "SSM_OPERATOR_LEADER_ELECT": "true",
        "SSM_OPERATOR_LEASE_NAMESPACE": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        "SSM_OPERATOR_LEASE_NAME": "ssm-operator",
        "POD_NAME": {"fieldRef": {"fieldPath": "metadata.name"}},
    }
    assert container["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"},
                                      "limits": {"memory": "256Mi"}}


def test_probes_and_metrics_service_use_the_http_metrics_port(default_render):
    container = operator_container(default_render)
    assert container["ports"] == [{"name": "http-metrics", "containerPort": 8080,
                                   "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-metrics"}
    service = find(default_render, "Service")
    assert service["spec"]["ports"] == [{"name": "http-metrics", "port": 8080,
                                         "targetPort": "http-metrics", "protocol": "TCP"}]
    pod_labels = find(default_render, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_settings_reach_the_operator_environment(helm):
    documents = helm.template(*values_file("all-features"))
    environment = environment_of(documents)
    assert environment["AWS_REGION"] == "eu-central-1"
    assert environment["SSM_OPERATOR_WATCH_NAMESPACES"] == "payments"
    assert environment["SSM_OPERATOR_LOG_FORMAT"] == "text"
    assert environment["SSM_OPERATOR_LOG_LEVEL"] == "ssm_operator=debug,kube=info"
    assert environment["SSM_OPERATOR_BATCH_WINDOW"] == "20ms"
    assert environment["SSM_OPERATOR_AWS_READ_RATE"] == "16"
    assert environment["SSM_OPERATOR_OPERATOR_IDENTITY_NAMESPACES"] == "platform,platform-*"
    assert environment["SSM_OPERATOR_AWS_SESSION_DURATION"] == "30m"
    assert environment["SSM_OPERATOR_CHANGE_EVENT_QUEUES"] \
        == "https://sqs.eu-central-1.amazonaws.com/111122223333/ssm-changes"
    assert environment["AWS_ENDPOINT_URL_SSM"] == "https://ssm.eu-central-1.amazonaws.com"
    names = [var["name"] for var in operator_container(documents)["env"]]
    assert names[-2:] == ["AWS_ENDPOINT_URL_SSM", "HTTPS_PROXY"], "extraEnv comes last and wins"
    assert operator_container(documents)["args"] == ["run", "--log-level=debug"]


def test_cluster_role_arns_are_joined_with_commas(helm):
    documents = helm.template(*values_file("default"), "--set", "clusterRoleArns="
                              "{arn:aws:iam::111122223333:role/platform-*,"
                              "arn:aws:iam::444455556666:role/ssm-reader}")
    assert environment_of(documents)["SSM_OPERATOR_CLUSTER_ROLE_ARNS"] \
        == "arn:aws:iam::111122223333:role/platform-*,arn:aws:iam::444455556666:role/ssm-reader"


def test_change_event_queues_are_joined_with_commas(helm):
    queues = ["https://sqs.ap-northeast-1.amazonaws.com/111122223333/ssm-changes",
              "https://sqs.eu-west-1.amazonaws.com/444455556666/ssm-changes.fifo",
              "http://127.0.0.1:4566/111122223333/ssm_changes"]
    documents = helm.template(*values_file("default"),
                              "--set-json", f"changeEventQueues={json.dumps(queues)}")
    assert environment_of(documents)["SSM_OPERATOR_CHANGE_EVENT_QUEUES"] == ",".join(queues)


def test_watch_namespaces_are_joined_with_commas(helm):
    documents = helm.template(*values_file("namespaced"))
    assert environment_of(documents)["SSM_OPERATOR_WATCH_NAMESPACES"] == "payments,orders"


def test_image_tag_defaults_to_app_version_and_a_digest_wins(helm):
    tagged = helm.template(*values_file("default"), "--set", "image.tag=0.2.0")
    assert operator_container(tagged)["image"] == "ssm-operator:0.2.0"
    digest = "sha256:" + "a" * 64
    pinned = helm.template(*values_file("default"), "--set", "image.tag=0.2.0",
                           "--set", f"image.digest={digest}")
    assert operator_container(pinned)["image"] == f"ssm-operator@{digest}"


def test_irsa_role_is_an_annotation_of_the_service_account(helm):
    role = "arn:aws:iam::111122223333:role/ssm-operator"
    documents = helm.template(*values_file("default"), "--set",
                              f"serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn={role}")
    account = find(documents, "ServiceAccount")
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": role}
    pod = find(documents, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]


def test_extra_env_replaces_the_charts_own_entry_of_that_name(helm):
    documents = helm.template(*values_file("default"), "--set",
                              "extraEnv[0].name=SSM_OPERATOR_LOG_LEVEL,extraEnv[0].value=debug",
                              "--set", "extraEnv[1].name=HTTPS_PROXY,extraEnv[1].value=http://proxy:3128")
    env = operator_container(documents)["env"]
    names = [entry["name"] for entry in env]
    assert names.count("SSM_OPERATOR_LOG_LEVEL") == 1, "two entries of one name: an upgrade's merge keeps the first"
    assert environment_of(documents)["SSM_OPERATOR_LOG_LEVEL"] == "debug"
    assert names[-2:] == ["SSM_OPERATOR_LOG_LEVEL", "HTTPS_PROXY"]
    assert "SSM_OPERATOR_LOG_FORMAT" in names


def test_host_network_is_off_by_default_and_resolves_cluster_names_when_on(helm, default_render):
    pod = find(default_render, "Deployment")["spec"]["template"]["spec"]
    assert "hostNetwork" not in pod and "dnsPolicy" not in pod
    documents = helm.template(*values_file("default"), "--set", "hostNetwork=true")
    pod = find(documents, "Deployment")["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"


def test_existing_service_account_is_used_when_not_created(helm):
    documents = helm.template(*values_file("default"), "--set", "serviceAccount.create=false",
                              "--set", "serviceAccount.name=platform-operator")
    assert "ServiceAccount" not in kinds(documents)
    pod = find(documents, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "platform-operator"
    bindings = [doc for doc in documents if doc["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert len(bindings) == 4
    for binding in bindings:
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "platform-operator",
                                        "namespace": RELEASE_NAMESPACE}]


def test_serving_every_namespace_binds_the_operator_rules_cluster_wide(default_render):
    bound = bound_rules(default_render)
    assert set(bound) == {("ClusterRoleBinding", None, FULLNAME),
                          ("ClusterRoleBinding", None, f"{FULLNAME}-tenant-identities"),
                          ("ClusterRoleBinding", None, f"{FULLNAME}-crd"),
                          ("RoleBinding", RELEASE_NAMESPACE, f"{FULLNAME}-leader-election")}
    assert same_rules(bound[("ClusterRoleBinding", None, f"{FULLNAME}-crd")], [CRD_RULE])
    assert same_rules(bound[("ClusterRoleBinding", None, FULLNAME)], CLUSTER_WIDE_RULES)
    assert same_rules(bound[("ClusterRoleBinding", None, f"{FULLNAME}-tenant-identities")],
                      SERVICE_ACCOUNT_IDENTITY_RULES)


def test_watched_namespaces_are_bound_one_by_one_and_nothing_cluster_wide(helm):
    documents = helm.template(*values_file("default"), "--set", "watchNamespaces={payments,orders}")
    bound = bound_rules(documents)
    # Cluster-wide, only the read of the one CRD object.
    assert [key for key in bound if key[0] == "ClusterRoleBinding"] \
        == [("ClusterRoleBinding", None, f"{FULLNAME}-crd")]
    for namespace in ("payments", "orders"):
        assert same_rules(bound[("RoleBinding", namespace, FULLNAME)],
                          COMMON_RULES + [own_namespace_rule(namespace)])
        assert same_rules(bound[("RoleBinding", namespace, f"{FULLNAME}-tenant-identities")],
                          SERVICE_ACCOUNT_IDENTITY_RULES)
    assert len(bound) == 6  # and the Lease's, and the CRD's
    # Cluster-scoped besides: the aggregated ClusterRoles, bound to no one.
    assert sorted(doc["metadata"]["name"] for doc in documents if doc["kind"] == "ClusterRole") \
        == [f"{FULLNAME}-crd", f"{FULLNAME}-edit", f"{FULLNAME}-view"]


def granted(rules: list[dict]) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


# What serving ClusterSsmParameters takes, beyond serving SsmParameters.
CLUSTER_SSM_PARAMETER_GRANTS = {
    ("ssm-operator.io", "ssmparameters", "create"), ("ssm-operator.io", "ssmparameters", "delete"),
    ("ssm-operator.io", "clusterssmparameters", "list"),
    ("ssm-operator.io", "clusterssmparameters", "watch"),
    ("ssm-operator.io", "clusterssmparameters/status", "patch"),
    ("", "namespaces", "list"), ("", "namespaces", "watch"),
}


def test_cluster_ssm_parameters_are_served_only_cluster_wide(helm, default_render):
    cluster_wide = granted(bound_rules(default_render)[("ClusterRoleBinding", None, FULLNAME)])
    assert CLUSTER_SSM_PARAMETER_GRANTS <= cluster_wide
    for values in (["--set", "watchNamespaces={payments,orders}"], values_file("namespaced")):
        documents = helm.template(*values_file("default"), *values)
        everything = set().union(*map(granted, bound_rules(documents).values()))
        assert not CLUSTER_SSM_PARAMETER_GRANTS & everything, values
        assert "clusterssmparameters" not in str(
            [doc for doc in documents if doc["kind"] == "Role"])


def test_tenant_identities_are_bound_only_in_the_namespaces_named(helm):
    documents = helm.template(*values_file("default"),
                              "--set", "serviceAccountIdentityNamespaces={payments}")
    bound = bound_rules(documents)
    assert same_rules(bound[("RoleBinding", "payments", f"{FULLNAME}-tenant-identities")],
                      SERVICE_ACCOUNT_IDENTITY_RULES)
    assert [key for key in bound if "serviceaccounts/token" in str(bound[key])] \
        == [("RoleBinding", "payments", f"{FULLNAME}-tenant-identities")]
    watched = helm.template(*values_file("default"), "--set", "watchNamespaces={payments,orders}",
                            "--set", "serviceAccountIdentityNamespaces={orders}")
    assert [key for key, rules in bound_rules(watched).items()
            if "serviceaccounts/token" in str(rules)] \
        == [("RoleBinding", "orders", f"{FULLNAME}-tenant-identities")]


def test_tenant_identity_namespaces_must_be_served_and_enabled(helm):
    error = helm.refusal("--set", "region=ap-northeast-1", "--set", "watchNamespaces={payments}",
                         "--set", "serviceAccountIdentityNamespaces={orders}")
    assert "orders is not in watchNamespaces" in error
    error = helm.refusal("--set", "region=ap-northeast-1", "--set", "serviceAccountIdentities=false",
                         "--set", "serviceAccountIdentityNamespaces={orders}")
    assert "requires serviceAccountIdentities=true" in error
    error = helm.refusal("--set", "region=ap-northeast-1",
                         "--set", "serviceAccountIdentityNamespaces={team-*}")
    assert "serviceAccountIdentityNamespaces" in error


def test_namespace_admins_editors_and_viewers_get_ssm_parameters_by_aggregation(default_render):
    view = find(default_render, "ClusterRole", f"{FULLNAME}-view")
    assert view["metadata"]["labels"][AGGREGATE + "view"] == "true"
    assert not {AGGREGATE + "edit", AGGREGATE + "admin"} & set(view["metadata"]["labels"])
    assert same_rules(view["rules"], VIEW_RULES)
    edit = find(default_render, "ClusterRole", f"{FULLNAME}-edit")
    assert edit["metadata"]["labels"][AGGREGATE + "edit"] == "true"
    assert edit["metadata"]["labels"][AGGREGATE + "admin"] == "true"
    assert same_rules(edit["rules"], EDIT_RULES)
    bound = {binding["roleRef"]["name"] for binding in default_render
             if binding["kind"] in ("RoleBinding", "ClusterRoleBinding")}
    assert not {f"{FULLNAME}-view", f"{FULLNAME}-edit"} & bound, "the operator got people's roles"


def test_aggregated_roles_can_be_switched_off(helm):
    documents = helm.template(*values_file("default"), "--set", "rbac.aggregateToDefaultRoles=false")
    assert sorted(doc["metadata"]["name"] for doc in documents if doc["kind"] == "ClusterRole") \
        == [FULLNAME, f"{FULLNAME}-crd", f"{FULLNAME}-tenant-identities"]


def test_leader_election_gets_a_lease_role_in_the_release_namespace_only(default_render):
    role = find(default_render, "Role")
    assert role["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert same_rules(role["rules"], [LEASE_RULE])
    binding = find(default_render, "RoleBinding")
    assert binding["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}


def test_without_leader_election_no_lease_role_and_no_rolling_overlap(helm):
    documents = helm.template(*values_file("default"), "--set", "leaderElection.enabled=false")
    assert "Role" not in kinds(documents)
    deployment = find(documents, "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    environment = environment_of(documents)
    assert environment["SSM_OPERATOR_LEADER_ELECT"] == "false"
    assert "SSM_OPERATOR_LEASE_NAMESPACE" not in environment


def test_service_account_identities_off_drops_their_rules(helm):
    documents = helm.template(*values_file("default"), "--set", "serviceAccountIdentities=false")
    bound = bound_rules(documents)
    assert set(bound) == {("ClusterRoleBinding", None, FULLNAME),
                          ("ClusterRoleBinding", None, f"{FULLNAME}-crd"),
                          ("RoleBinding", RELEASE_NAMESPACE, f"{FULLNAME}-leader-election")}
    assert "serviceaccounts" not in str(documents)
    assert environment_of(documents)["SSM_OPERATOR_SERVICE_ACCOUNT_IDENTITIES"] == "false"


def test_namespace_scope_creates_a_role_per_watched_namespace_and_nothing_else_cluster_wide(helm):
    documents = helm.template(*values_file("namespaced"))
    assert [doc["metadata"]["name"] for doc in documents
            if doc["kind"] in ("ClusterRole", "ClusterRoleBinding")] == [f"{FULLNAME}-crd"] * 2
    bound = bound_rules(documents)
    for namespace in ("payments", "orders"):
        assert same_rules(bound[("RoleBinding", namespace, FULLNAME)],
                          COMMON_RULES + [own_namespace_rule(namespace)])
        assert same_rules(bound[("RoleBinding", namespace, f"{FULLNAME}-tenant-identities")],
                          SERVICE_ACCOUNT_IDENTITY_RULES)
    assert same_rules(bound[("RoleBinding", RELEASE_NAMESPACE, f"{FULLNAME}-leader-election")],
                      [LEASE_RULE])
    assert same_rules(bound[("ClusterRoleBinding", None, f"{FULLNAME}-crd")], [CRD_RULE])
    assert len(bound) == 6


def test_the_crd_is_readable_by_name_only_in_every_scope(helm):
    for values in ("default", "namespaced"):
        documents = helm.template(*values_file(values))
        role = find(documents, "ClusterRole", name=f"{FULLNAME}-crd")
        assert same_rules(role["rules"], [CRD_RULE])
        binding = find(documents, "ClusterRoleBinding", name=f"{FULLNAME}-crd")
        assert binding["roleRef"]["name"] == f"{FULLNAME}-crd"


def test_optional_objects_are_off_by_default(default_render):
    optional = {"ServiceMonitor", "PodDisruptionBudget", "NetworkPolicy", "PrometheusRule",
                "ConfigMap"}
    assert not optional & set(kinds(default_render))


def test_every_optional_switch_renders_its_object(helm):
    documents = helm.template(*values_file("all-features"))
    pod_labels = find(documents, "Deployment")["spec"]["template"]["metadata"]["labels"]

    monitor = find(documents, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"][0]["port"] == "http-metrics"
    service_labels = find(documents, "Service")["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service_labels.items()

    rule = find(documents, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    assert sorted(alert_rules(documents)) == sorted(ALERTS)

    dashboard = find(documents, "ConfigMap", f"{FULLNAME}-dashboard", namespace="monitoring")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Platform"}
    assert json.loads(dashboard["data"]["ssm-operator.json"])["uid"] == "ssm-operator"

    budget = find(documents, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    policy = find(documents, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    egress_ports = {(port["port"], port["protocol"])
                    for rule in policy["spec"]["egress"] for port in rule["ports"]}
    assert {(53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP"), (3128, "TCP")} == egress_ports
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]


ALERTS = ["SsmOperatorDown", "SsmParametersNotSynced", "SsmParametersStale",
          "SsmOperatorThrottled", "SsmOperatorReconcileErrors"]
DASHBOARD_PANELS = [
    "SsmParameters by Ready status and reason", "SsmParameters by Synced status and reason",
    "Reconciles by outcome", "Reconcile duration p50 / p99", "AWS calls by operation and outcome",
    "Throttled AWS calls", "Secret writes by action", "Queue depth", "Oldest sync age",
    "Change events by outcome",
]


def alert_rules(documents: list[dict]) -> dict[str, dict]:
    groups = find(documents, "PrometheusRule")["spec"]["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def dashboard_of(documents: list[dict]) -> dict:
    config_map = find(documents, "ConfigMap", f"{FULLNAME}-dashboard")
    assert list(config_map["data"]) == ["ssm-operator.json"]
    return json.loads(config_map["data"]["ssm-operator.json"])


def metric_names(expressions: list[str]) -> set[str]:
    """The operator's metrics an expression reads (a histogram's by its name)."""
    return {re.sub(r"_bucket$", "", name)
            for expression in expressions for name in re.findall(r"ssm_operator_\w+", expression)}


def documented_metrics() -> set[str]:
    observability = (ROOT / "README.md").read_text().split("## Observability", 1)[1]
    return set(re.findall(r"`(ssm_operator_\w+)", observability.split("\n## ", 1)[0]))


def test_prometheus_rule_alerts_say_what_to_look_at(helm):
    rules = alert_rules(helm.template(*values_file("default"), "--set", "prometheusRule.enabled=true"))
    assert list(rules) == ALERTS
    assert {name: rule["labels"]["severity"] for name, rule in rules.items()} == {
        "SsmOperatorDown": "critical", "SsmParametersNotSynced": "warning",
        "SsmParametersStale": "warning", "SsmOperatorThrottled": "warning",
        "SsmOperatorReconcileErrors": "warning"}
    for name, rule in rules.items():
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
    for name in ALERTS[1:]:
        assert "kubectl get ssmparameters -A" in rules[name]["annotations"]["description"], name
    assert "message" in rules["SsmParametersNotSynced"]["annotations"]["description"]
    assert "{{ $labels.reason }}" in rules["SsmParametersNotSynced"]["annotations"]["summary"]
    assert "kubectl -n ssm-operator logs deployment/ssm-operator" \
        in rules["SsmOperatorDown"]["annotations"]["description"]


def test_prometheus_rule_thresholds_are_the_defaults_or_the_values(helm):
    defaults = alert_rules(helm.template(*values_file("default"),
                                         "--set", "prometheusRule.enabled=true"))
    assert defaults["SsmOperatorDown"]["for"] == "10m"
    assert defaults["SsmParametersNotSynced"]["for"] == "15m"
    assert defaults["SsmParametersStale"]["expr"].endswith(") > 10800")
    assert defaults["SsmParametersStale"]["for"] == "10m"
    assert defaults["SsmOperatorThrottled"]["for"] == "15m"
    assert defaults["SsmOperatorReconcileErrors"]["expr"].endswith("> 10")
    assert defaults["SsmOperatorReconcileErrors"]["for"] == "15m"

    rules = alert_rules(helm.template(*values_file("all-features")))
    assert rules["SsmParametersNotSynced"]["for"] == "30m"
    assert rules["SsmParametersStale"]["expr"].endswith(") > 21600")
    assert "21600 s" in rules["SsmParametersStale"]["annotations"]["description"]
    assert rules["SsmOperatorThrottled"]["for"] == "1h"
    assert rules["SsmOperatorReconcileErrors"]["expr"].endswith("> 25")
    assert rules["SsmOperatorReconcileErrors"]["for"] == "30m"


def test_prometheus_rule_expressions_read_what_they_alert_on(helm):
    rules = alert_rules(helm.template(*values_file("default"), "--set", "prometheusRule.enabled=true"))
    assert rules["SsmOperatorDown"]["expr"].startswith("absent(ssm_operator_build_info{")
    not_synced = rules["SsmParametersNotSynced"]["expr"]
    # The gauge's labels are the condition's, not the objects' namespaces.
    assert not_synced.startswith("sum by (reason) (ssm_operator_ssm_parameters{")
    assert 'condition="Synced",status="False"}' in not_synced and not_synced.endswith(" > 0")
    assert rules["SsmParametersStale"]["expr"].startswith(
        "max(ssm_operator_oldest_sync_age_seconds{")
    throttled = rules["SsmOperatorThrottled"]["expr"]
    assert "[5m]" in throttled and throttled.endswith(" > 0")
    # PromQL's regular expressions match whole values: the operator's reason
    # (Throttled) and AWS's codes (those of SQS, counted as AWS answered).
    throttling = re.compile(re.search(r'outcome=~"([^"]+)"', throttled).group(1))
    for outcome in ("Throttled", "ThrottlingException", "RequestThrottled"):
        assert throttling.fullmatch(outcome), outcome
    for outcome in ("ok", "KmsAccessDenied", "AwsUnavailable"):
        assert not throttling.fullmatch(outcome), outcome
    assert 'outcome="failed"' in rules["SsmOperatorReconcileErrors"]["expr"]
    assert metric_names([rule["expr"] for rule in rules.values()]) <= documented_metrics()


def test_prometheus_rule_selects_the_series_of_the_release(helm):
    documents = helm.template(*values_file("default"), "--set", "prometheusRule.enabled=true",
                              namespace="platform", release="secrets")
    # As the chart's ServiceMonitor scrapes them: job is the Service's name.
    service = find(documents, "Service")["metadata"]["name"]
    selector = f'{{job="{service}",namespace="platform"'
    for name, rule in alert_rules(documents).items():
        selectors = re.findall(r"ssm_operator_\w+(\{[^}]*)", rule["expr"])
        assert selectors and all(found.startswith(selector) for found in selectors), name
    custom = helm.template(*values_file("default"), "--set", "prometheusRule.enabled=true",
                           "--set", 'prometheusRule.metricsSelector=job="ssm-operator"')
    for name, rule in alert_rules(custom).items():
        assert "-metrics" not in rule["expr"], name
        assert re.findall(r"ssm_operator_\w+(\{[^}]*)", rule["expr"])[0] \
            .startswith('{job="ssm-operator"'), name


def test_stale_alert_is_left_out_with_no_threshold(helm):
    rules = alert_rules(helm.template(*values_file("default"), "--set", "prometheusRule.enabled=true",
                                      "--set", "prometheusRule.staleAfterSeconds=0"))
    assert sorted(rules) == sorted(set(ALERTS) - {"SsmParametersStale"})


def test_grafana_dashboard_is_a_config_map_for_the_sidecar(helm):
    documents = helm.template(*values_file("default"), "--set", "grafanaDashboard.enabled=true")
    config_map = find(documents, "ConfigMap", f"{FULLNAME}-dashboard", namespace=RELEASE_NAMESPACE)
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = dashboard_of(documents)
    assert dashboard == json.loads((CHART / "dashboards" / "ssm-operator.json").read_text())
    titles = [panel["title"] for panel in dashboard["panels"]]
    missing = [title for title in DASHBOARD_PANELS if title not in titles]
    assert not missing, f"the dashboard has no panel {missing}"
    assert len(titles) == len(set(titles))
    assert dashboard["uid"] == "ssm-operator" and dashboard["schemaVersion"] >= 39
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert 'namespace="$namespace",job="$job"' in target["expr"], panel["title"]
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert metric_names(expressions) <= documented_metrics()


def test_grafana_dashboard_labels_can_be_replaced(helm):
    documents = helm.template(*values_file("default"), "--set", "grafanaDashboard.enabled=true",
                              "--set", "grafanaDashboard.labels.grafana_dashboard=null",
                              "--set", "grafanaDashboard.labels.dashboards=ssm")
    labels = find(documents, "ConfigMap")["metadata"]["labels"]
    assert labels["dashboards"] == "ssm" and "grafana_dashboard" not in labels


def test_pod_disruption_budget_may_use_max_unavailable(helm):
    documents = helm.template(*values_file("default"), "--set", "podDisruptionBudget.enabled=true",
                              "--set", "podDisruptionBudget.maxUnavailable=1")
    assert find(documents, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in find(documents, "PodDisruptionBudget")["spec"]


def test_common_and_pod_labels_never_repeat_a_key(helm):
    documents = helm.template(*values_file("default"), "--set", "commonLabels.team=platform",
                              "--set", "podLabels.team=platform",
                              "--set", "commonLabels.app\\.kubernetes\\.io/name=other")
    labels = find(documents, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert labels["team"] == "platform"
    assert labels["app.kubernetes.io/name"] == "ssm-operator", "selector labels are the chart's"


@pytest.mark.parametrize("name", CRD_NAMES)
def test_chart_crd_is_a_copy_of_the_repository_crd(name):
    chart_crd = CHART / "crd" / f"{name}.yaml"
    assert chart_crd.read_bytes() == (ROOT / "crds" / f"{name}.yaml").read_bytes(), (
        f"deploy/ssm-operator/crd/ is stale: cp crds/{name}.yaml deploy/ssm-operator/crd/")


def test_the_chart_installs_every_crd_of_the_repository():
    assert sorted(path.name for path in (ROOT / "crds").glob("*.yaml")) \
        == sorted(f"{name}.yaml" for name in CRD_NAMES)
    assert sorted(path.name for path in (CHART / "crd").iterdir()) \
        == sorted(f"{name}.yaml" for name in CRD_NAMES)


@pytest.mark.parametrize("name", CRD_NAMES)
def test_crd_template_renders_the_repository_crd_and_is_kept(default_render, name):
    rendered = find(default_render, "CustomResourceDefinition", name)
    repository = yaml.safe_load((ROOT / "crds" / f"{name}.yaml").read_text())
    assert rendered["spec"] == repository["spec"]
    assert rendered["metadata"]["name"] == repository["metadata"]["name"]
    assert rendered["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert rendered["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_crd_switches(helm):
    assert "CustomResourceDefinition" not in kinds(
        helm.template(*values_file("default"), "--set", "crds.install=false"))
    unkept = [doc for doc in helm.template(*values_file("default"), "--set", "crds.keep=false")
              if doc["kind"] == "CustomResourceDefinition"]
    assert sorted(crd["metadata"]["name"] for crd in unkept) == sorted(CRD_NAMES)
    for crd in unkept:
        assert "annotations" not in crd["metadata"]


# --- against a real API server -----------------------------------------------

class Cluster:
    def __init__(self, kubeconfig: str):
        self.kubeconfig = kubeconfig

    def kubectl(self, *args: str, stdin: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["kubectl", "--kubeconfig", self.kubeconfig, *args],
                                input=stdin, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def get(self, *args: str) -> dict | None:
        result = self.kubectl("get", *args, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> str:
        namespace = {"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": name, "labels": labels or {}}}
        self.kubectl("apply", "-f", "-", stdin=json.dumps(namespace))
        return name

    def helm(self, helm: Helm, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return helm.run(*args, "--kubeconfig", self.kubeconfig, check=check)


def prometheus_operator_crd(kind: str, plural: str) -> dict:
    """Just enough of a Prometheus Operator CRD for the API server to know the kind."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com", "scope": "Namespaced",
            "names": {"kind": kind, "listKind": f"{kind}List",
                      "plural": plural, "singular": kind.lower()},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                "openAPIV3Schema": {"type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True}}}],
        },
    }


SERVICE_MONITOR_CRD = prometheus_operator_crd("ServiceMonitor", "servicemonitors")
PROMETHEUS_RULE_CRD = prometheus_operator_crd("PrometheusRule", "prometheusrules")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("testenv")
    process = subprocess.Popen(
        [sys.executable, str(ENV_PY), "--workdir", str(workdir), "--components", "kube"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        readable, _, _ = select.select([process.stdout], [], [], STARTUP_DEADLINE_SECONDS)
        if not readable:
            pytest.fail(f"testenv/env.py printed nothing within {STARTUP_DEADLINE_SECONDS} s; "
                        f"logs in {workdir}/logs")
        line = process.stdout.readline()
        endpoints = json.loads(line) if line else {"error": "env.py exited without a line"}
        if "error" in endpoints:
            pytest.fail(f"the test environment did not start: {endpoints['error']} "
                        "(run testenv/setup.sh first)")
        running = Cluster(endpoints["kubeconfig"])
        running.create_namespace(RELEASE_NAMESPACE)
        for namespace in ("payments", "orders"):
            running.create_namespace(namespace)
        running.create_namespace("monitoring")
        for crd in (SERVICE_MONITOR_CRD, PROMETHEUS_RULE_CRD):
            running.kubectl("apply", "-f", "-", stdin=json.dumps(crd))
            running.kubectl("wait", "--for=condition=Established", "--timeout=30s",
                            f"crd/{crd['metadata']['name']}")
        yield running
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize("values", ["default", "namespaced", "all-features"])
def test_rendered_manifests_are_accepted_by_the_api_server(helm, cluster, values):
    manifests = helm.run("template", "ssm-operator", str(CHART), "--namespace",
                         RELEASE_NAMESPACE, *values_file(values)).stdout
    # Server-side dry run with strict field validation: schema, unknown fields,
    # defaulting and admission, nothing stored.
    applied = cluster.kubectl("apply", "--dry-run=server", "--validate=strict",
                              "-f", "-", stdin=manifests)
    assert applied.stdout.count("(server dry run)") == manifests.count("\nkind: ")


def test_deployment_is_admitted_in_a_restricted_namespace(helm, cluster):
    namespace = cluster.create_namespace(unique_name("restricted"), RESTRICTED)
    release = unique_name("psa")
    cluster.helm(helm, "install", release, str(CHART), "--namespace", namespace,
                 *values_file("default"), "--set", "crds.install=false")
    assert cluster.get("deployment", f"{release}-ssm-operator", "-n", namespace)
    # Pod Security admission judges Pods, not Deployments: the ReplicaSet
    # controller creating the Pod is the proof (it never runs: no nodes).
    pods = poll(lambda: (cluster.get("pods", "-n", namespace,
                                     "-l", f"app.kubernetes.io/instance={release}") or {})
                .get("items"), CONTROLLER_DEADLINE_SECONDS, f"a Pod of the operator in {namespace}")
    assert pods[0]["spec"]["serviceAccountName"] == f"{release}-ssm-operator"


def test_a_weakened_pod_is_refused_in_a_restricted_namespace(helm, cluster):
    """The check above means something: the same namespace refuses a Pod that
    may escalate privileges."""
    namespace = cluster.create_namespace(unique_name("restricted"), RESTRICTED)
    cluster.helm(helm, "install", unique_name("weak"), str(CHART), "--namespace", namespace,
                 *values_file("default"), "--set", "crds.install=false",
                 "--set", "securityContext.allowPrivilegeEscalation=true")

    def refusal():
        replica_sets = (cluster.get("replicasets", "-n", namespace) or {}).get("items", [])
        return [condition["message"] for replica_set in replica_sets
                for condition in replica_set.get("status", {}).get("conditions", [])
                if condition["type"] == "ReplicaFailure"]

    messages = poll(refusal, CONTROLLER_DEADLINE_SECONDS, "the ReplicaSet's ReplicaFailure")
    assert "allowPrivilegeEscalation" in messages[0]


def test_install_and_uninstall_leave_only_the_kept_crds(helm, cluster):
    namespace = cluster.create_namespace(unique_name("install"))
    release = "lifecycle"
    fullname = f"{release}-ssm-operator"
    cluster.helm(helm, "install", release, str(CHART), "--namespace", namespace,
                 *values_file("default"), "--set", "podDisruptionBudget.enabled=true",
                 "--set", "networkPolicy.enabled=true")
    status = json.loads(cluster.helm(helm, "status", release, "--namespace", namespace,
                                     "--output", "json").stdout)
    assert status["info"]["status"] == "deployed"
    installed = [("deployment", fullname, namespace), ("serviceaccount", fullname, namespace),
                 ("service", f"{fullname}-metrics", namespace),
                 ("role", f"{fullname}-leader-election", namespace),
                 ("rolebinding", f"{fullname}-leader-election", namespace),
                 ("poddisruptionbudget", fullname, namespace),
                 ("networkpolicy", fullname, namespace),
                 ("clusterrole", fullname, None), ("clusterrolebinding", fullname, None),
                 ("clusterrole", f"{fullname}-tenant-identities", None),
                 ("clusterrolebinding", f"{fullname}-tenant-identities", None),
                 ("clusterrole", f"{fullname}-view", None),
                 ("clusterrole", f"{fullname}-edit", None)]
    for kind, name, in_namespace in installed:
        scope = ["-n", in_namespace] if in_namespace else []
        assert cluster.get(kind, name, *scope), f"{kind} {name} was not installed"
    for name in CRD_NAMES:
        crd = cluster.get("crd", name)
        assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == release
    operator = f"system:serviceaccount:{namespace}:{fullname}"

    def allowed(*question: str) -> bool:
        answer = cluster.kubectl("auth", "can-i", *question, "--as", operator, check=False)
        return answer.stdout.strip() == "yes"

    # Serving every namespace, it serves ClusterSsmParameters too.
    for verb in ("create", "patch", "delete"):
        assert allowed(verb, "ssmparameters.ssm-operator.io", "-n", "payments"), verb
    assert allowed("watch", "clusterssmparameters.ssm-operator.io")
    assert allowed("patch", "clusterssmparameters.ssm-operator.io", "--subresource=status")
    assert not allowed("patch", "clusterssmparameters.ssm-operator.io")
    assert allowed("watch", "namespaces")

    cluster.helm(helm, "uninstall", release, "--namespace", namespace, "--wait",
                 "--timeout", f"{CONTROLLER_DEADLINE_SECONDS}s")
    for kind, name, in_namespace in installed:
        scope = ["-n", in_namespace] if in_namespace else []
        poll(lambda kind=kind, name=name, scope=scope: cluster.get(kind, name, *scope) is None,
             CONTROLLER_DEADLINE_SECONDS, f"the deletion of {kind} {name}")
    for name in CRD_NAMES:
        assert cluster.get("crd", name), f"crds.keep leaves {name} (and its objects) in place"
    listed = json.loads(cluster.helm(helm, "list", "--namespace", namespace,
                                     "--output", "json").stdout)
    assert listed == []


def reads_namespace(cluster: Cluster, user: str, namespace: str) -> bool:
    """Whether `user` may GET the Namespace object: the request itself, since
    `kubectl auth can-i get namespace NAME` asks about the current namespace,
    while the API server authorizes GET /api/v1/namespaces/NAME in namespace
    NAME (which is how a Role lets the operator read its own Namespace)."""
    answer = cluster.kubectl("get", "namespace", namespace, "--as", user, check=False)
    assert answer.returncode == 0 or "forbidden" in answer.stderr, answer.stderr
    return answer.returncode == 0


def test_namespaced_install_grants_only_the_watched_namespaces(helm, cluster):
    release = "scoped"
    cluster.helm(helm, "install", release, str(CHART), "--namespace", RELEASE_NAMESPACE,
                 *values_file("namespaced"), "--set", "crds.install=false")
    operator = f"system:serviceaccount:{RELEASE_NAMESPACE}:{release}-ssm-operator"

    def allowed(*question: str) -> bool:
        answer = cluster.kubectl("auth", "can-i", *question, "--as", operator, check=False)
        return answer.stdout.strip() == "yes"

    for namespace in ("payments", "orders"):
        assert allowed("watch", "secrets", "-n", namespace)
        assert allowed("patch", "ssmparameters.ssm-operator.io", "--subresource=status",
                       "-n", namespace)
        assert allowed("create", "serviceaccounts", "--subresource=token", "-n", namespace)
    assert not allowed("list", "secrets", "-n", "default")
    assert not allowed("list", "secrets", "--all-namespaces")
    # Its own Namespace object only (the annotation that allows identity.roleArn).
    assert reads_namespace(cluster, operator, "payments")
    assert not reads_namespace(cluster, operator, "default")
    assert not allowed("list", "namespaces")
    assert not allowed("create", "serviceaccounts", "--subresource=token", "-n", "default")
    assert allowed("update", "leases.coordination.k8s.io", "-n", RELEASE_NAMESPACE)
    assert not allowed("update", "leases.coordination.k8s.io", "-n", "payments")
    assert not allowed("delete", "ssmparameters.ssm-operator.io", "-n", "payments")
    # No ClusterSsmParameters: they take cluster-wide permissions.
    assert not allowed("create", "ssmparameters.ssm-operator.io", "-n", "payments")
    assert not allowed("list", "clusterssmparameters.ssm-operator.io")
    assert not allowed("watch", "namespaces")


def test_watched_namespaces_install_grants_only_them(helm, cluster):
    release = "watching"
    cluster.helm(helm, "install", release, str(CHART), "--namespace", RELEASE_NAMESPACE,
                 *values_file("default"), "--set", "crds.install=false",
                 "--set", "watchNamespaces={payments}")
    operator = f"system:serviceaccount:{RELEASE_NAMESPACE}:{release}-ssm-operator"

    def allowed(*question: str) -> bool:
        answer = cluster.kubectl("auth", "can-i", *question, "--as", operator, check=False)
        return answer.stdout.strip() == "yes"

    assert allowed("watch", "secrets", "-n", "payments")
    assert allowed("create", "serviceaccounts", "--subresource=token", "-n", "payments")
    assert reads_namespace(cluster, operator, "payments")
    assert not allowed("watch", "secrets", "-n", "orders")
    assert not allowed("create", "serviceaccounts", "--subresource=token", "-n", "kube-system")
    assert not reads_namespace(cluster, operator, "orders")


def test_namespace_admins_and_editors_manage_ssm_parameters_and_viewers_read_them(helm, cluster):
    namespace = cluster.create_namespace(unique_name("team"))
    cluster.helm(helm, "install", "aggregated", str(CHART), "--namespace", namespace,
                 *values_file("default"), "--set", "crds.install=false")
    for user, role in (("alice", "admin"), ("bob", "edit"), ("carol", "view")):
        cluster.kubectl("create", "rolebinding", f"{user}-{role}", f"--clusterrole={role}",
                        f"--user={user}", "-n", namespace)

    def allowed(user: str, *question: str, where: str = namespace) -> bool:
        answer = cluster.kubectl("auth", "can-i", *question, "--as", user, "-n", where,
                                 check=False)
        return answer.stdout.strip() == "yes"

    # The controller manager aggregates the chart's rules into the built-in roles.
    poll(lambda: allowed("alice", "create", "ssmparameters.ssm-operator.io")
         and allowed("carol", "list", "ssmparameters.ssm-operator.io"),
         CONTROLLER_DEADLINE_SECONDS, "the aggregation of the chart's ClusterRoles")
    for user in ("alice", "bob"):
        for verb in ("get", "list", "watch", "create", "update", "patch", "delete"):
            assert allowed(user, verb, "ssmparameters.ssm-operator.io"), (user, verb)
        assert not allowed(user, "patch", "ssmparameters.ssm-operator.io", "--subresource=status")
    for verb in ("get", "list", "watch"):
        assert allowed("carol", verb, "ssmparameters.ssm-operator.io")
    assert not allowed("carol", "create", "ssmparameters.ssm-operator.io")
    assert not allowed("alice", "list", "ssmparameters.ssm-operator.io", where="payments")


def test_notes_say_where_the_operator_may_create_service_account_tokens(helm, cluster):
    def notes(*values: str) -> str:
        return cluster.helm(helm, "install", "notes", str(CHART), "--namespace", RELEASE_NAMESPACE,
                            "--dry-run", *values_file("default"), "--set", "crds.install=false",
                            *values).stdout

    assert "ServiceAccount in EVERY NAMESPACE, kube-system included." in notes()
    assert "serviceAccountIdentityNamespaces={team-a,team-b}" in notes()
    assert "ServiceAccount in payments." in notes("--set", "serviceAccountIdentityNamespaces={payments}")
    assert "ServiceAccount in payments, orders." in notes("--set", "watchNamespaces={payments,orders}")
    assert "SERVICEACCOUNT TOKENS" not in notes("--set", "serviceAccountIdentities=false")
