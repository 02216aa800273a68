#!/usr/bin/env python3
"""Builds container images as OCI archives, without a container engine.

    build.py operator --binary PATH --out ARCHIVE [--tag TAG]
    build.py busybox --out ARCHIVE [--tag TAG]
    build.py pause --out ARCHIVE [--tag TAG]

`operator` is the image the Dockerfile's final stage makes, from a static
release binary built outside it: the binary at /ssm-operator, the files of
the distroless static base that the operator uses (CA certificates, the
`nonroot` user 65532 in /etc/passwd and /etc/group, /tmp, /home/nonroot),
the same labels, user, entrypoint and command. `deploy/tests/test_image.py`
checks that the two agree. `busybox` is a workload image made of Debian's
busybox-static (/bin/busybox and its applets as links), and `pause` the
sandbox image of the test node's Pods (busybox sleeping, as the kubelet only
needs a process that holds the Pod's namespaces).

An archive is an OCI image layout in one tar (index.json, oci-layout,
blobs/sha256/…) with one uncompressed layer, as `ctr images import` reads it;
its index names the image `ssm-operator.local/<name>:<tag>` in the
annotations containerd reads (`io.containerd.image.name`) and the OCI
defines (`org.opencontainers.image.ref.name`). Builds are reproducible:
every entry has mtime 0 and sorted order, so the same inputs give the same
digests. Only the Python standard library is used.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

REGISTRY = "ssm-operator.local"
CA_CERTIFICATES = Path("/etc/ssl/certs/ca-certificates.crt")
BUSYBOX = Path("/usr/bin/busybox")
NONROOT = 65532
PT_INTERP = 3

# The Dockerfile's final stage: keep in step (deploy/tests/test_image.py
# compares them).
OPERATOR_LABELS = {
    "org.opencontainers.image.title": "ssm-operator",
    "org.opencontainers.image.description":
        "Keeps Kubernetes Secrets in sync with AWS Systems Manager Parameter Store",
    "org.opencontainers.image.licenses": "Apache-2.0",
}

# What gcr.io/distroless/static-debian12:nonroot holds in /etc for its users.
PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    f"nonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = f"root:x:0:\nnobody:x:65534:\nnonroot:x:{NONROOT}:\ntty:x:5:\nstaff:x:50:\n"


@dataclass
class Layer:
    """The files of the one layer, added in any order, written sorted."""

    entries: dict[str, tuple[tarfile.TarInfo, bytes | None]] = field(default_factory=dict)

    def _info(self, path: str, kind: bytes, mode: int, uid: int = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(path.lstrip("/"))
        info.type, info.mode, info.uid, info.gid = kind, mode, uid, uid
        info.mtime, info.uname, info.gname = 0, "", ""
        return info

    def directory(self, path: str, mode: int = 0o755, uid: int = 0) -> None:
        parent = os.path.dirname(path.rstrip("/"))
        if parent not in ("", "/") and parent.lstrip("/") not in self.entries:
            self.directory(parent)
        self.entries[path.lstrip("/")] = (self._info(path, tarfile.DIRTYPE, mode, uid), None)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.directory(os.path.dirname(path))
        info = self._info(path, tarfile.REGTYPE, mode)
        info.size = len(data)
        self.entries[path.lstrip("/")] = (info, data)

    def symlink(self, path: str, target: str) -> None:
        self.directory(os.path.dirname(path))
        info = self._info(path, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self.entries[path.lstrip("/")] = (info, None)

    def tar(self) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for name in sorted(self.entries):
                info, data = self.entries[name]
                archive.addfile(info, io.BytesIO(data) if data is not None else None)
        return out.getvalue()


def _blob(blobs: dict[str, bytes], data: bytes, media_type: str) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def _json(value: dict) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def write_archive(out: Path, name: str, tag: str, layer: Layer, config: dict) -> str:
    """Writes the OCI archive; returns the image's manifest digest."""
    blobs: dict[str, bytes] = {}
    layer_tar = layer.tar()
    layer_descriptor = _blob(blobs, layer_tar, "application/vnd.oci.image.layer.v1.tar")
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers",
                   "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
        "history": [{"created_by": "deploy/image/build.py " + name}],
    }
    config_descriptor = _blob(blobs, _json(image_config), "application/vnd.oci.image.config.v1+json")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config_descriptor, "layers": [layer_descriptor]}
    manifest_descriptor = _blob(blobs, _json(manifest), "application/vnd.oci.image.manifest.v1+json")
    reference = f"{REGISTRY}/{name}:{tag}"
    manifest_descriptor["annotations"] = {
        "io.containerd.image.name": reference,
        "org.opencontainers.image.ref.name": tag,
    }
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [manifest_descriptor]}

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, mode="w", format=tarfile.PAX_FORMAT) as archive:
        def add(path: str, data: bytes) -> None:
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))

        add("oci-layout", _json({"imageLayoutVersion": "1.0.0"}))
        add("index.json", _json(index))
        for digest in sorted(blobs):
            add(f"blobs/sha256/{digest.removeprefix('sha256:')}", blobs[digest])
    partial.replace(out)
    return manifest_descriptor["digest"]


def _check_static(binary: Path) -> None:
    """The image has no libc: a binary that names a program interpreter
    (the dynamic loader, ELF program header PT_INTERP) would not start."""
    data = binary.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        sys.exit(f"build.py: {binary} is not a 64-bit ELF binary")
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        if struct.unpack_from("<I", data, phoff + i * phentsize)[0] == PT_INTERP:
            sys.exit(f"build.py: {binary} is linked dynamically; build it with "
                     "RUSTFLAGS='-C target-feature=+crt-static' and --target (see `make image`)")


def operator_image(binary: Path) -> tuple[Layer, dict]:
    _check_static(binary)
    layer = Layer()
    layer.file("/etc/passwd", PASSWD.encode())
    layer.file("/etc/group", GROUP.encode())
    layer.file("/etc/nsswitch.conf", b"passwd: files\ngroup: files\nhosts: files dns\n")
    layer.file(str(CA_CERTIFICATES), CA_CERTIFICATES.read_bytes())
    layer.directory("/tmp", mode=0o1777)
    layer.directory("/home/nonroot", mode=0o700, uid=NONROOT)
    layer.file("/ssm-operator", binary.read_bytes(), mode=0o755)
    config = {
        "User": f"{NONROOT}:{NONROOT}",
        "Entrypoint": ["/ssm-operator"],
        "Cmd": ["run"],
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
        "WorkingDir": "/home/nonroot",
        "Labels": OPERATOR_LABELS,
    }
    return layer, config


def busybox_layer() -> Layer:
    if not BUSYBOX.exists():
        sys.exit(f"build.py: {BUSYBOX} is missing: install Debian's busybox-static")
    layer = Layer()
    layer.file("/bin/busybox", BUSYBOX.read_bytes(), mode=0o755)
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            layer.symlink(f"/bin/{applet}", "busybox")
    layer.file("/etc/passwd", PASSWD.encode())
    layer.file("/etc/group", GROUP.encode())
    layer.directory("/tmp", mode=0o1777)
    return layer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image", choices=["operator", "busybox", "pause"])
    parser.add_argument("--out", type=Path, required=True, help="the OCI archive to write")
    parser.add_argument("--tag", default="dev")
    parser.add_argument("--binary", type=Path, help="the operator's static binary (operator)")
    args = parser.parse_args()

    if args.image == "operator":
        if args.binary is None:
            parser.error("operator needs --binary")
        layer, config = operator_image(args.binary)
        name = "ssm-operator"
    elif args.image == "busybox":
        layer, name = busybox_layer(), "busybox"
        config = {"Cmd": ["/bin/sh"],
                  "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    else:
        layer, name = busybox_layer(), "pause"
        # The sandbox's only process: it holds the namespaces and is killed
        # with the sandbox.
        config = {"Entrypoint": ["/bin/sleep", "2147483647"], "User": "65535:65535"}
    digest = write_archive(args.out, name, args.tag, layer, config)
    print(f"{REGISTRY}/{name}:{args.tag} {digest} {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
