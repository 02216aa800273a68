# syntax=docker/dockerfile:1

# The operator image: one static binary on a distroless base — no shell, no
# package manager, non-root (65532), CA certificates included.
#
#   docker build -t ssm-operator:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t <registry>/ssm-operator:0.1.0 --push .
#
# The binary is linked statically against glibc (`+crt-static` on the gnu
# target) rather than built for musl: the gnu target needs nothing beyond the
# toolchain image, and glibc >= 2.34 resolves names (/etc/hosts, DNS) without
# loading NSS modules, so the image needs no libc. The AWS SDK and kube reach
# TLS through rustls (aws-lc-rs, compiled in), and read the system roots from
# /etc/ssl/certs, which the base image provides.

# Keep in step with rust-toolchain.toml (which is not copied into the build:
# the image's own toolchain is that version).
ARG RUST_VERSION=1.95.0

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crds ./crds
# A workspace member: cargo reads its manifest even to build the operator alone.
COPY testenv/harness/Cargo.toml ./testenv/harness/Cargo.toml
COPY testenv/harness/src ./testenv/harness/src
# Smaller than the repository's release profile (optimised for size, one
# codegen unit, whole-program LTO): the image is pulled by every node that
# runs the operator, and its speed is bound by AWS and the API server.
ENV CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
    CARGO_PROFILE_RELEASE_LTO=fat \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
# The registry and target caches survive between builds (BuildKit); the
# binary is copied out of the cache mount before the step ends. With an
# explicit --target, RUSTFLAGS reach only the binary, not build scripts and
# proc macros (which cannot be static).
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    set -eu; \
    target="$(uname -m)-unknown-linux-gnu"; \
    RUSTFLAGS="-C target-feature=+crt-static" \
      cargo build --release --locked --bin ssm-operator --target "$target"; \
    install -D -m 0755 "target/$target/release/ssm-operator" /out/ssm-operator; \
    if readelf -d /out/ssm-operator | grep -q NEEDED; then \
      echo "ssm-operator is not static:" >&2; readelf -d /out/ssm-operator >&2; exit 1; \
    fi; \
    /out/ssm-operator --version

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="ssm-operator" \
      org.opencontainers.image.description="Keeps Kubernetes Secrets in sync with AWS Systems Manager Parameter Store" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/ssm-operator /ssm-operator
# Numeric, so that the kubelet can verify runAsNonRoot.
USER 65532:65532
ENTRYPOINT ["/ssm-operator"]
CMD ["run"]
