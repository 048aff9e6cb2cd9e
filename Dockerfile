# syntax=docker/dockerfile:1
#
# ColdQuery container image: one static binary on distroless, for linux/amd64 and linux/arm64.
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t coldquery .   # both
#   docker build -t coldquery .                                            # this machine's
#
# How it is built, and why:
#
# - Cross-compilation, not emulation. Every build stage runs on the builder's own platform
#   (`--platform=$BUILDPLATFORM`) and compiles for the target with `--target <triple>`, mapped
#   from BuildKit's TARGETARCH below. Building the arm64 image under QEMU instead would compile
#   PostgreSQL's parser (libpg_query) and ~300 crates through an emulator, several times slower;
#   cross-compiling costs the same for both architectures, and the last stage only copies a file,
#   so no stage ever executes an arm64 binary and no QEMU is needed at all.
# - zig as the cross C compiler and linker (cargo-zigbuild). Two crates compile C: pg_query
#   (libpg_query, then bindgen over its header with libclang) and ring (TLS). zig ships musl's
#   headers and libc for every architecture, so one toolchain serves both targets with no
#   per-arch sysroot or musl-cross gcc; cargo-zigbuild also passes zig's target headers to
#   bindgen (BINDGEN_EXTRA_CLANG_ARGS_<target>), which is the step that usually breaks when
#   cross-compiling -sys crates. zig and cargo-zigbuild come from PyPI as wheels that carry
#   their binaries, pinned below.
# - musl, statically linked, on gcr.io/distroless/static-debian12:nonroot: no libc, no shell,
#   no package manager in the image; CA certificates, /etc/passwd with the nonroot user (65532)
#   and tzdata are all it holds (~2 MB). TLS to PostgreSQL uses rustls with compiled-in roots.
# - Dependency caching with cargo-chef: the `cook` layer builds only the dependencies, from a
#   recipe that changes only when Cargo.toml or Cargo.lock do, so editing src/ rebuilds the
#   coldquery crate alone. With `cache-to: type=gha` (release.yml) the layer survives CI runs.
# - Reproducible: pinned Rust, zig, cargo-zigbuild and cargo-chef versions, `--locked`, the same
#   paths in every build, and the SOURCE_DATE_EPOCH build argument, which BuildKit uses for the
#   image's timestamps (release.yml passes the commit time).
#
# The healthcheck runs `coldquery health` (GET /health on loopback, exit 0 on 200), so the image
# needs no curl or wget.

ARG RUST_VERSION=1.95
ARG DEBIAN_SUITE=trixie

# ---- toolchain: Rust with both musl targets, zig + cargo-zigbuild, cargo-chef (builder's arch)
FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-${DEBIAN_SUITE} AS toolchain
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# libclang: bindgen (pg_query's build script) loads it to read libpg_query's header.
# python3-venv: the venv that holds zig and cargo-zigbuild.
# Debian packages are not version-pinned: the suite's security updates should be taken, and a
# pinned version disappears from the archive when it is superseded.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang-dev python3-venv \
 && rm -rf /var/lib/apt/lists/*
# The pinned versions: scripts/cross reads these three ARG lines (and RUST_VERSION above), so the
# binaries it builds and runs under QEMU come from the same toolchain as the image's; keep each
# as `ARG NAME=<version>` on one line (scripts/validate-deploy checks it).
ARG ZIG_VERSION=0.17.1
ARG CARGO_ZIGBUILD_VERSION=0.24.1
ARG CARGO_CHEF_VERSION=0.1.78
RUN python3 -m venv /opt/zig \
 && /opt/zig/bin/pip install --no-cache-dir "ziglang==${ZIG_VERSION}" "cargo-zigbuild==${CARGO_ZIGBUILD_VERSION}"
# The venv first on PATH: cargo-zigbuild runs zig as `python3 -m ziglang`.
ENV PATH="/opt/zig/bin:${PATH}"
RUN rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl \
 && cargo install --locked "cargo-chef@${CARGO_CHEF_VERSION}"
WORKDIR /src

# ---- planner: the dependency recipe (changes only when the manifests do)
FROM toolchain AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# ---- builder: dependencies first (cached), then the coldquery crate
FROM toolchain AS builder
ARG TARGETARCH
# TARGETARCH is set by BuildKit; without it (a legacy builder) build for the builder's own arch.
RUN arch="${TARGETARCH:-$(dpkg --print-architecture)}"; \
    case "$arch" in \
      amd64) echo x86_64-unknown-linux-musl ;; \
      arm64) echo aarch64-unknown-linux-musl ;; \
      *) echo "unsupported platform '$arch': build for linux/amd64 or linux/arm64 (a 64-bit OS)" >&2; exit 1 ;; \
    esac > /rust-target
# Strip symbols (about a quarter of the binary) without a Cargo.toml change. Set for cook and
# build alike: a different profile would make the cooked dependencies useless.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
# jemalloc (the musl build's allocator, src/memory.rs) for pages up to 64 KiB on arm64: the
# Raspberry Pi 5 kernel uses 16 KiB pages. scripts/cross reads this line.
ENV AARCH64_UNKNOWN_LINUX_MUSL_JEMALLOC_SYS_WITH_LG_PAGE=16
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --zigbuild --target "$(cat /rust-target)" --recipe-path recipe.json
COPY . .
RUN target="$(cat /rust-target)" \
 && cargo zigbuild --release --locked --target "$target" --bin coldquery \
 && install -D -m 0555 "target/$target/release/coldquery" /out/coldquery

# ---- runtime: the binary alone, as the distroless nonroot user
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="ColdQuery" \
      org.opencontainers.image.description="A PostgreSQL server for the Model Context Protocol: safe by default, fast, honest." \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=builder /out/coldquery /usr/local/bin/coldquery
ENV COLDQUERY_LISTEN=0.0.0.0:19002 \
    COLDQUERY_LOG_FORMAT=json
USER 65532:65532
EXPOSE 19002
# `coldquery health` gives up after 3 s; the timeout leaves it room to say why.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/coldquery", "health"]
ENTRYPOINT ["/usr/local/bin/coldquery"]
CMD ["serve"]
