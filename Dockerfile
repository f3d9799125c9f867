# shelf in a container: build the binary and prepare the encoder (its ONNX export and the
# ONNX Runtime library), then serve an index mounted at /index.
#
#   docker build -t shelf .          (or: podman build -t shelf .)
#   shelf index --catalog products.jsonl --out ./my-index          # on the host, or in the image
#   docker run -p 8080:8080 -v "$PWD/my-index:/index" shelf
#   docker run -p 8080:8080 -v "$PWD/my-index:/index" -v "$PWD/my-model:/model" shelf \
#       serve --index /index --model /model --addr 0.0.0.0:8080
#
# The build stage follows scripts/setup.sh; `shelf model fetch` needs PyPI (pip).

FROM rust:1-bookworm AS build
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends build-essential pkg-config libclang-dev python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/tools && /opt/tools/bin/pip install --quiet "cmake>=3.28"
ENV PATH=/opt/tools/bin:$PATH
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
COPY benches ./benches
COPY scripts ./scripts
RUN cargo build --release --locked --bin shelf
# The encoder files, their ONNX export and libonnxruntime, each checked by sha256.
RUN ./target/release/shelf model fetch
# The release profile keeps debug info for profiling; the image does not need it.
RUN strip --strip-debug target/release/shelf

FROM debian:bookworm-slim
# libgomp1: LightGBM's OpenMP runtime; libstdc++ comes with it.
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates libgomp1 \
 && rm -rf /var/lib/apt/lists/* && useradd --system --home /nonexistent shelf
COPY --from=build /src/target/release/shelf /usr/local/bin/shelf
COPY --from=build /src/models /opt/shelf/models
ENV SHELF_ENCODER=/opt/shelf/models/all-MiniLM-L6-v2 \
    ORT_DYLIB_PATH=/opt/shelf/models/onnxruntime/libonnxruntime.so.1.31.1
USER shelf
VOLUME /index
EXPOSE 8080
ENTRYPOINT ["shelf"]
CMD ["serve", "--index", "/index", "--addr", "0.0.0.0:8080"]
