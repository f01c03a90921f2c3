#!/usr/bin/env bash
# The quick start: installs the starter models if needed, builds docent, indexes the bundled
# sample corpus into a throw-away data directory (parsed, chunked, embedded, stored), searches it,
# and shows what was found. The first build compiles LanceDB and candle in release mode: on a
# 2-core machine that takes the better part of an hour; later runs are incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/docent-target}"

bash scripts/fetch-models.sh --only embed
cargo build --release --quiet --bin docent
docent="$CARGO_TARGET_DIR/release/docent"
export DOCENT_HOME="${DOCENT_HOME:-$(mktemp -d "${TMPDIR:-/tmp}/docent-demo.XXXXXX")}"

echo "== docent index fixtures/   (data in $DOCENT_HOME)"
"$docent" index fixtures/ || true   # the fixtures include broken files on purpose (exit 3)
echo
echo "== docent index fixtures/   (again: nothing changed)"
"$docent" index fixtures/ || true
echo
echo "== docent search liquidated damages per day of delay"
"$docent" search liquidated damages per day of delay -k 3
echo
echo "== docent search when will the HVAC units arrive kind:email"
"$docent" search when will the HVAC units arrive kind:email -k 2
echo
echo "== docent inspect fixtures/notes/site-meeting-2024-11-05.md"
"$docent" inspect fixtures/notes/site-meeting-2024-11-05.md
echo
echo "== docent files --status indexed"
"$docent" files --status indexed
echo
echo "== next: ask questions in the terminal interface (after: bash scripts/fetch-models.sh --only llm)"
echo "   DOCENT_HOME=$DOCENT_HOME $docent"
