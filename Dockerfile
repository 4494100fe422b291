# The pbc runner image (`targets.runner-image`, docs/argo.md): the static `pbc` binary and
# nothing else. Every task of an emitted Argo workflow runs `pbc runner …` in it, as the
# non-root user 65534, on a read-only root filesystem (the templates' securityContext); it
# writes only to the `emptyDir` mounted at /tmp/pbc and reads the workflow's ConfigMap at
# /etc/pbc.
#
# Build the binary first (static glibc; no other toolchain is needed):
#   CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
#     cargo build --release -p pbc --target x86_64-unknown-linux-gnu
#   docker build -t ghcr.io/agenticops/pbc-runner:v1 .
FROM scratch
ARG PBC=target/x86_64-unknown-linux-gnu/release/pbc
COPY --chmod=0555 ${PBC} /pbc
USER 65534:65534
WORKDIR /tmp/pbc
ENTRYPOINT ["/pbc"]
