# The two commands of the README: `make demo` and `make test`.
# Build caches live outside the work tree so that a fresh clone reuses them.

# SSM_OPERATOR_CACHE (as the scripts and tests read it) moves every cache.
CACHE ?= $(or $(SSM_OPERATOR_CACHE),$(HOME)/.cache/ssm-operator)
export SSM_OPERATOR_CACHE := $(CACHE)
export CARGO_TARGET_DIR ?= $(CACHE)/target

# The image's binary is static (glibc, as the Dockerfile builds it): with an
# explicit --target, RUSTFLAGS reach only the binary, not build scripts.
HOST_TARGET := $(shell rustc -vV | sed -n 's/^host: //p')
IMAGE_BINARY = $(CARGO_TARGET_DIR)/$(HOST_TARGET)/release/ssm-operator
export IMAGE_ARCHIVE := $(CACHE)/images/ssm-operator.oci.tar

.PHONY: demo test testenv floor lint unit crd bench image

## demo: run the seed scenario against a local control plane and AWS emulator
demo: testenv image
	cargo build --quiet --bin ssm-operator
	cargo build --quiet -p ssm-operator-testenv --example demo
	"$(CARGO_TARGET_DIR)/debug/examples/demo"

## test: lint, then every test (unit, emulator, integration), then the check
## that the chart's RBAC grants exactly the verbs the end-to-end suite used
test: testenv floor lint image
	# The end-to-end tests run the operator binary, which `cargo test` builds
	# only for tests of its own package: build it first, from this tree.
	# With the failpoints the harness turns on, so that `cargo test` reuses it.
	cargo build --bin ssm-operator --features failpoints
	# The run's audit logs and chart installs go to a directory of its own
	# under the cache, which the RBAC check (deploy/tests) reads afterwards.
	run=$$(testenv/audit-run.sh) \
	  && SSM_OPERATOR_AUDIT_RUN=$$run cargo test --workspace --all-targets -- --test-threads 6 \
	  && SSM_OPERATOR_TESTENV_KUBE=floor cargo test -p ssm-operator-testenv --test e2e -- admission:: \
	  && . $(CACHE)/env.sh \
	  && SSM_OPERATOR_AUDIT_RUN=$$run "$$SSM_OPERATOR_TESTENV_PYTHON" -m pytest -q -p no:cacheprovider testenv deploy/tests

## testenv: build the control plane and the AWS emulator (once; cached)
testenv:
	testenv/setup.sh
	deploy/helm.sh >/dev/null

## floor: the kube-apiserver of the chart's kubeVersion floor (once; cached),
## on which `make test` runs the admission cases again
floor:
	testenv/controlplane/build.sh floor >/dev/null

## image: the operator's image as an OCI archive (deploy/image/build.py), from
## a static release binary, for the test node's runtime: the Dockerfile's
## final stage without a container engine (deploy/tests/test_image.py
## checks that they agree)
image:
	RUSTFLAGS="-C target-feature=+crt-static" \
	  cargo build --quiet --release --locked --bin ssm-operator --target $(HOST_TARGET)
	python3 deploy/image/build.py operator --binary "$(IMAGE_BINARY)" --out "$(IMAGE_ARCHIVE)"

## unit: every unit test, in seconds, with no control plane or emulator
unit:
	cargo test --lib

lint:
	cargo fmt --all --check
	cargo clippy --all-targets --workspace -- -D warnings

## crd: regenerate crds/ and the chart's copy from the Rust types
crd:
	cargo build --quiet --bin ssm-operator
	for kind in SsmParameter ClusterSsmParameter; do \
	  file=$$(echo "$$kind" | tr A-Z a-z)s.ssm-operator.io.yaml; \
	  "$(CARGO_TARGET_DIR)/debug/ssm-operator" crd --kind "$$kind" > "crds/.$$file.new" \
	    && mv "crds/.$$file.new" "crds/$$file" \
	    && cp "crds/$$file" "deploy/ssm-operator/crd/$$file" || exit 1; \
	done

## bench: the scale benchmark (bench/README.md; not part of `make test`):
## the operator's release build on thousands of SsmParameters, a table of
## what each phase cost beside its floor. BENCH_ARGS: e.g. --parameters 1000
bench: testenv
	cargo build --release --bin ssm-operator
	cargo build -p ssm-operator-bench
	SSM_OPERATOR_BIN="$(CARGO_TARGET_DIR)/release/ssm-operator" \
	  "$(CARGO_TARGET_DIR)/debug/ssm-operator-bench" $(BENCH_ARGS)
