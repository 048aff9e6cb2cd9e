# PLACEHOLDER: the real multi-stage, multi-arch image (non-root, HEALTHCHECK via the binary,
# <= 25 MB) arrives with the "Ship it" issue (#6). This file only documents the intent; it
# builds a working but unoptimised image.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libclang-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
COPY --from=build /src/target/release/coldquery /usr/local/bin/coldquery
ENV COLDQUERY_LISTEN=0.0.0.0:19002 COLDQUERY_LOG_FORMAT=json
USER 65532:65532
EXPOSE 19002
ENTRYPOINT ["/usr/local/bin/coldquery"]
CMD ["serve"]
