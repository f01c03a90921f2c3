#!/usr/bin/env bash
# The quick start, in one command: checks (and installs) the prerequisites, installs the starter
# models, builds docent, indexes the bundled sample corpus into a throw-away data directory
# (parsed, chunked, embedded, stored), searches it, and ends with a cited answer from the local
# language model, exported to Markdown.
#
# The first build compiles LanceDB, DataFusion and candle in release mode: about 40–100 minutes
# on a 2-core machine (less with more cores); later runs take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/docent-target}"

# shellcheck source=scripts/prereqs.sh
source scripts/prereqs.sh
docent_prereqs

# The models first: a missing one then fails in seconds, not after the build.
bash scripts/fetch-models.sh
echo "== building docent (release; the first build takes long, see above)"
cargo build --release --locked --quiet --bin docent
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
# The starter model is tiny (SmolLM2-135M, 94 MB, chosen so the demo runs anywhere): the answer
# shows the mechanics — streaming, [n] citations checked against their sources, the Markdown
# export — more than what a larger model would write (`docent models recommend`). Given one
# passage (-k 1) it cites it; given three it tends to answer without citing anything.
question="What are the liquidated damages per calendar day of delay?"
export_file="$DOCENT_HOME/answer.md"
echo "== docent ask -k 1 --export $export_file $question"
"$docent" ask -k 1 --export "$export_file" "$question"
echo
echo "== the answer as Markdown, with footnotes linking to the sources: $export_file"
sed -n '1,12p' "$export_file"
echo "   …"
echo
echo "== next"
if command -v docent >/dev/null 2>&1; then
    run=docent
else
    run="$docent"
    echo "   put docent on your PATH (with shell completions and a man page): bash scripts/install.sh"
fi
echo "   the terminal interface over this demo index (type a question, Enter; ? for keys, q to quit):"
echo "     DOCENT_HOME=$DOCENT_HOME $run"
echo "   your own documents (indexed into your per-user data directory):"
echo "     $run index ~/Documents && $run"
