# shelf in a container: build the binary, then serve an index mounted at /index.
#
#   docker build -t shelf .
#   shelf index --catalog products.jsonl --out ./my-index          # on the host, or in the image
#   docker run -p 8080:8080 -v "$PWD/my-index:/index" shelf
#
# This file is not exercised by CI (no Docker engine runs there); it follows scripts/setup.sh.

FROM rust:1-bookworm AS build
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends build-essential pkg-config libclang-dev python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/tools && /opt/tools/bin/pip install --quiet "cmake>=3.28"
ENV PATH=/opt/tools/bin:$PATH
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin shelf

FROM debian:bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* && useradd --system --home /nonexistent shelf
COPY --from=build /src/target/release/shelf /usr/local/bin/shelf
USER shelf
VOLUME /index
EXPOSE 8080
ENTRYPOINT ["shelf"]
CMD ["serve", "--index", "/index", "--addr", "0.0.0.0:8080"]
