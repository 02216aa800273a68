#!/usr/bin/env bash
# Builds the pinned Helm 3 from Go modules, once, into the cache outside the
# work tree, and prints its path. Idempotent and fast when cached: the helm
# built by the same recipe (version and stamps below) is reused.
#
#   helm=$(deploy/helm.sh) && "$helm" lint deploy/ssm-operator
#
# Needs Go and the Go module proxy (prebuilt binaries cannot be downloaded on
# every machine this project runs on). About 2–4 minutes cold on 2 cores.
set -euo pipefail

version=v3.19.5
# The Kubernetes version this Helm release was built against (its client-go);
# `helm template` and `helm lint` assume it when no cluster is asked.
kube_minor=34
cache=${SSM_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ssm-operator}
bin="$cache/bin"
helm="$bin/helm"

fail() {
  echo "deploy/helm.sh: $*" >&2
  exit 1
}

# The same version stamps as Helm's own Makefile, so that `helm version` and
# the Kubernetes version `helm template` assumes are the release's.
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for package in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X $package.k8sVersionMajor=1 -X $package.k8sVersionMinor=$kube_minor"
done
# A change of the recipe above rebuilds.
stamp="$bin/.helm-stamp-$(printf '%s' "$version $ldflags" | sha256sum | cut -c1-16)"

cached() {
  [ -f "$stamp" ] && [ -x "$helm" ] \
    && [ "$("$helm" version --template '{{.Version}}' 2>/dev/null)" = "$version" ]
}

if cached; then
  echo "$helm"
  exit 0
fi

command -v go >/dev/null || fail "'go' is not installed; Helm $version is built from Go modules"
command -v flock >/dev/null || fail "'flock' is not installed"

mkdir -p "$bin"
# Parallel callers (test workers, a developer's shell) build once.
exec 9>"$bin/.helm.lock"
flock 9
if cached; then
  echo "$helm"
  exit 0
fi

echo "building helm $version into $bin (once)" >&2
staging=$(mktemp -d "$bin/.helm-build.XXXXXX")
trap 'rm -rf "$staging"' EXIT
# GOFLAGS from the environment (e.g. -mod=vendor) would not apply to a module
# installed by version.
GOFLAGS= CGO_ENABLED=0 GOBIN="$staging" \
  go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$version" >&2 \
  || fail "go install helm.sh/helm/v3/cmd/helm@$version failed (is the Go module proxy reachable?); see its output above"
mv -f "$staging/helm" "$helm"
rm -f "$bin"/.helm-stamp-*
touch "$stamp"
cached || fail "$helm does not report version $version"
echo "$helm"
