"""The operator's image as the test node runs it (`make image`:
deploy/image/build.py from a static release binary) and the image the
Dockerfile builds agree on what the image contains: the final stage's base,
labels, user, entrypoint, command and the binary's path, and the files of
the base that the operator uses (CA certificates, the user 65532, /tmp).

`make test` builds the archive before the tests; run alone:

    make image
    . ~/.cache/ssm-operator/env.sh
    "$SSM_OPERATOR_TESTENV_PYTHON" -m pytest -q -p no:cacheprovider deploy/tests/test_image.py
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
BUILDER = ROOT / "deploy" / "image" / "build.py"
# The base whose files build.py provides; a new base needs build.py's look.
BASE = "gcr.io/distroless/static-debian12:nonroot"
PT_INTERP = 3


def archive_path() -> Path:
    named = os.environ.get("IMAGE_ARCHIVE")
    if named:
        return Path(named)
    cache = os.environ.get("SSM_OPERATOR_CACHE") or os.path.expanduser("~/.cache/ssm-operator")
    return Path(cache) / "images" / "ssm-operator.oci.tar"


def final_stage() -> dict:
    """The Dockerfile's last stage: its FROM and instructions, continuation
    lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.strip().startswith("#")]
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    stage = {"FROM": lines[last_from].split()[1], "LABEL": {}, "COPY": []}
    for line in lines[last_from + 1:]:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "LABEL":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                stage["LABEL"][key] = value
        elif instruction == "COPY":
            stage["COPY"].append([word for word in rest.split() if not word.startswith("--")])
        elif instruction in ("ENTRYPOINT", "CMD"):
            stage[instruction] = json.loads(rest)
        else:
            stage[instruction] = rest
    return stage


def read_image(archive: Path) -> tuple[dict, dict[str, tuple[tarfile.TarInfo, bytes | None]]]:
    """The image config and its one layer's entries, by path."""
    with tarfile.open(archive) as outer:
        def blob(digest: str) -> bytes:
            return outer.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}").read()

        index = json.loads(outer.extractfile("index.json").read())
        [manifest_descriptor] = index["manifests"]
        manifest = json.loads(blob(manifest_descriptor["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        [layer] = manifest["layers"]
        files = {}
        with tarfile.open(fileobj=io.BytesIO(blob(layer["digest"]))) as inner:
            for info in inner.getmembers():
                data = inner.extractfile(info).read() if info.isfile() else None
                files["/" + info.name] = (info, data)
    return config, files


@pytest.fixture(scope="module")
def image():
    archive = archive_path()
    if not archive.exists():
        pytest.fail(f"{archive} is missing: `make image` builds it (`make test` does it first)")
    return read_image(archive)


def test_the_dockerfile_builds_on_the_base_the_local_image_stands_in_for():
    assert final_stage()["FROM"] == BASE, (
        "the Dockerfile's final stage changed its base: make deploy/image/build.py provide "
        "what the new base does, then update BASE here")


def test_labels_user_entrypoint_and_command_are_the_dockerfiles(image):
    stage, (config, _) = final_stage(), image
    settings = config["config"]
    assert settings["Labels"] == stage["LABEL"]
    assert settings["User"] == stage["USER"]
    assert settings["Entrypoint"] == stage["ENTRYPOINT"]
    assert settings["Cmd"] == stage["CMD"]
    assert (config["os"], config["architecture"]) == ("linux", "amd64")


def test_the_binary_is_where_the_dockerfile_copies_it_executable_and_static(image):
    _, files = image
    [[source, destination]] = [copy for copy in final_stage()["COPY"] if copy[0] == "/out/ssm-operator"]
    assert source == "/out/ssm-operator"
    info, data = files[destination]
    assert info.isfile() and info.mode == 0o755 and (info.uid, info.gid) == (0, 0)
    assert data[:4] == b"\x7fELF"
    # Static: no program interpreter (the dynamic loader) to find in the image.
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    assert PT_INTERP not in types, "the binary needs a dynamic loader the image does not have"


def test_the_base_files_the_operator_uses_are_there(image):
    _, files = image
    uid, _, gid = final_stage()["USER"].partition(":")
    certificates = files["/etc/ssl/certs/ca-certificates.crt"][1]
    assert certificates.count(b"BEGIN CERTIFICATE") > 50
    passwd = files["/etc/passwd"][1].decode()
    assert f"nonroot:x:{uid}:{gid}:" in passwd
    assert f"nonroot:x:{gid}:" in files["/etc/group"][1].decode()
    tmp = files["/tmp"][0]
    assert tmp.isdir() and tmp.mode == 0o1777
    home = files["/home/nonroot"][0]
    assert home.isdir() and home.uid == int(uid)


def test_builds_are_reproducible(tmp_path):
    digests = []
    for attempt in ("a", "b"):
        out = subprocess.run([sys.executable, str(BUILDER), "busybox", "--out",
                              str(tmp_path / f"{attempt}.tar")],
                             capture_output=True, text=True, check=True).stdout
        digests.append(out.split()[1])
    assert digests[0] == digests[1]
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_a_dynamically_linked_binary_is_refused(tmp_path):
    out = subprocess.run([sys.executable, str(BUILDER), "operator", "--binary", sys.executable,
                          "--out", str(tmp_path / "op.tar")], capture_output=True, text=True)
    assert out.returncode != 0
    assert "linked dynamically" in out.stderr
    assert not (tmp_path / "op.tar").exists()
