"""Starts the test environment of ssm-operator and keeps it up until told to stop.

    python testenv/env.py --workdir DIR [--components kube,aws[,node]] [--image ARCHIVE]
                          [--ignore-stdin]

Run it with the venv python that testenv/setup.sh prepares. It starts, on free
loopback ports, a real control plane (etcd, kube-apiserver,
kube-controller-manager) and the AWS emulator (testenv/aws/server.py), with a
fresh PKI and service-account signing key in DIR; with `node`, also a node
that runs Pods (testenv/node.py: containerd, kubelet, kube-scheduler). When everything answers it
prints one JSON line on stdout:

    {"kubeconfig": ..., "apiserver": "https://127.0.0.1:P", "ca_file": ...,
     "audit_log": ..., "aws_endpoint": "http://127.0.0.1:P", "oidc_issuer": ...,
     "sa_public_key": ..., "workdir": ...}

or, if something fails, {"error": "..."} and exits 1. It then stays until its
stdin reaches EOF (the parent test process finished or died; --ignore-stdin
turns that off for scripts) or it gets SIGTERM/SIGINT/SIGHUP, and stops every
process it started; the kernel stops them too if the supervisor is killed.
Logs of each component are in DIR/logs/.

The API server's audit log (DIR/logs/audit.log, the "audit_log" above, or
the file named by --audit-log) holds one JSON line (an audit.k8s.io/v1 Event,
level Metadata: who, verb, objectRef, responseStatus; never a body) per write
request (create, update, patch, delete, deletecollection), written before the
response is sent, so that a test can count the writes of the operator as soon
as a request returns; and one per read (get, list, watch) of a ServiceAccount
outside kube-system (the operator's, run as a Pod would be), so that a check
can compare the verbs the operator used with those the chart grants. Reads of
people (the admin) and of kube-system's controllers are not logged.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import datetime
import ipaddress
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

try:
    import node as node_module
    import yaml
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError as missing:  # the caller reads stdout only: say it there
    if __name__ == "__main__":
        print(json.dumps({"error": f"{missing}: run env.py with the venv python that "
                                   "testenv/setup.sh prints (SSM_OPERATOR_TESTENV_PYTHON)"}))
        sys.exit(1)
    raise

TESTENV_DIR = Path(__file__).resolve().parent
AWS_SERVER = TESTENV_DIR / "aws" / "server.py"

SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/12"
# The one node's name (each environment has its own API server, so the name
# need not differ between environments).
NODE_NAME = "ssm-operator-node"
# What EKS puts in the `aud` of the tokens the API server itself accepts;
# tokens for AWS (aud sts.amazonaws.com) are requested explicitly, as on EKS.
API_AUDIENCE = "https://kubernetes.default.svc"
STOP_GRACE_SECONDS = 5
PORT_RACE_RETRIES = 3
LOG_TAIL_LINES = 20
START_MARKER = "--- testenv: start #"
ADDRESS_IN_USE = re.compile(r"address already in use|errno 98", re.IGNORECASE)
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    # One event per request, once it is answered (its status known).
    "omitStages": ["RequestReceived", "ResponseStarted", "Panic"],
    # The first rule a request matches decides; one no rule matches is not
    # logged.
    "rules": [
        # Every write, whoever makes it.
        {"level": "Metadata",
         "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
        # The controllers of kube-system read all the time: their reads would
        # drown the rest.
        {"level": "None", "userGroups": ["system:serviceaccounts:kube-system"]},
        # Reads of the other ServiceAccounts: the operator's, whose verbs the
        # RBAC check compares with the chart's (deploy/tests/test_rbac_used.py).
        {"level": "Metadata", "userGroups": ["system:serviceaccounts"],
         "verbs": ["get", "list", "watch"]},
    ],
}


class StartupError(Exception):
    """A component could not be started; the message says which and why."""


class StopRequested(Exception):
    """stdin reached EOF or a stop signal arrived."""


# --- stopping cleanly ------------------------------------------------------

class StopSignals:
    """Turns stdin EOF and SIGTERM/SIGINT/SIGHUP into one `wait` that can be
    used as the pause of every polling loop, so the supervisor reacts at once
    whether it is starting up or idle."""

    def __init__(self, watch_stdin: bool) -> None:
        self.watch_stdin = watch_stdin
        self.received: str | None = None
        self._wakeup_read, wakeup_write = os.pipe()
        os.set_blocking(self._wakeup_read, False)
        os.set_blocking(wakeup_write, False)
        signal.set_wakeup_fd(wakeup_write)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame) -> None:
        self.received = signal.Signals(signum).name

    def wait(self, seconds: float) -> None:
        """Sleeps up to `seconds`; raises StopRequested if told to stop."""
        readable = [self._wakeup_read] + ([sys.stdin.fileno()] if self.watch_stdin else [])
        ready, _, _ = select.select(readable, [], [], seconds)
        if self.watch_stdin and sys.stdin.fileno() in ready and not os.read(sys.stdin.fileno(), 65536):
            raise StopRequested("stdin reached EOF")
        if self._wakeup_read in ready:
            os.read(self._wakeup_read, 512)
        if self.received:
            raise StopRequested(self.received)


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with(supervisor_pid: int) -> Callable[[], None]:
    """Runs in each child before exec: the kernel kills the child if the
    supervisor dies without cleaning up (SIGKILL, OOM), so no test run leaves
    a control plane behind."""

    def before_exec() -> None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != supervisor_pid:  # the supervisor died before prctl
            os._exit(1)

    return before_exec


# --- processes -------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening_socket_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                columns = row.split()
                local_port = int(columns[1].rsplit(":", 1)[1], 16)
                if columns[3] == "0A" and local_port == port:  # 0A = LISTEN
                    inodes.add(columns[9])
    return inodes


def process_group_listens_on(pgid: int, port: int) -> bool:
    """True if a process of the group holds the listening socket of `port`.

    Guards against a port race: a health check answered on our port may come
    from another test environment's server that won the port."""
    wanted = {f"socket:[{inode}]" for inode in listening_socket_inodes(port)}
    if not wanted:
        return False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != pgid:
                continue
            fd_dir = f"/proc/{entry}/fd"
            if any(os.readlink(f"{fd_dir}/{fd}") in wanted for fd in os.listdir(fd_dir)):
                return True
        except OSError:  # the process exited meanwhile
            continue
    return False


def log_tail(path: Path) -> str:
    """The last lines that the latest start of a component wrote."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    _, marker, after = text.rpartition(START_MARKER)
    latest_start = after.partition("\n")[2] if marker else text
    return "\n".join(line[:1000] for line in latest_start.splitlines()[-LOG_TAIL_LINES:])


@dataclass
class Component:
    """One server process: how to start it on given ports and how to tell
    that it is ready. Restarted on fresh ports if it loses a port race."""

    name: str
    port_count: int
    argv: Callable[[list[int]], list[str]]
    is_ready: Callable[[list[int]], bool]
    log_path: Path
    ports: list[int] = field(default_factory=list)
    process: subprocess.Popen | None = None
    attempts: int = 0
    # Runs once the process group is gone (the node's clean-up).
    on_stop: Callable[[], None] | None = None

    def start(self) -> None:
        self.ports = [free_port() for _ in range(self.port_count)]
        self.attempts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"{START_MARKER}{self.attempts} on ports {self.ports}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.argv(self.ports),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},  # logs as they happen
                # Own process group: stopping the group also stops anything
                # the component spawned, and terminal signals do not reach it.
                start_new_session=True,
                preexec_fn=_die_with(os.getpid()),
            )

    def failure(self, what: str) -> StartupError:
        return StartupError(
            f"{self.name} {what}; last {LOG_TAIL_LINES} lines of {self.log_path}:\n"
            f"{log_tail(self.log_path)}"
        )

    def wait_ready(self, stop: StopSignals, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            exit_code = self.process.poll()
            if exit_code is not None:
                lost_port_race = ADDRESS_IN_USE.search(log_tail(self.log_path))
                if lost_port_race and self.attempts < PORT_RACE_RETRIES:
                    self.start()
                    deadline = time.monotonic() + timeout
                    continue
                raise self.failure(f"exited with code {exit_code} while starting")
            if self.is_ready(self.ports) and process_group_listens_on(self.process.pid, self.ports[0]):
                return
            if time.monotonic() > deadline:
                raise self.failure(f"was not ready within {timeout:.0f} s")
            stop.wait(0.1)


def stop_all(components: list[Component]) -> None:
    """Stops the components in reverse start order (the API server before
    its etcd): SIGTERM to the process group, SIGKILL to whatever is left of
    it after the grace period, then reap."""
    for component in reversed(components):
        if component.process is None:
            continue
        _signal_group(component.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while _group_alive(component.process) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _group_alive(component.process):
            _signal_group(component.process.pid, signal.SIGKILL)
        component.process.wait()
        if component.on_stop is not None:
            component.on_stop()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _group_alive(process: subprocess.Popen) -> bool:
    process.poll()  # reap the leader, so a zombie does not count as alive
    try:
        os.killpg(process.pid, 0)
        return True
    except ProcessLookupError:
        return False


# --- certificates and keys ---------------------------------------------------

def _write_private_key(path: Path, key) -> None:
    path.write_bytes(b"")
    path.chmod(0o600)
    path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,  # the form every TLS stack reads
        serialization.NoEncryption(),
    ))


def make_service_account_keys(pki: Path) -> tuple[Path, Path]:
    """RSA like EKS: the API server signs tokens RS256; the AWS emulator
    verifies them with the public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_path, public_path = pki / "service-account.key", pki / "service-account.pub"
    _write_private_key(private_path, key)
    public_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path


@dataclass
class Pki:
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    controller_manager_cert: Path
    controller_manager_key: Path
    scheduler_cert: Path
    scheduler_key: Path
    # The node's kubelet (Node authorizer: system:node:<name> in system:nodes)
    # and the API server's client certificate for the kubelet (exec, logs).
    kubelet_cert: Path
    kubelet_key: Path
    apiserver_kubelet_client_cert: Path
    apiserver_kubelet_client_key: Path


def make_pki(pki: Path) -> Pki:
    """A throwaway CA and the certificates signed by it. ECDSA P-256 keys:
    generated in microseconds, accepted by Go, rustls and OpenSSL."""
    now = datetime.datetime.now(datetime.UTC)
    not_before, not_after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=365)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ssm-operator-testenv-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def issue(name: str, subject: list[x509.NameAttribute], usage, sans=None) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject)).issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=False, crl_sign=False,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert_path, key_path = pki / f"{name}.crt", pki / f"{name}.key"
        cert_path.write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        _write_private_key(key_path, key)
        return cert_path, key_path

    ca_cert_path, ca_key_path = pki / "ca.crt", pki / "ca.key"
    ca_cert_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_private_key(ca_key_path, ca_key)

    cn = lambda value: x509.NameAttribute(NameOID.COMMON_NAME, value)  # noqa: E731
    # One serving certificate for both the API server and the controller
    # manager: both listen on 127.0.0.1 only.
    serving = issue("serving", [cn("kube-apiserver")], ExtendedKeyUsageOID.SERVER_AUTH, [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes.default.svc"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ])
    admin = issue("admin", [cn("ssm-operator-admin"),
                            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters")],
                  ExtendedKeyUsageOID.CLIENT_AUTH)
    controller_manager = issue("kube-controller-manager", [cn("system:kube-controller-manager")],
                               ExtendedKeyUsageOID.CLIENT_AUTH)
    scheduler = issue("kube-scheduler", [cn("system:kube-scheduler")],
                      ExtendedKeyUsageOID.CLIENT_AUTH)
    kubelet = issue("kubelet", [cn(f"system:node:{NODE_NAME}"),
                                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes")],
                    ExtendedKeyUsageOID.CLIENT_AUTH)
    apiserver_kubelet_client = issue("apiserver-kubelet-client",
                                     [cn("kube-apiserver-kubelet-client")],
                                     ExtendedKeyUsageOID.CLIENT_AUTH)
    return Pki(ca_cert_path, ca_key_path, *serving, *admin, *controller_manager, *scheduler,
               *kubelet, *apiserver_kubelet_client)


def write_kubeconfig(path: Path, server: str, pki: Pki, user: str, cert: Path, key: Path) -> None:
    """Certificates embedded, so the file works wherever it is copied."""
    def b64(file: Path) -> str:
        return base64.b64encode(file.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "ssm-operator-testenv", "cluster": {
            "server": server, "certificate-authority-data": b64(pki.ca_cert)}}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
        "contexts": [{"name": "ssm-operator-testenv", "context": {
            "cluster": "ssm-operator-testenv", "user": user}}],
        "current-context": "ssm-operator-testenv",
    }
    path.write_bytes(b"")
    path.chmod(0o600)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


# --- health probes -----------------------------------------------------------

def http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        handlers = [urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)]
        with urllib.request.build_opener(*handlers).open(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def tls_client(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    return context


# --- the environment -----------------------------------------------------------

def etcd_argv(bin_dir: Path, data_dir: Path, ports: list[int]) -> list[str]:
    client_port, peer_port = ports
    return [str(bin_dir / "etcd"), "--data-dir", str(data_dir),
            "--listen-client-url", f"http://127.0.0.1:{client_port}",
            "--listen-peer-url", f"http://127.0.0.1:{peer_port}"]


def write_audit_policy(workdir: Path) -> Path:
    path = workdir / "audit-policy.yaml"
    path.write_text(yaml.safe_dump(AUDIT_POLICY, sort_keys=False))
    return path


def audit_argv(policy: Path, log: Path) -> list[str]:
    return [
        f"--audit-policy-file={policy}",
        f"--audit-log-path={log}",
        "--audit-log-format=json",  # one Event per line
        # Each event is written in the request's own path, before the
        # response goes out: no buffering delays it past the request.
        "--audit-log-mode=blocking",
        # Rotation cannot be switched off (0 means the default, 100 MB); a
        # limit no test run reaches keeps every event of a run in one file.
        "--audit-log-maxsize=10240",
    ]


def apiserver_argv(bin_dir: Path, etcd_port: int, port: int, pki: Pki, sa_private_key: Path,
                   sa_public_key: Path, issuer: str, audit: list[str]) -> list[str]:
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_cert}",
        # Node: the kubelet reads only what its Pods use, as on EKS.
        "--authorization-mode=Node,RBAC",
        f"--kubelet-client-certificate={pki.apiserver_kubelet_client_cert}",
        f"--kubelet-client-key={pki.apiserver_kubelet_client_key}",
        # The node's only address is the InternalIP 127.0.0.1 (testenv/node.py).
        "--kubelet-preferred-address-types=InternalIP",
        f"--service-account-issuer={issuer}",
        f"--service-account-signing-key-file={sa_private_key}",
        f"--service-account-key-file={sa_public_key}",
        f"--api-audiences={API_AUDIENCE}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        # No nodes run the `kubernetes` Service's endpoints.
        "--endpoint-reconciler-type=none",
        *audit,
    ]


def controller_manager_argv(bin_dir: Path, kubeconfig: Path, port: int, pki: Pki,
                            sa_private_key: Path) -> list[str]:
    return [
        str(bin_dir / "kube-controller-manager"),
        f"--kubeconfig={kubeconfig}",
        f"--service-account-private-key-file={sa_private_key}",
        f"--root-ca-file={pki.ca_cert}",
        "--use-service-account-credentials=true",
        "--leader-elect=false",
        # With per-controller credentials it makes ~120 requests at start (a
        # ServiceAccount and a token per controller); the default client
        # limit of 20 requests/s alone would cost 5 s.
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
    ]


def aws_emulator_argv(port: int, sa_public_key: Path) -> list[str]:
    return [sys.executable, str(AWS_SERVER), "--port", str(port),
            "--service-account-public-key", str(sa_public_key)]


def control_plane_bin_dir(floor: bool = False) -> Path:
    """Where testenv/controlplane/build.sh puts the binaries (`build.sh floor`
    the API server of the chart's kubeVersion floor)."""
    variable = "SSM_OPERATOR_TESTENV_FLOOR_BIN" if floor else "SSM_OPERATOR_TESTENV_BIN"
    if os.environ.get(variable):
        return Path(os.environ[variable])
    module = TESTENV_DIR / "controlplane" / ("floor" if floor else "")
    go_mod = (module / "go.mod").read_text()
    version = re.search(r"k8s\.io/kubernetes (v\S+)", go_mod).group(1)
    cache = os.environ.get("SSM_OPERATOR_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ssm-operator")
    return Path(cache) / "testenv" / version / "bin"


def check_prerequisites(want_kube: bool, want_aws: bool, bin_dir: Path,
                        apiserver_dir: Path, node_binaries: list[str]) -> None:
    if want_kube:
        binaries = [bin_dir / "etcd", apiserver_dir / "kube-apiserver",
                    *(bin_dir / name for name in node_binaries)]
        if apiserver_dir == bin_dir:
            binaries.append(bin_dir / "kube-controller-manager")
        missing = [str(binary) for binary in binaries if not os.access(binary, os.X_OK)]
        if missing:
            raise StartupError(f"{', '.join(missing)} not found: run testenv/setup.sh "
                               "(it builds the control plane once, about 10 minutes)")
    if want_aws and not AWS_SERVER.exists():
        raise StartupError(f"{AWS_SERVER} is missing")


def run(workdir: Path, wanted: set[str], stop: StopSignals, components: list[Component],
        audit_log: Path | None = None, floor: bool = False,
        images: list[Path] | None = None) -> dict:
    """Starts the wanted components, in parallel where they do not depend on
    each other, and returns the endpoints once all of them answer. The audit
    log goes to `audit_log` (default: DIR/logs/audit.log). With `floor`, the
    API server is the one of the chart's kubeVersion floor, and no controller
    manager runs: one newer than its API server is outside Kubernetes'
    version skew policy, and what runs there (admission) needs none."""
    want_kube, want_aws, want_node = "kube" in wanted, "aws" in wanted, "node" in wanted
    if want_node and (not want_kube or floor):
        raise StartupError("the node needs the current control plane: --components kube,node "
                           "without --floor")
    if want_node and (missing := node_module.missing_prerequisites()):
        raise StartupError(f"the node needs {', '.join(missing)}; `make testenv` installs the "
                           "Debian packages (testenv/setup.sh)")
    bin_dir = control_plane_bin_dir()
    apiserver_dir = control_plane_bin_dir(floor=True) if floor else bin_dir
    check_prerequisites(want_kube, want_aws, bin_dir, apiserver_dir,
                        ["kube-scheduler", "kubelet"] if want_node else [])

    pki_dir, logs, etcd_data = workdir / "pki", workdir / "logs", workdir / "etcd"
    for directory in (pki_dir, logs):
        directory.mkdir(parents=True, exist_ok=True)
    for old_log in logs.glob("*.log"):
        old_log.unlink()
    shutil.rmtree(etcd_data, ignore_errors=True)  # a new cluster each run

    def start(name: str, port_count: int, argv, is_ready) -> Component:
        component = Component(name, port_count, argv, is_ready, logs / f"{name}.log")
        components.append(component)
        component.start()
        return component

    # etcd needs nothing but ports: it comes up while the keys are made.
    if want_kube:
        etcd = start("etcd", 2, lambda ports: etcd_argv(bin_dir, etcd_data, ports),
                     lambda ports: http_ok(f"http://127.0.0.1:{ports[0]}/health"))
    sa_private_key, sa_public_key = make_service_account_keys(pki_dir)
    if want_aws:
        aws = start("aws", 1, lambda ports: aws_emulator_argv(ports[0], sa_public_key),
                    lambda ports: http_ok(f"http://127.0.0.1:{ports[0]}/_fidelity/health"))
    pki = make_pki(pki_dir)
    as_admin = tls_client(pki)
    issuer = "https://oidc.eks.ap-northeast-1.amazonaws.com/id/" + secrets.token_hex(16).upper()
    endpoints = {
        "kubeconfig": None,
        "apiserver": None,
        "ca_file": str(pki.ca_cert),
        "audit_log": None,
        "aws_endpoint": None,
        "oidc_issuer": issuer,
        "sa_public_key": str(sa_public_key),
        "workdir": str(workdir),
    }

    if want_kube:
        etcd.wait_ready(stop, timeout=20)
        if audit_log is None:
            audit_log = logs / "audit.log"
        audit_log.parent.mkdir(parents=True, exist_ok=True)
        audit_log.unlink(missing_ok=True)  # one environment's requests per file
        audit = audit_argv(write_audit_policy(workdir), audit_log)
        apiserver = start(
            "kube-apiserver", 1,
            lambda ports: apiserver_argv(apiserver_dir, etcd.ports[0], ports[0], pki, sa_private_key,
                                         sa_public_key, issuer, audit),
            lambda ports: http_ok(f"https://127.0.0.1:{ports[0]}/readyz", as_admin))
        apiserver.wait_ready(stop, timeout=60)
        apiserver_url = f"https://127.0.0.1:{apiserver.ports[0]}"
        kubeconfig = workdir / "kubeconfig"
        write_kubeconfig(kubeconfig, apiserver_url, pki, "ssm-operator-admin",
                         pki.admin_cert, pki.admin_key)
        if not floor:
            start_controller_manager(start, bin_dir, workdir, apiserver_url, pki, as_admin,
                                     sa_private_key, stop)
        endpoints.update(kubeconfig=str(kubeconfig), apiserver=apiserver_url,
                         audit_log=str(audit_log))
        if want_node:
            start_node(start, bin_dir, workdir, apiserver_url, pki, as_admin, images or [], stop)
            endpoints["node"] = NODE_NAME

    if want_aws:
        aws.wait_ready(stop, timeout=30)
        endpoints["aws_endpoint"] = f"http://127.0.0.1:{aws.ports[0]}"
    return endpoints


def start_controller_manager(start, bin_dir: Path, workdir: Path, apiserver_url: str, pki: Pki,
                             as_admin: ssl.SSLContext, sa_private_key: Path,
                             stop: StopSignals) -> None:
    kubeconfig = workdir / "kube-controller-manager.kubeconfig"
    write_kubeconfig(kubeconfig, apiserver_url, pki, "system:kube-controller-manager",
                     pki.controller_manager_cert, pki.controller_manager_key)
    controller_manager = start(
        "kube-controller-manager", 1,
        lambda ports: controller_manager_argv(bin_dir, kubeconfig, ports[0], pki,
                                              sa_private_key),
        lambda ports: http_ok(f"https://127.0.0.1:{ports[0]}/healthz", as_admin))
    controller_manager.wait_ready(stop, timeout=30)
    wait_for_default_service_account(apiserver_url, as_admin, controller_manager, stop,
                                     timeout=30)


def start_node(start, bin_dir: Path, workdir: Path, apiserver_url: str, pki: Pki,
               as_admin: ssl.SSLContext, images: list[Path], stop: StopSignals) -> None:
    """containerd, the images, the scheduler and the kubelet; returns once the
    node is Ready at 127.0.0.1 (testenv/node.py)."""
    node = node_module.Node(workdir, bin_dir)
    node.make_cgroup()
    containerd = start("containerd", 1, node.containerd_argv, lambda ports: node.containerd_ready())
    containerd.on_stop = node.clean_up
    containerd.wait_ready(stop, timeout=30)
    try:
        node.import_images(images)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
        raise StartupError(f"importing the node's images failed: {error}") from error

    scheduler_kubeconfig = workdir / "kube-scheduler.kubeconfig"
    write_kubeconfig(scheduler_kubeconfig, apiserver_url, pki, "system:kube-scheduler",
                     pki.scheduler_cert, pki.scheduler_key)
    scheduler = start(
        "kube-scheduler", 1,
        lambda ports: [str(bin_dir / "kube-scheduler"), f"--kubeconfig={scheduler_kubeconfig}",
                       f"--authentication-kubeconfig={scheduler_kubeconfig}",
                       f"--authorization-kubeconfig={scheduler_kubeconfig}",
                       "--leader-elect=false", "--bind-address=127.0.0.1",
                       f"--secure-port={ports[0]}", f"--tls-cert-file={pki.serving_cert}",
                       f"--tls-private-key-file={pki.serving_key}"],
        lambda ports: http_ok(f"https://127.0.0.1:{ports[0]}/healthz", as_admin))

    kubelet_kubeconfig = workdir / "kubelet.kubeconfig"
    write_kubeconfig(kubelet_kubeconfig, apiserver_url, pki, f"system:node:{NODE_NAME}",
                     pki.kubelet_cert, pki.kubelet_key)
    kubelet = start(
        "kubelet", 2,
        lambda ports: node.kubelet_argv(kubelet_kubeconfig, pki.ca_cert, NODE_NAME, ports),
        lambda ports: http_ok(f"http://127.0.0.1:{ports[1]}/healthz"))
    scheduler.wait_ready(stop, timeout=30)
    kubelet.wait_ready(stop, timeout=60)
    deadline = time.monotonic() + 60
    initialized = False
    while not node_module.is_ready(apiserver_url, as_admin, NODE_NAME):
        if not initialized:
            initialized = node_module.initialize(apiserver_url, as_admin, NODE_NAME)
        if kubelet.process.poll() is not None:
            raise kubelet.failure("exited before its node was Ready")
        if time.monotonic() > deadline:
            raise kubelet.failure("did not make its node Ready within 60 s")
        stop.wait(0.2)


def wait_for_default_service_account(apiserver_url: str, as_admin: ssl.SSLContext,
                                     controller_manager: Component,
                                     stop: StopSignals, timeout: float) -> None:
    """The controller manager creates it: proof that its controllers run."""
    url = f"{apiserver_url}/api/v1/namespaces/default/serviceaccounts/default"
    deadline = time.monotonic() + timeout
    while not http_ok(url, as_admin):
        if controller_manager.process.poll() is not None:
            raise controller_manager.failure("exited before creating the default ServiceAccount")
        if time.monotonic() > deadline:
            raise controller_manager.failure(
                f"did not create the default ServiceAccount within {timeout:.0f} s")
        stop.wait(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True,
                        help="where certificates, kubeconfig, etcd data and logs go")
    parser.add_argument("--components", default="kube,aws",
                        type=lambda value: set(value.split(",")),
                        help="comma-separated subset of kube,aws,node (default: kube,aws; "
                             "node: a kubelet, kube-scheduler and containerd, testenv/node.py)")
    parser.add_argument("--audit-log", type=Path,
                        help="where the API server's audit log goes, e.g. to keep it past the "
                             "run (default: DIR/logs/audit.log)")
    parser.add_argument("--floor", action="store_true",
                        help="run the API server of the chart's kubeVersion floor "
                             "(testenv/controlplane/floor), without a controller manager")
    parser.add_argument("--image", type=Path, action="append", default=[],
                        help="an OCI archive to import into the node's runtime (repeatable), "
                             "e.g. the operator's from `make image`")
    parser.add_argument("--ignore-stdin", action="store_true",
                        help="stay up until a signal even if stdin is closed (for scripts and demos)")
    args = parser.parse_args()
    if not args.components or not args.components <= {"kube", "aws", "node"}:
        parser.error("--components takes a comma-separated subset of kube,aws,node")

    if sys.stdin is None and not args.ignore_stdin:
        parser.error("stdin is closed, so its EOF cannot tell when to stop: pass --ignore-stdin")
    stop = StopSignals(watch_stdin=not args.ignore_stdin)
    components: list[Component] = []
    started = time.monotonic()
    try:
        try:
            endpoints = run(args.workdir.resolve(), args.components, stop, components,
                            args.audit_log.resolve() if args.audit_log else None,
                            floor=args.floor, images=[image.resolve() for image in args.image])
        except StartupError as error:
            print(json.dumps({"error": str(error)}), flush=True)
            return 1
        except StopRequested as reason:
            print(json.dumps({"error": f"stopped while starting: {reason}"}), flush=True)
            return 1
        except Exception as error:  # a bug here must still answer in JSON
            print(json.dumps({"error": f"test environment failed: {error!r}"}), flush=True)
            raise
        print(json.dumps(endpoints), flush=True)
        print(f"test environment ready in {time.monotonic() - started:.1f} s", file=sys.stderr)
        try:
            while True:
                stop.wait(3600)
        except StopRequested:
            return 0
    except BrokenPipeError:  # the parent closed our stdout: it is gone
        return 0
    finally:
        stop_all(components)
        # The stopped cluster's data (tens of MB a run) goes; the logs,
        # certificates and kubeconfigs stay for reading a failed run.
        shutil.rmtree(args.workdir.resolve() / "etcd", ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
