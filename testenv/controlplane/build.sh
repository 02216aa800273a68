#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and etcd from Go modules into
# the cache outside the work tree. Idempotent: a complete cache is reused.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
version=$(awk '/k8s.io\/kubernetes v/ {print $2; exit}' "$here/go.mod")
cache=${SSM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ssm-operator}
bin="$cache/testenv/$version/bin"
stamp="$bin/.complete-$(sha256sum "$here/go.mod" "$here/go.sum" "$here/etcd/main.go" "$here/build.sh" | sha256sum | cut -c1-16)"

if [ -f "$stamp" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$bin"
cd "$here"
export CGO_ENABLED=0
# Go >= 1.27 breaks /openapi/v2 of Kubernetes <= 1.36 unless json v2 is off.
case "$(go env GOVERSION)" in
  go1.2[7-9]*|go1.[3-9]*) export GOEXPERIMENT=nojsonv2 ;;
esac
echo "building the control plane $version into $bin (once; about 10 minutes cold)" >&2
go build -trimpath -o "$bin/etcd" ./etcd
# Stamp the real version, as Kubernetes' own build does: without it the
# servers say v0.0.0-master, which `kubectl version` and Helm's kubeVersion
# checks refuse.
minor=${version#v1.}
minor=${minor%%.*}
pkg=k8s.io/component-base/version
ldflags="-X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
go build -trimpath -ldflags "$ldflags" -o "$bin/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
go build -trimpath -ldflags "$ldflags" -o "$bin/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager
rm -f "$bin"/.complete-*
touch "$stamp"
echo "$bin"
