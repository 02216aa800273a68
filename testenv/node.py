"""The test environment's node: containerd and runc (Debian's), the kubelet
and the kube-scheduler (built from the same Kubernetes module as the API
server), all on loopback. Started by env.py with `--components kube,aws,node`.

How it fits this machine (see ../shared/design/testenv.md):
- containerd 1.6 from Debian: Kubernetes 1.35 is the last release that
  supports containerd 1.x, and this kubelet's CRI v1 is what 1.6 serves, so
  nothing newer is built. Each environment runs its own containerd, with its
  root, state and socket in the environment's directory.
- cgroups v1 with the cgroupfs driver (no systemd runs): the kubelet config
  sets `failCgroupV1: false`, and the environment's Pods live under a cgroup
  of its own (`cgroupRoot`), so that environments do not share one.
- No image can be pulled: the sandbox (pause) and workload (busybox) images
  are built by deploy/image/build.py and imported, with any archives passed
  with --image (the operator's).
- Pods use the host network. The node's only address is the InternalIP
  127.0.0.1: the kubelet runs with `--cloud-provider=external`, and the
  environment does what a cloud controller manager does — it sets the
  node's addresses and removes the `uninitialized` taint (the kubelet itself
  refuses a loopback node IP). So the API server reaches the kubelet on
  127.0.0.1, probes of host-network Pods go to 127.0.0.1, and the Pods' status
  says hostIP 127.0.0.1.
- Root here lacks CAP_SYS_RESOURCE: containerd keeps OOM scores at least
  its own (`restrict_oom_score_adj`), as for rootless runtimes.
- Stopping (`Node.clean_up`, once containerd has stopped) kills the
  containers' shims and processes, which outlive containerd by design,
  unmounts the kubelet's mounts and removes the environment's cgroups in
  every hierarchy (v2's `unified` too, where runc makes its own). A
  supervisor killed with SIGKILL cannot do this: its containers stay until
  killed by hand (`pkill -f <its work directory>`).
- The runtime must report a network for the node to be Ready: a CNI config
  with the loopback plugin only. Pods that do not use the host network get
  no address: the tests use none.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

TESTENV_DIR = Path(__file__).resolve().parent
IMAGE_BUILDER = TESTENV_DIR.parent / "deploy" / "image" / "build.py"
CNI_BIN_DIR = Path("/usr/lib/cni")
PAUSE_IMAGE = "ssm-operator.local/pause:1"
WORKLOAD_IMAGE = "ssm-operator.local/busybox:1"
CGROUP_ROOT = Path("/sys/fs/cgroup")
UNINITIALIZED_TAINT = "node.cloudprovider.kubernetes.io/uninitialized"
# How often the kubelet syncs each Pod: with the Watch strategy a rotated
# Secret reaches its mounted files at the next sync (default 1 min).
SYNC_FREQUENCY = "5s"


def missing_prerequisites() -> list[str]:
    """What the node needs from Debian: said up front, not as a crash."""
    needed = {
        "containerd": "containerd", "ctr": "containerd", "runc": "runc",
        "containerd-shim-runc-v2": "containerd",
    }
    missing = [f"{tool} (Debian package {package})" for tool, package in needed.items()
               if not any(os.access(Path(d) / tool, os.X_OK) for d in os.environ["PATH"].split(":"))]
    if not (CNI_BIN_DIR / "loopback").exists():
        missing.append(f"{CNI_BIN_DIR}/loopback (Debian package containernetworking-plugins)")
    if not Path("/usr/bin/busybox").exists():
        missing.append("/usr/bin/busybox (Debian package busybox-static)")
    if os.geteuid() != 0:
        missing.append("root: the kubelet and containerd run as root")
    return missing


class Node:
    """The node's files and its cgroup; its processes are env.py Components."""

    def __init__(self, workdir: Path, bin_dir: Path) -> None:
        self.dir = workdir / "node"
        self.bin_dir = bin_dir
        self.socket = self.dir / "containerd" / "containerd.sock"
        self.kubelet_root = self.dir / "kubelet"
        # One cgroup per environment, under which the kubelet puts every Pod.
        self.cgroup = f"/ssm-operator-testenv-{secrets.token_hex(4)}"

    # --- containerd --------------------------------------------------------

    def containerd_config(self, stream_port: int) -> Path:
        state = self.dir / "containerd"
        cni_conf = self.dir / "cni"
        cni_conf.mkdir(parents=True, exist_ok=True)
        (cni_conf / "10-loopback.conflist").write_text(json.dumps({
            "cniVersion": "0.4.0", "name": "loopback-only", "plugins": [{"type": "loopback"}]}))
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = f"""version = 2
root = "{state}/root"
state = "{state}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{state}/opt"
[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "{stream_port}"
  enable_selinux = false
  # Root here lacks CAP_SYS_RESOURCE, so no process may lower its OOM score
  # (the sandbox's default is -998): keep scores at least the runtime's own.
  restrict_oom_score_adj = true
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{cni_conf}"
"""
        path = state / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config)
        return path

    def containerd_argv(self, ports: list[int]) -> list[str]:
        return ["containerd", "--config", str(self.containerd_config(ports[0]))]

    def ctr(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ctr", "--address", str(self.socket), "--namespace", "k8s.io",
                               *args], capture_output=True, text=True, timeout=120)

    def containerd_ready(self) -> bool:
        return self.socket.exists() and self.ctr("version").returncode == 0

    def import_images(self, archives: list[Path]) -> None:
        """The sandbox and workload images, then the archives given."""
        images = self.dir / "images"
        built = []
        for kind, reference in (("pause", PAUSE_IMAGE), ("busybox", WORKLOAD_IMAGE)):
            archive = images / f"{kind}.oci.tar"
            subprocess.run([sys.executable, str(IMAGE_BUILDER), kind, "--out", str(archive),
                            "--tag", reference.rsplit(":", 1)[1]],
                           check=True, capture_output=True, text=True)
            built.append(archive)
        for archive in [*built, *archives]:
            if not archive.exists():
                raise FileNotFoundError(f"{archive} is missing: `make image` builds the "
                                        "operator's image")
            imported = self.ctr("images", "import", str(archive))
            if imported.returncode != 0:
                raise RuntimeError(f"ctr images import {archive} failed: {imported.stderr.strip()}")

    # --- kubelet -----------------------------------------------------------

    def make_cgroup(self) -> None:
        """The cgroup the kubelet's cgroupRoot names must exist in every
        hierarchy; cpuset's needs its parent's CPUs and memory nodes."""
        for hierarchy in self._hierarchies():
            if hierarchy.name == "unified":  # cgroup v2's: runc makes its own
                continue
            path = hierarchy / self.cgroup.lstrip("/")
            path.mkdir(exist_ok=True)
            if hierarchy.name == "cpuset":
                for knob in ("cpuset.cpus", "cpuset.mems"):
                    (path / knob).write_text((hierarchy / knob).read_text())

    def kubelet_config(self, ports: list[int], ca_file: Path) -> Path:
        port, healthz_port = ports
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": "127.0.0.1",
            "port": port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": healthz_port,
            # Only the API server (a certificate of the environment's CA) talks
            # to the kubelet.
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False},
                               "x509": {"clientCAFile": str(ca_file)}},
            "authorization": {"mode": "AlwaysAllow"},
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup,
            # This machine mounts cgroups v1; Kubernetes >= 1.35 refuses them
            # unless told.
            "failCgroupV1": False,
            "failSwapOn": False,
            "syncFrequency": SYNC_FREQUENCY,
            "configMapAndSecretChangeDetectionStrategy": "Watch",
            # No cluster DNS runs: Pods that would use it ask loopback, so
            # that no lookup leaves the machine.
            "clusterDNS": ["127.0.0.1"],
            "clusterDomain": "cluster.local",
            # The disk is shared with everything else on the machine: evict
            # nothing and collect no image (the imported ones cannot come back).
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
            "maxPods": 30,
            "staticPodPath": "",
            # The containers' logs stay with the environment's other logs.
            "podLogsDir": str(self.dir / "pod-logs"),
            "shutdownGracePeriod": "0s",
            "kubeAPIQPS": 50,
            "kubeAPIBurst": 100,
        }
        path = self.dir / "kubelet.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def kubelet_argv(self, kubeconfig: Path, ca_file: Path, node_name: str,
                     ports: list[int]) -> list[str]:
        return [
            str(self.bin_dir / "kubelet"),
            f"--config={self.kubelet_config(ports, ca_file)}",
            f"--kubeconfig={kubeconfig}",
            f"--root-dir={self.kubelet_root}",
            f"--cert-dir={self.dir / 'kubelet-pki'}",
            f"--hostname-override={node_name}",
            # The environment sets the node's addresses (see the docstring).
            "--cloud-provider=external",
        ]

    # --- stopping ------------------------------------------------------------

    def clean_up(self) -> None:
        """After the kubelet and containerd stopped: the containers' shims
        and processes (which outlive containerd by design), the kubelet's
        mounts, and the environment's cgroups."""
        socket = str(self.socket)
        for pid in _pids():
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                cgroups = Path(f"/proc/{pid}/cgroup").read_text()
                if socket in cmdline or self.cgroup + "/" in cgroups:
                    os.kill(pid, signal.SIGKILL)
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for mount in reversed(mounts):
            mount = mount.replace("\\040", " ")
            if mount.startswith(str(self.dir) + "/"):
                subprocess.run(["umount", "--lazy", mount], capture_output=True)
        deadline = time.monotonic() + 5
        for hierarchy in self._hierarchies():
            top = hierarchy / self.cgroup.lstrip("/")
            if not top.exists():
                continue
            for path in sorted((p for p in top.rglob("*") if p.is_dir()),
                               key=lambda p: len(p.parts), reverse=True) + [top]:
                while True:  # a killed process leaves its cgroup a moment later
                    try:
                        path.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            break
                        time.sleep(0.05)
        # The runtime's state (images, snapshots, the Pods' volumes) is the
        # bulk of a run, about 70 MB; the Pods' logs stay for reading. Not
        # while anything is still mounted below it: a hostPath volume's
        # bind mount would take the host's files with it.
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        if not any(mount.startswith(str(self.dir) + "/") for mount in mounts):
            for state in ("containerd", "kubelet", "images"):
                shutil.rmtree(self.dir / state, ignore_errors=True)

    @staticmethod
    def _hierarchies() -> list[Path]:
        """Every mounted hierarchy, cgroup v2's (`unified`, in hybrid mode) too."""
        return [path for path in CGROUP_ROOT.iterdir()
                if path.is_dir() and (path / "cgroup.procs").exists()]


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


# --- what a cloud controller manager would do ----------------------------------

def _request(context: ssl.SSLContext, method: str, url: str, body: dict | list | None = None,
             content_type: str = "application/json") -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": content_type})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=context))
    with opener.open(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def initialize(apiserver: str, context: ssl.SSLContext, node_name: str) -> bool:
    """Sets the registered node's address to 127.0.0.1 and removes the
    `uninitialized` taint; False while the node is not registered yet."""
    url = f"{apiserver}/api/v1/nodes/{node_name}"
    try:
        node = _request(context, "GET", url)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise
    _request(context, "PATCH", url + "/status",
             {"status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}},
             "application/merge-patch+json")
    taints = [taint for taint in node.get("spec", {}).get("taints") or []
              if taint["key"] != UNINITIALIZED_TAINT]
    _request(context, "PATCH", url, {"spec": {"taints": taints or None}},
             "application/merge-patch+json")
    return True


def is_ready(apiserver: str, context: ssl.SSLContext, node_name: str) -> bool:
    """Ready, addressed, untainted by the cloud provider: Pods can run."""
    try:
        node = _request(context, "GET", f"{apiserver}/api/v1/nodes/{node_name}")
    except (urllib.error.URLError, OSError):
        return False
    status = node.get("status", {})
    ready = any(c["type"] == "Ready" and c["status"] == "True"
                for c in status.get("conditions") or [])
    addressed = {"type": "InternalIP", "address": "127.0.0.1"} in (status.get("addresses") or [])
    tainted = any(taint["key"] == UNINITIALIZED_TAINT
                  for taint in node.get("spec", {}).get("taints") or [])
    return ready and addressed and not tainted
