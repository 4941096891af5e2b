# syntax=docker/dockerfile:1
# H-MAS image: the hmas binary and its site, running as an unprivileged user.
#   docker build -t hmas .
#   docker run -p 3000:3000 -v hmas-data:/var/lib/hmas hmas

FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/* \
 && rustup target add wasm32-unknown-unknown
WORKDIR /src
COPY tools/package.json tools/package-lock.json tools/
RUN cd tools && npm ci --no-audit --no-fund
COPY Cargo.toml Cargo.lock ./
RUN version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock) \
 && cargo install wasm-bindgen-cli --version "=$version"
COPY . .
RUN scripts/build-site && cargo build --release -p server --bin hmas

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /var/lib/hmas hmas && mkdir -p /var/lib/hmas && chown hmas /var/lib/hmas
COPY --from=build /src/target/release/hmas /usr/local/bin/hmas
COPY --from=build /src/target/site /usr/share/hmas/site
USER hmas
ENV HMAS_ADDR=0.0.0.0:3000 HMAS_DATA_DIR=/var/lib/hmas HMAS_SITE_ROOT=/usr/share/hmas/site HMAS_LOG_FORMAT=json
EXPOSE 3000
VOLUME /var/lib/hmas
HEALTHCHECK --interval=30s --timeout=3s CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/3000 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ok <&3"]
ENTRYPOINT ["/usr/local/bin/hmas"]
CMD ["serve"]
