# syntax=docker/dockerfile:1
# H-MAS images, one stage each:
#   server               the dashboard, API, gateway and reconciler (distroless, no shell)
#   agent-ollama         Ollama run by `hmas agent`
#   agent-vllm           vLLM run by `hmas agent`
#   agent-tgi            Text Generation Inference run by `hmas agent`
#   agent-llama-cpp      llama.cpp server (CPU) run by `hmas agent`
#   agent-llama-cpp-cuda llama.cpp server (CUDA) run by `hmas agent`
#   agent-sglang         SGLang run by `hmas agent`
#
#   docker build --target server -t ghcr.io/hmas-io/hmas:0.1.0 .
#   docker build --target agent-vllm -t ghcr.io/hmas-io/hmas-agent:0.1.0-vllm .
#
# Every base is pinned to a version; the wrapper bases are exactly the official images the
# runtime presets use, so a wrapper deployment and a plain one run the same runtime. Wrapper
# images run as uid 10001 with a read-only root filesystem: the runtime writes only to the
# volumes declared below (models under /models, scratch and $HOME under /tmp), which the
# Deployments H-MAS renders mount. server/tests/images.rs holds this file and those Deployments
# to each other.

# The browser bundle needs Node for wasm-opt. The binary is built against Ubuntu 22.04's glibc
# (2.35), the oldest among the runtimes' bases, so the same file runs in every image.
FROM rust:1.95-bookworm AS site
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm brotli && rm -rf /var/lib/apt/lists/* \
 && rustup target add wasm32-unknown-unknown
WORKDIR /src
COPY tools/package.json tools/package-lock.json tools/
RUN cd tools && npm ci --no-audit --no-fund
COPY Cargo.toml Cargo.lock ./
RUN version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock) \
 && cargo install wasm-bindgen-cli --version "=$version"
COPY . .
RUN scripts/build-site

FROM ubuntu:22.04 AS build
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/* \
 && curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain 1.95.0
ENV PATH=/root/.cargo/bin:$PATH
WORKDIR /src
COPY . .
RUN cargo build --release -p server --bin hmas \
 && mkdir -p /out/data /out/tmp && cp target/release/hmas /out/hmas

FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f AS server
LABEL org.opencontainers.image.title="hmas" \
      org.opencontainers.image.description="H-MAS: serve AI models on GPU clusters through a Karmada hub" \
      org.opencontainers.image.source="https://github.com/hmas-io/hmas" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/hmas /usr/local/bin/hmas
COPY --from=site /src/target/site /usr/share/hmas/site
COPY --from=build --chown=65532:65532 /out/data /var/lib/hmas
USER 65532:65532
ENV HMAS_ADDR=0.0.0.0:3000 HMAS_DATA_DIR=/var/lib/hmas HMAS_SITE_ROOT=/usr/share/hmas/site HMAS_LOG_FORMAT=json
EXPOSE 3000
VOLUME ["/var/lib/hmas"]
ENTRYPOINT ["/usr/local/bin/hmas"]
CMD ["serve"]

FROM ollama/ollama:0.12.11 AS agent-ollama
LABEL org.opencontainers.image.title="hmas-agent-ollama" \
      org.opencontainers.image.description="Ollama run by the H-MAS agent" \
      org.opencontainers.image.source="https://github.com/hmas-io/hmas" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.base.name="ollama/ollama:0.12.11"
COPY --from=build /out/hmas /usr/local/bin/hmas
COPY --from=build --chown=10001:10001 /out/data /models
COPY --from=build --chown=10001:10001 /out/tmp /tmp
USER 10001:10001
ENV HMAS_RUNTIME=ollama HMAS_MODEL_DIR=/models HOME=/tmp OLLAMA_MODELS=/models/models OLLAMA_HOST=0.0.0.0:11434
EXPOSE 11434 9400
VOLUME ["/models", "/tmp"]
ENTRYPOINT ["/usr/local/bin/hmas", "agent"]
CMD ["--", "/bin/ollama", "serve"]

FROM vllm/vllm-openai:v0.11.2 AS agent-vllm
LABEL org.opencontainers.image.title="hmas-agent-vllm" \
      org.opencontainers.image.description="vLLM run by the H-MAS agent" \
      org.opencontainers.image.source="https://github.com/hmas-io/hmas" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.base.name="vllm/vllm-openai:v0.11.2"
COPY --from=build /out/hmas /usr/local/bin/hmas
COPY --from=build --chown=10001:10001 /out/data /models
COPY --from=build --chown=10001:10001 /out/tmp /tmp
USER 10001:10001
ENV HMAS_RUNTIME=vllm HMAS_MODEL_DIR=/models HOME=/tmp HF_HOME=/models
EXPOSE 8000 9400
VOLUME ["/models", "/tmp"]
ENTRYPOINT ["/usr/local/bin/hmas", "agent"]

FROM ghcr.io/huggingface/text-generation-inference:3.3.6 AS agent-tgi
LABEL org.opencontainers.image.title="hmas-agent-tgi" \
      org.opencontainers.image.description="Text Generation Inference run by the H-MAS agent" \
      org.opencontainers.image.source="https://github.com/hmas-io/hmas" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.base.name="ghcr.io/huggingface/text-generation-inference:3.3.6"
COPY --from=build /out/hmas /usr/local/bin/hmas
COPY --from=build --chown=10001:10001 /out/data /models
COPY --from=build --chown=10001:10001 /out/tmp /tmp
USER 10001:10001
ENV HMAS_RUNTIME=tgi HMAS_MODEL_DIR=/models HOME=/tmp HUGGINGFACE_HUB_CACHE=/models
EXPOSE 80 9400
VOLUME ["/models", "/tmp"]
ENTRYPOINT ["/usr/local/bin/hmas", "agent"]

FROM ghcr.io/ggml-org/llama.cpp:server-b11151 AS agent-llama-cpp
LABEL org.opencontainers.image.title="hmas-agent-llama-cpp" \
      org.opencontainers.image.description="llama.cpp server run by the H-MAS agent" \
      org.opencontainers.image.source="https://github.com/hmas-io/hmas" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.base.name="ghcr.io/ggml-org/llama.cpp:server-b11151"
COPY --from=build /out/hmas /usr/local/bin/hmas
COPY --from=build --chown=10001:10001 /out/data /models
COPY --from=build --chown=10001:10001 /out/tmp /tmp
USER 10001:10001
ENV HMAS_RUNTIME=llama_cpp HMAS_MODEL_DIR=/models HOME=/tmp LLAMA_CACHE=/models
EXPOSE 8080 9400
VOLUME ["/models", "/tmp"]
ENTRYPOINT ["/usr/local/bin/hmas", "agent"]

FROM ghcr.io/ggml-org/llama.cpp:server-cuda-b11151 AS agent-llama-cpp-cuda
LABEL org.opencontainers.image.title="hmas-agent-llama-cpp-cuda" \
      org.opencontainers.image.description="llama.cpp server (CUDA) run by the H-MAS agent" \
      org.opencontainers.image.source="https://github.com/hmas-io/hmas" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.base.name="ghcr.io/ggml-org/llama.cpp:server-cuda-b11151"
COPY --from=build /out/hmas /usr/local/bin/hmas
COPY --from=build --chown=10001:10001 /out/data /models
COPY --from=build --chown=10001:10001 /out/tmp /tmp
USER 10001:10001
ENV HMAS_RUNTIME=llama_cpp HMAS_MODEL_DIR=/models HOME=/tmp LLAMA_CACHE=/models
EXPOSE 8080 9400
VOLUME ["/models", "/tmp"]
ENTRYPOINT ["/usr/local/bin/hmas", "agent"]

FROM lmsysorg/sglang:v0.5.5 AS agent-sglang
LABEL org.opencontainers.image.title="hmas-agent-sglang" \
      org.opencontainers.image.description="SGLang run by the H-MAS agent" \
      org.opencontainers.image.source="https://github.com/hmas-io/hmas" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.base.name="lmsysorg/sglang:v0.5.5"
COPY --from=build /out/hmas /usr/local/bin/hmas
COPY --from=build --chown=10001:10001 /out/data /models
COPY --from=build --chown=10001:10001 /out/tmp /tmp
USER 10001:10001
ENV HMAS_RUNTIME=sglang HMAS_MODEL_DIR=/models HOME=/tmp HF_HOME=/models
EXPOSE 30000 9400
VOLUME ["/models", "/tmp"]
ENTRYPOINT ["/usr/local/bin/hmas", "agent"]

# The default target: the server.
FROM server
