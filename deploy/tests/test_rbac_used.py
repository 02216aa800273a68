"""The chart grants the operator no verb it does not use, and every verb it
uses: the (resource, verb) pairs that the operator's ServiceAccounts sent to
the API server across the whole end-to-end suite, by the API server's audit
log, against the pairs the chart grants for each set of values the suite
installed it with.

`make test` runs it after the end-to-end suite. The suite keeps, in the run's
directory under the cache (testenv/audit-run.sh makes it), the audit log of
each environment it started (`*.audit.jsonl`) and one line per chart install
(`chart-installs.jsonl`: namespace, release, ServiceAccount, `--set` values),
and this check is told that directory in SSM_OPERATOR_AUDIT_RUN. Without it
the check fails: it cannot pass without a run to read. To check the latest
run again:

    . ~/.cache/ssm-operator/env.sh
    SSM_OPERATOR_AUDIT_RUN=$(ls -d ~/.cache/ssm-operator/audit-runs/20* | tail -1) \\
      "$SSM_OPERATOR_TESTENV_PYTHON" -m pytest -q -p no:cacheprovider deploy/tests/test_rbac_used.py

It writes what it saw into the run's directory (`rbac-used.txt`). A request
refused after a `helm uninstall` deleted the namespace's roles (the operator's
Pod, still stopping, releases its Lease) is no missing grant.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "ssm-operator"
RBAC_TEMPLATE = "deploy/ssm-operator/templates/rbac.yaml"
HELM_DEADLINE_SECONDS = 600  # a cold build of helm from Go modules
# Installs are rendered under this name, their namespace replaced by it:
# the grants of one set of values do not depend on the namespace's name.
PLACEHOLDER = "audited"

Pair = tuple[str, str, str]  # (API group, resource[/subresource], verb)
# RBAC's refusal: `User "…" cannot create resource "secrets" in API group ""…`
REFUSED_VERB = re.compile(r'cannot (\w+) resource "')


def show(pair: Pair) -> str:
    group, resource, verb = pair
    return f"{resource}{'.' + group if group else ''} {verb}"


# --- what the suite left -------------------------------------------------------

def audit_run() -> Path:
    named = os.environ.get("SSM_OPERATOR_AUDIT_RUN")
    if not named:
        pytest.fail("SSM_OPERATOR_AUDIT_RUN is not set: this check reads the audit log of an "
                    "end-to-end run. `make test` runs the suite and then this check; to check "
                    "a kept run: SSM_OPERATOR_AUDIT_RUN=<its directory under "
                    "$SSM_OPERATOR_CACHE/audit-runs> pytest deploy/tests/test_rbac_used.py")
    run = Path(named)
    if not run.is_dir():
        pytest.fail(f"SSM_OPERATOR_AUDIT_RUN={run} is not a directory (old runs are removed: "
                    "see testenv/audit-run.sh)")
    return run


def chart_installs(run: Path) -> list[dict]:
    path = run / "chart-installs.jsonl"
    if not path.exists():
        pytest.fail(f"{path} is missing: the end-to-end suite installed no chart in this run "
                    "(did it run with SSM_OPERATOR_AUDIT_RUN set to this directory?)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def audit_events(run: Path) -> list[dict]:
    logs = sorted(run.glob("*.audit.jsonl"))
    if not logs:
        pytest.fail(f"no *.audit.jsonl in {run}: the end-to-end suite started no environment "
                    "with SSM_OPERATOR_AUDIT_RUN set to this directory")
    events = []
    for log in logs:
        with log.open() as lines:
            events += [json.loads(line) for line in lines if line.strip()]
    return events


def pairs_of(event: dict) -> list[Pair]:
    """The (group, resource, verb) pairs a resource request needed; none for
    a non-resource URL (discovery, /version: every user may).

    The audit log has one verb per request, but the API server authorizes
    more for some: a patch or update that creates the object (201, as a
    server-side apply of a new Secret does) is also authorized as `create`.
    A refused request says which verb was refused."""
    reference = event.get("objectRef")
    if not reference or not reference.get("resource"):
        return []
    resource = reference["resource"]
    if reference.get("subresource"):
        resource += "/" + reference["subresource"]
    group = reference.get("apiGroup", "")
    pairs = [(group, resource, event["verb"])]
    status = event.get("responseStatus", {})
    if event["verb"] in ("patch", "update") and status.get("code") == 201:
        pairs.append((group, resource, "create"))
    refused = REFUSED_VERB.search(status.get("message", "")) if status.get("code") == 403 else None
    if refused and refused.group(1) != event["verb"]:
        pairs.append((group, resource, refused.group(1)))
    return pairs


def refused_by_rbac(event: dict) -> bool:
    """A 403 of authorization, not NamespaceLifecycle's refusal of a create in a
    namespace being deleted (a test's cleanup racing the operator's last Event),
    which is also a 403 ("unable to create new content in namespace … because it
    is being terminated", the API server's NamespaceLifecycle admission)."""
    status = event.get("responseStatus", {})
    return status.get("code") == 403 and "because it is being terminated" not in status.get("message", "")


# --- what the chart grants ---------------------------------------------------------

@pytest.fixture(scope="module")
def helm() -> str:
    built = subprocess.run([str(ROOT / "deploy" / "helm.sh")], capture_output=True,
                           text=True, timeout=HELM_DEADLINE_SECONDS)
    if built.returncode != 0:
        pytest.fail(f"deploy/helm.sh could not provide helm:\n{built.stderr}")
    return built.stdout.strip()


def granted_pairs(helm: str, values: tuple[str, ...], service_account: str) -> set[Pair]:
    """The pairs of every rule bound to the operator's ServiceAccount by the
    chart rendered with `values` (roles bound to no one — the aggregated
    ClusterRoles for people — grant the operator nothing)."""
    rendered = subprocess.run(
        [helm, "template", PLACEHOLDER, str(CHART), "--namespace", PLACEHOLDER,
         *[argument for value in values for argument in ("--set", value)]],
        capture_output=True, text=True, timeout=120)
    if rendered.returncode != 0:
        pytest.fail(f"helm template with {values} failed:\n{rendered.stderr}")
    documents = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    roles = {(doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"]): doc
             for doc in documents if doc["kind"] in ("Role", "ClusterRole")}
    pairs = set()
    for binding in documents:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if {"kind": "ServiceAccount", "name": service_account,
                "namespace": PLACEHOLDER} not in binding["subjects"]:
            continue
        reference = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if reference["kind"] == "Role" else None
        role = roles[(reference["kind"], namespace, reference["name"])]
        for rule in role["rules"]:
            pairs |= {(group, resource, verb) for group in rule["apiGroups"]
                      for resource in rule["resources"] for verb in rule["verbs"]}
    return pairs


def revocations(events: list[dict]) -> dict[str, str]:
    """When each namespace lost its first Role or RoleBinding (a `helm
    uninstall`, which deletes the Deployment and its RBAC at once): by the
    audit events' timestamps (RFC 3339, UTC, which sort as text)."""
    revoked: dict[str, str] = {}
    for event in events:
        reference = event.get("objectRef") or {}
        if (event["verb"] == "delete" and reference.get("resource") in ("roles", "rolebindings")
                and event.get("responseStatus", {}).get("code") == 200):
            namespace, when = reference.get("namespace", ""), event["stageTimestamp"]
            revoked[namespace] = min(when, revoked.get(namespace, when))
    return revoked


def refused_after_revocation(event: dict, revoked: dict[str, str]) -> bool:
    """A refusal of an operator whose grants its uninstall had already
    deleted (its Pod still stopping: releasing the Lease): no missing grant."""
    namespace = event.get("user", {}).get("username", "").split(":")[2:3]
    when = revoked.get(namespace[0]) if namespace else None
    return when is not None and event["stageTimestamp"] >= when


def placeholder_values(install: dict) -> tuple[str, ...]:
    return tuple(value.replace(install["namespace"], PLACEHOLDER) for value in install["set"])


# --- the check ---------------------------------------------------------------------

def test_the_chart_grants_exactly_the_verbs_the_end_to_end_suite_used(helm):
    run = audit_run()
    installs = chart_installs(run)
    events = audit_events(run)

    # Each operator ServiceAccount, by its token's user name, and the sets of
    # values its namespace was installed with (a test may install twice).
    values_of: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for install in installs:
        user = f"system:serviceaccount:{install['namespace']}:{install['serviceAccount']}"
        values_of[user].add(placeholder_values(install))
    service_accounts = {install["serviceAccount"] for install in installs}
    assert len(service_accounts) == 1, f"installs for several ServiceAccount names: {service_accounts}"
    [service_account] = service_accounts
    grants = {values: granted_pairs(helm, values, service_account)
              for sets in values_of.values() for values in sets}

    revoked = revocations(events)
    used: dict[Pair, int] = defaultdict(int)
    used_by_values: dict[tuple[str, ...], set[Pair]] = defaultdict(set)
    not_granted: dict[Pair, set[tuple[str, tuple[str, ...]]]] = defaultdict(set)
    denied: dict[Pair, int] = defaultdict(int)
    for event in events:
        user = event.get("user", {}).get("username")
        if user not in values_of:
            continue
        for pair in pairs_of(event):
            used[pair] += 1
            for values in values_of[user]:
                used_by_values[values].add(pair)
            if not any(pair in grants[values] for values in values_of[user]):
                not_granted[pair].add((user.rsplit(":", 2)[1], min(values_of[user])))
        if refused_by_rbac(event) and not refused_after_revocation(event, revoked):
            denied[pairs_of(event)[-1]] += 1
    all_granted = set().union(*grants.values())
    unused = all_granted - set(used)

    report = [f"audit run {run}: {len(events)} events, {len(installs)} chart installs, "
              f"{len(values_of)} operator ServiceAccounts", "", "used (requests):"]
    report += [f"  {show(pair)}  ({count})" for pair, count in sorted(used.items())]
    report += ["", "granted, by the values the suite installed with:"]
    for values, pairs in sorted(grants.items()):
        report.append(f"  {' '.join(values)}:")
        report += [f"    {show(pair)}{'' if pair in used_by_values[values] else '  (unused here)'}"
                   for pair in sorted(pairs)]
    (run / "rbac-used.txt").write_text("\n".join(report) + "\n")

    problems = []
    if not_granted:
        problems.append(f"used but not granted (add to {RBAC_TEMPLATE}):")
        for pair, users in sorted(not_granted.items()):
            namespaces = sorted(namespace for namespace, _ in users)
            installs = sorted({" ".join(values) for _, values in users})
            problems.append(f"  {show(pair)}  — by the operators of {len(namespaces)} test "
                            f"namespaces (e.g. {namespaces[0]}), installed with: "
                            + "; ".join(installs))
    if denied:
        problems.append("refused by the API server (403) though the operator sent them:")
        problems += [f"  {show(pair)}  ({count} requests)" for pair, count in sorted(denied.items())]
    if unused:
        problems.append(f"granted but never used by the end-to-end suite (remove from "
                        f"{RBAC_TEMPLATE}, or add the end-to-end test that needs it):")
        problems += [f"  {show(pair)}" for pair in sorted(unused)]
    assert not problems, "\n".join(problems) + f"\n(what was seen: {run / 'rbac-used.txt'})"


# --- how an audit event is read (no run needed) ------------------------------------

def audit_event(verb: str, resource: str, code: int, message: str = "", **reference) -> dict:
    return {"verb": verb, "objectRef": {"resource": resource, **reference},
            "responseStatus": {"code": code, "message": message}}


def test_a_request_needs_its_own_verb_on_its_resource_and_subresource():
    assert pairs_of(audit_event("patch", "ssmparameters", 200, apiGroup="ssm-operator.io",
                          subresource="status")) == [("ssm-operator.io", "ssmparameters/status",
                                                      "patch")]


def test_a_patch_that_creates_its_object_needs_create_too():
    assert pairs_of(audit_event("patch", "secrets", 201)) == [("", "secrets", "patch"),
                                                        ("", "secrets", "create")]


def test_a_refusal_names_the_verb_refused():
    refused = audit_event("patch", "secrets", 403, 'secrets "a" is forbidden: User "x" cannot create '
                    'resource "secrets" in API group "" in the namespace "n"')
    assert pairs_of(refused) == [("", "secrets", "patch"), ("", "secrets", "create")]


def test_a_create_in_a_terminating_namespace_is_no_rbac_refusal():
    terminating = audit_event("create", "events", 403, 'events.events.k8s.io "a.1" is forbidden: unable '
                        'to create new content in namespace n because it is being terminated')
    assert not refused_by_rbac(terminating)
    refused = audit_event("create", "events", 403, 'events.events.k8s.io "a.1" is forbidden: User "x" '
                    'cannot create resource "events" in API group "events.k8s.io" in the namespace "n"')
    assert refused_by_rbac(refused)


def test_a_refusal_after_the_uninstall_deleted_the_roles_is_no_missing_grant():
    user = {"username": "system:serviceaccount:n:ssm-operator"}
    delete = {**audit_event("delete", "roles", 200, namespace="n"),
              "stageTimestamp": "2026-12-04T19:26:22.397447Z"}
    revoked = revocations([delete])
    assert revoked == {"n": "2026-12-04T19:26:22.397447Z"}
    before = {**audit_event("update", "leases", 403), "user": user,
              "stageTimestamp": "2026-12-04T19:26:22.300000Z"}
    after = {**before, "stageTimestamp": "2026-12-04T19:26:22.442870Z"}
    elsewhere = {**after, "user": {"username": "system:serviceaccount:m:ssm-operator"}}
    assert not refused_after_revocation(before, revoked)
    assert refused_after_revocation(after, revoked)
    assert not refused_after_revocation(elsewhere, revoked)


def test_a_non_resource_request_needs_no_rule():
    assert pairs_of({"verb": "get", "requestURI": "/api", "responseStatus": {"code": 200}}) == []
