#!/usr/bin/env bash
# Builds the control plane from Go modules into the cache outside the work
# tree, and prints the directory of the binaries. Idempotent: a complete cache
# is reused.
#   build.sh        kube-apiserver, kube-controller-manager, etcd, and the
#                   node: kube-scheduler and kubelet, of the version the
#                   tests and the demo run on (go.mod here)
#   build.sh floor  the kube-apiserver of the chart's kubeVersion floor
#                   (floor/go.mod), on which the CRD's admission cases run too
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
case "${1:-}" in
  "") module=$here; commands=(kube-apiserver kube-controller-manager kube-scheduler kubelet); etcd=yes ;;
  floor) module=$here/floor; commands=(kube-apiserver); etcd=no ;;
  *) echo "usage: $0 [floor]" >&2; exit 2 ;;
esac
version=$(awk '{for (i = 1; i < NF; i++) if ($i == "k8s.io/kubernetes" && $(i + 1) ~ /^v/) {print $(i + 1); exit}}' "$module/go.mod")
cache=${SSM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ssm-operator}
bin="$cache/testenv/$version/bin"
inputs=("$module/go.mod" "$module/go.sum" "$here/build.sh")
[ "$etcd" = yes ] && inputs+=("$here/etcd/main.go")
# Of the inputs' contents, not their paths: a clone elsewhere reuses the cache.
stamp="$bin/.complete-$(cat "${inputs[@]}" | sha256sum | cut -c1-16)"

if [ -f "$stamp" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$bin"
cd "$module"
export CGO_ENABLED=0
# Go >= 1.27 breaks /openapi/v2 of Kubernetes <= 1.36 unless json v2 is off.
case "$(go env GOVERSION)" in
  go1.2[7-9]*|go1.[3-9]*) export GOEXPERIMENT=nojsonv2 ;;
esac
echo "building ${commands[*]} $version into $bin (once; about 10 minutes cold)" >&2
[ "$etcd" = yes ] && go build -trimpath -o "$bin/etcd" ./etcd
# Stamp the real version, as Kubernetes' own build does: without it the
# servers say v0.0.0-master, which `kubectl version` and Helm's kubeVersion
# checks refuse.
minor=${version#v1.}
minor=${minor%%.*}
pkg=k8s.io/component-base/version
ldflags="-X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
for command in "${commands[@]}"; do
  go build -trimpath -ldflags "$ldflags" -o "$bin/$command" "k8s.io/kubernetes/cmd/$command"
done
rm -f "$bin"/.complete-*
touch "$stamp"
echo "$bin"
