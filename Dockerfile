# The image the Helm chart runs: one `cellfed` binary (controller, webhook, apiserver, member).
#   docker build -t cellfed:0.1.0 .
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p cellfed-cli --bin cellfed --bin kubectl-cellfed

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/cellfed /src/target/release/kubectl-cellfed /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/cellfed"]
