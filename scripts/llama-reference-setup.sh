#!/usr/bin/env bash
# Installs llama.cpp (prebuilt CPU binaries, through the npm package node-llama-cpp) into
# ~/.cache/docent-llamacpp (or $DOCENT_LLAMACPP) for scripts/llama-reference.mjs. Only needed to
# regenerate the reference fixtures or run the side-by-side language-model benchmark; the tests
# use the committed fixtures.
set -euo pipefail
dir="${DOCENT_LLAMACPP:-$HOME/.cache/docent-llamacpp}"
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || echo '{"private":true}' > package.json
# --ignore-scripts: use the prebuilt binaries, never download or compile llama.cpp.
npm install --no-audit --no-fund --ignore-scripts node-llama-cpp@3.22.1
echo "llama.cpp reference installed in $dir"
