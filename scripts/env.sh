# Sourced by the scripts: picks the toolchain that can build wasm32 on this machine and puts the project's
# tools on PATH. Sets HMAS_TOOLCHAIN to "web" (Debian's rust-web, linked into rustup) or "stable".
export PATH="$HOME/.cargo/bin:$PWD/tools/node_modules/.bin:$PATH"
WEB_TOOLCHAIN_MARK=/usr/lib/rustlib/wasm32-unknown-unknown/lib/.hmas-sysroot
web_ok() {
  [ -f "$WEB_TOOLCHAIN_MARK" ] && [ "$(cat "$WEB_TOOLCHAIN_MARK")" = "$(/usr/bin/rustc --version 2>/dev/null)" ] \
    && rustup toolchain list 2>/dev/null | grep -q '^web'
}
if web_ok; then
  HMAS_TOOLCHAIN=web
elif rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
  HMAS_TOOLCHAIN=stable
else
  HMAS_TOOLCHAIN=${HMAS_TOOLCHAIN:-none}
fi
export HMAS_TOOLCHAIN
[ "$HMAS_TOOLCHAIN" = web ] && export RUSTUP_TOOLCHAIN=web
true
