"""The Argo CD health check of SsmParameter and ClusterSsmParameter: the
README's argocd-cm carries deploy/argocd/ssm-parameter-health.lua exactly,
for both kinds, and the script reads the conditions the operator writes.

No Lua interpreter is assumed on the machine, so the script is not run here.

    . ~/.cache/ssm-operator/env.sh
    "$SSM_OPERATOR_TESTENV_PYTHON" -m pytest -q -p no:cacheprovider deploy/tests
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "argocd" / "ssm-parameter-health.lua"
MARKER = "<!-- argocd-health: deploy/argocd/ssm-parameter-health.lua -->"
KEYS = ["resource.customizations.health.ssm-operator.io_SsmParameter",
        "resource.customizations.health.ssm-operator.io_ClusterSsmParameter"]


def readme_config_map() -> dict:
    """The YAML block that follows the marker in the README."""
    readme = (ROOT / "README.md").read_text()
    assert readme.count(MARKER) == 1, f"README.md must have one {MARKER}"
    after = readme.split(MARKER, 1)[1]
    block = re.match(r"\s*```yaml\n(.*?)\n```\n", after, re.DOTALL)
    assert block, f"no ```yaml block right after {MARKER}"
    return yaml.safe_load(block.group(1))


def test_readme_config_map_is_argocd_cm():
    config_map = readme_config_map()
    assert (config_map["apiVersion"], config_map["kind"]) == ("v1", "ConfigMap")
    assert config_map["metadata"] == {"name": "argocd-cm", "namespace": "argocd"}
    assert sorted(config_map["data"]) == sorted(KEYS)


def test_readme_carries_the_script_for_both_kinds():
    data = readme_config_map()["data"]
    script = SCRIPT.read_text()
    for key in KEYS:
        assert data[key] == script, (
            f"README.md's {key} is not {SCRIPT.relative_to(ROOT)}: copy the file into it")


def test_the_script_reads_what_the_operator_writes():
    """Its condition types and reasons are the operator's own constants."""
    script = SCRIPT.read_text()
    constants = ((ROOT / "src" / "reconcile" / "status.rs").read_text()
                 + (ROOT / "src" / "cluster" / "status.rs").read_text())
    for name, value in (("READY", "Ready"), ("SYNCED", "Synced"), ("PENDING_REASON", "Pending")):
        assert f'pub const {name}: &str = "{value}";' in constants, name
        assert f'"{value}"' in script, value
    assert "status.observedGeneration" in script and "obj.metadata.generation" in script
    # Argo CD's statuses, and a table returned on every path.
    assert set(re.findall(r'status = "(\w+)"', script)) == {"Progressing", "Healthy", "Degraded"}
    assert script.rstrip().endswith("return hs")
