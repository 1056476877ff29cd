# seccomp-sentinel: operator, node agent and audit in one binary.
# Build:  docker build -t quay.io/seccomp-sentinel/seccomp-sentinel:v0.1.0 .
# The build stage runs the same command as `make build`.

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY operator ./operator
COPY tests ./tests
COPY benches ./benches
COPY tools ./tools
COPY crds ./crds
RUN cargo build --release --locked --bin seccomp-sentinel \
 && install -D -m 0755 target/release/seccomp-sentinel /out/seccomp-sentinel

FROM registry.access.redhat.com/ubi9/ubi-minimal:9.6
ARG VERSION=0.1.0
LABEL name="seccomp-sentinel" \
      maintainer="seccomp-sentinel maintainers <maintainers@seccomp-sentinel.dev>" \
      vendor="seccomp-sentinel" \
      version="${VERSION}" \
      release="1" \
      summary="Reports and enforces the effective seccomp profile of every container" \
      description="A Kubernetes and OpenShift operator that records each pod's effective seccomp profile, judges it against SeccompPolicies, and can label or safely evict violating workloads." \
      io.k8s.display-name="seccomp-sentinel" \
      io.k8s.description="Effective seccomp profiles, policies and runtime verification for Kubernetes and OpenShift" \
      io.openshift.tags="security,seccomp,operator"
COPY LICENSE /licenses/LICENSE
COPY --from=build /out/seccomp-sentinel /usr/local/bin/seccomp-sentinel
# Any non-root UID works (OpenShift assigns one); 65532 is the default elsewhere.
USER 65532:0
ENTRYPOINT ["/usr/local/bin/seccomp-sentinel"]
CMD ["run"]
