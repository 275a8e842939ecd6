#!/bin/sh
# Rebuilds the committed test modules from their C sources (needs `pip install ziglang`;
# not a dependency of klippfisk: the .wasm outputs are committed).
# examples/hello-wasm.yaml inlines hello.wasm; a CLI test checks they match.
set -eu
cd "$(dirname "$0")"
for src in hello files; do
  python3 -m ziglang cc -target wasm32-wasi -Os -s -o "$src.wasm" "$src.c"
done
