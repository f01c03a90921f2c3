#!/usr/bin/env bash
# The test command: checks (and installs) the prerequisites, builds docent and runs every test of
# the workspace (unit, integration, end-to-end, snapshot). Tests that need model weights find them in the models directory
# (scripts/fetch-models.sh installs them) and fail loudly when they are absent.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/docent-target}"
export INSTA_UPDATE="${INSTA_UPDATE:-no}"

# shellcheck source=scripts/prereqs.sh
source scripts/prereqs.sh
docent_prereqs --tests

if ! ls "${DOCENT_MODELS:-${XDG_DATA_HOME:-$HOME/.local/share}/docent/models}/all-MiniLM-L6-v2/tokenizer.json" >/dev/null 2>&1 \
   && [ "$(uname)" != Darwin ]; then
  echo "models missing: running scripts/fetch-models.sh first" >&2
  bash scripts/fetch-models.sh --only embed
fi

# One cargo invocation for unit, integration, end-to-end and doc tests: a separate
# `cargo test --doc` resolves dependency features differently and would compile LanceDB and
# candle a second time.
cargo test --workspace --no-fail-fast "$@"
