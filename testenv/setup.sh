#!/usr/bin/env bash
# Prepares the test environment once per machine, in a cache outside the work
# tree, and says where it is. Idempotent and fast when the cache is complete:
#   - the Python venv of the AWS emulator and of the testenv's own tests, at
#     $CACHE/venv/<hash of its requirement files>, so a change of pins makes a
#     new venv instead of mutating one in use;
#   - the control-plane binaries (controlplane/build.sh, ~10 min cold);
#   - Debian's containerd, runc, CNI plugins and busybox-static for the node.
# Prints `export` lines on stdout and writes them to $CACHE/env.sh; progress
# and errors go to stderr, so `eval "$(testenv/setup.sh)"` works.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${SSM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ssm-operator}
requirements=("$here/aws/requirements.txt" "$here/aws/requirements-test.txt")

fail() {
  echo "testenv/setup.sh: $*" >&2
  exit 1
}

for tool in python3 sha256sum flock; do
  command -v "$tool" >/dev/null || fail "'$tool' is not installed; it is needed to set up the test environment"
done
# The operator's allocator (tikv-jemallocator) builds jemalloc with make and cc.
if ! command -v make >/dev/null || ! command -v cc >/dev/null; then
  echo "installing make and gcc (Debian), which the operator's build needs" >&2
  command -v apt-get >/dev/null || fail "'make' and 'cc' are not installed and there is no apt-get to install them"
  { apt-get update && apt-get install -y make gcc; } >&2 || fail "apt-get install make gcc failed"
fi
# The node of the test environment (testenv/node.py): its container runtime,
# the loopback CNI plugin, and the busybox of the workload and sandbox images.
node_packages=()
command -v containerd >/dev/null || node_packages+=(containerd)
command -v runc >/dev/null || node_packages+=(runc)
[ -x /usr/lib/cni/loopback ] || node_packages+=(containernetworking-plugins)
[ -x /usr/bin/busybox ] || node_packages+=(busybox-static)
if [ "${#node_packages[@]}" -gt 0 ]; then
  echo "installing ${node_packages[*]} (Debian), which the test environment's node needs" >&2
  command -v apt-get >/dev/null || fail "${node_packages[*]} not installed and there is no apt-get to install them"
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${node_packages[@]}"; } >&2 \
    || fail "apt-get install ${node_packages[*]} failed"
fi
command -v kubectl >/dev/null || echo "testenv/setup.sh: warning: kubectl is not installed; the tests that drive the cluster need it" >&2

mkdir -p "$cache"
# Parallel setups (several CI jobs, a developer's shell) would otherwise race
# on the same venv directory and start the 10-minute build twice.
exec 9>"$cache/setup.lock"
flock --nonblock 9 || {
  echo "waiting for another testenv/setup.sh to finish" >&2
  flock 9
}

venv_hash=$(cat "${requirements[@]}" | sha256sum | cut -c1-16)
venv="$cache/venv/$venv_hash"
if [ ! -f "$venv/.complete" ]; then
  echo "creating the Python venv $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" >&2 \
    || fail "python3 -m venv failed; on Debian install the venv module: apt-get install python3-venv"
  for file in "${requirements[@]}"; do
    "$venv/bin/python" -m pip install --quiet --no-input -r "$file" >&2 \
      || fail "pip install -r $file failed (is PyPI reachable?); see pip's output above"
  done
  touch "$venv/.complete"
fi

bin=$("$here/controlplane/build.sh") \
  || fail "building the control plane failed (testenv/controlplane/build.sh needs Go >= 1.25 and the Go module proxy); see its output above"
[ -x "$bin/kube-apiserver" ] || fail "controlplane/build.sh finished but $bin/kube-apiserver is missing"

exports=$(printf 'export SSM_OPERATOR_TESTENV_PYTHON=%q\nexport SSM_OPERATOR_TESTENV_BIN=%q' \
  "$venv/bin/python" "$bin")
printf '%s\n' "$exports" >"$cache/env.sh.tmp"
mv "$cache/env.sh.tmp" "$cache/env.sh"
printf '%s\n' "$exports"
