#!/usr/bin/env bash
# Puts `docent` on the PATH: builds it in release mode (in the same cargo target directory as
# scripts/demo.sh, so after the demo this takes seconds), copies the binary to ~/.local/bin, and
# installs shell completions and manual pages generated from the binary itself.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bash scripts/install.sh [--bin-dir DIR] [--no-build] [--help]

Builds docent (cargo build --release --locked) and installs:
  the binary            ~/.local/bin/docent            (--bin-dir DIR, or DOCENT_BIN_DIR)
  bash completions      ~/.local/share/bash-completion/completions/docent
  zsh completions       ~/.local/share/zsh/site-functions/_docent
  fish completions      ~/.config/fish/completions/docent.fish   (when fish is installed)
  manual pages          ~/.local/share/man/man1/docent.1, docent-index.1, …

Options:
  --bin-dir DIR   where to put the binary
  --no-build      install the binary already built in the cargo target directory
  -h, --help      show this help

The models are installed separately (bash scripts/fetch-models.sh); they live in the per-user
data directory, not beside the binary. To uninstall, remove the files listed above.
EOF
}

say() { printf 'install: %s\n' "$*" >&2; }
die() {
    printf 'install: error: %s\n' "$1" >&2
    shift
    for line in "$@"; do printf '%s\n' "$line" >&2; done
    exit 1
}

BIN_DIR="${DOCENT_BIN_DIR:-}"
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --bin-dir)
            [ $# -ge 2 ] || die "--bin-dir needs a folder"
            BIN_DIR="$2"
            shift 2
            ;;
        --bin-dir=*)
            BIN_DIR="${1#--bin-dir=}"
            shift
            ;;
        --no-build)
            BUILD=0
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage >&2
            die "unknown argument: $1"
            ;;
    esac
done

cd "$(dirname "$0")/.."
: "${HOME:?HOME is not set}"
BIN_DIR="${BIN_DIR:-$HOME/.local/bin}"
DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
CONFIG_HOME="${XDG_CONFIG_HOME:-$HOME/.config}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/docent-target}"
built="$CARGO_TARGET_DIR/release/docent"

if [ "$BUILD" = 1 ]; then
    # shellcheck source=scripts/prereqs.sh
    source scripts/prereqs.sh
    docent_prereqs
    if [ ! -x "$built" ]; then
        say "building docent in release mode; the first build takes about 40–100 minutes on 2 cores"
    fi
    cargo build --release --locked --quiet --bin docent
fi
[ -x "$built" ] || die "no docent binary at $built" \
    "hint: run 'bash scripts/install.sh' without --no-build (or 'bash scripts/demo.sh') first"

# The binary: copied (not linked, so that `cargo clean` does not break it), and replaced by a
# rename so that a docent running from it keeps working.
mkdir -p "$BIN_DIR" || die "cannot create $BIN_DIR"
tmp="$(mktemp "$BIN_DIR/.docent.XXXXXX")"
trap 'rm -f -- "$tmp"' EXIT
cp -- "$built" "$tmp"
chmod 755 "$tmp"
mv -f -- "$tmp" "$BIN_DIR/docent"
trap - EXIT
docent="$BIN_DIR/docent"
echo "docent        $docent"

# Completions and manual pages, from the installed binary.
install_text() { # FILE, contents on stdin
    mkdir -p "$(dirname "$1")"
    cat >"$1.tmp" && mv -f -- "$1.tmp" "$1"
}
"$docent" completions bash | install_text "$DATA_HOME/bash-completion/completions/docent"
echo "bash          $DATA_HOME/bash-completion/completions/docent"
"$docent" completions zsh | install_text "$DATA_HOME/zsh/site-functions/_docent"
echo "zsh           $DATA_HOME/zsh/site-functions/_docent"
if command -v fish >/dev/null 2>&1 || [ -d "$CONFIG_HOME/fish" ]; then
    "$docent" completions fish | install_text "$CONFIG_HOME/fish/completions/docent.fish"
    echo "fish          $CONFIG_HOME/fish/completions/docent.fish"
fi
mkdir -p "$DATA_HOME/man/man1"
"$docent" man --dir "$DATA_HOME/man/man1" 2>/dev/null
echo "man pages     $DATA_HOME/man/man1/docent.1 (and one per subcommand)"

# What the shell still needs to find them.
case ":${PATH:-}:" in
    *":$BIN_DIR:"*) ;;
    *)
        say "warning: $BIN_DIR is not on your PATH; add it, e.g. for bash:"
        printf '    echo '\''export PATH="%s:$PATH"'\'' >> ~/.bashrc && . ~/.bashrc\n' "$BIN_DIR" >&2
        ;;
esac
case "${SHELL:-}" in
    */zsh)
        say "zsh: put this in ~/.zshrc before compinit to load the completions:"
        printf '    fpath=(%s $fpath)\n' "$DATA_HOME/zsh/site-functions" >&2
        ;;
esac
if [ "$(uname -s)" = Darwin ]; then
    say "macOS: 'man docent' needs $DATA_HOME/man in MANPATH"
fi
echo
echo "next: docent --help, or bash scripts/fetch-models.sh && docent index ~/Documents && docent"
