#!/usr/bin/env bash
# Tests of scripts/install.sh with a stub cargo that "builds" a stub docent: where the binary,
# the completions and the manual pages go, the PATH warning, and the errors. Compiles nothing,
# writes only inside a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
INSTALL="$PWD/scripts/install.sh"

cases=0
passed=0
failed=0
fail() {
    printf 'FAIL %s: %s\n' "$CASE" "$*" >&2
    failed=$((failed + 1))
}

# A home folder and a PATH with only the tools install.sh needs, plus a stub cargo that writes
# a stub docent into $CARGO_TARGET_DIR/release (version VERSION) and logs its arguments.
new_machine() {
    CASE="$1"
    VERSION="${2:-1}"
    T="$(mktemp -d)"
    BIN="$T/tools"
    LOG="$T/log"
    mkdir -p "$BIN" "$T/home"
    : >"$LOG"
    local tool
    for tool in bash env uname sed head tr grep dirname cat mkdir mktemp cp chmod mv rm id; do
        ln -s "$(command -v "$tool")" "$BIN/$tool"
    done
    for tool in cc protoc python3; do printf '#!%s\nexit 0\n' "$BASH" >"$BIN/$tool"; done
    cat >"$BIN/cargo" <<EOF
#!$BASH
echo "cargo \$*" >>"$LOG"
mkdir -p "\$CARGO_TARGET_DIR/release"
cat >"\$CARGO_TARGET_DIR/release/docent" <<'DOCENT'
#!$BASH
# stub docent, version $VERSION
case "\$1" in
    completions) echo "# \$2 completions for docent: index search ask" ;;
    man)
        [ "\$2" = --dir ] || { echo ".TH docent 1"; exit 0; }
        echo ".TH docent 1" >"\$3/docent.1"
        echo ".TH docent-index 1" >"\$3/docent-index.1"
        echo "manual pages written to \$3" >&2
        ;;
esac
DOCENT
chmod +x "\$CARGO_TARGET_DIR/release/docent"
EOF
    chmod +x "$BIN"/*
}

# run ARGS...: install.sh on the stub machine; sets RC, OUT, ERR.
run() {
    set +e
    env -i PATH="${RUN_PATH:-$BIN}" HOME="$T/home" CI=true SHELL=/bin/bash \
        CARGO_TARGET_DIR="$T/target" "$BASH" "$INSTALL" "$@" </dev/null >"$T/out" 2>"$T/err"
    RC=$?
    set -e
    OUT="$(cat "$T/out")"
    ERR="$(cat "$T/err")"
}

expect_rc() { [ "$RC" = "$1" ] || fail "exit status $RC, expected $1; stderr:
$ERR"; }
expect_file() { [ -f "$1" ] || fail "no file $1; stdout:
$OUT"; }
expect_in() { grep -qF -- "$2" <<<"$1" || fail "no '$2' in:
$1"; }
expect_not_in() { ! grep -qF -- "$2" <<<"$1" || fail "'$2' in:
$1"; }
done_case() {
    rm -rf "$T"
    cases=$((cases + 1))
    if [ "$failed" = "$1" ]; then passed=$((passed + 1)); fi
}

# A fresh home: a locked release build, then the binary, completions and man pages in the
# per-user folders, and a warning that ~/.local/bin is not on the PATH.
f=$failed
new_machine fresh
run
expect_rc 0
[ "$(cat "$LOG")" = "cargo build --release --locked --quiet --bin docent" ] ||
    fail "cargo was called as: $(cat "$LOG")"
H="$T/home"
expect_file "$H/.local/bin/docent"
[ -x "$H/.local/bin/docent" ] || fail "the binary is not executable"
expect_file "$H/.local/share/bash-completion/completions/docent"
expect_in "$(cat "$H/.local/share/bash-completion/completions/docent")" "bash completions for docent"
expect_file "$H/.local/share/zsh/site-functions/_docent"
expect_file "$H/.local/share/man/man1/docent.1"
expect_file "$H/.local/share/man/man1/docent-index.1"
[ ! -e "$H/.config/fish" ] || fail "fish completions without fish"
expect_in "$ERR" "$H/.local/bin is not on your PATH"
expect_in "$ERR" "export PATH=\"$H/.local/bin:\$PATH\""
done_case "$f"

# The bin folder on the PATH: no warning. Installing again replaces the binary.
f=$failed
new_machine on-path 2
mkdir -p "$T/home/.local/bin"
printf 'old\n' >"$T/home/.local/bin/docent"
RUN_PATH="$BIN:$T/home/.local/bin" run
expect_rc 0
expect_not_in "$ERR" "not on your PATH"
expect_in "$(cat "$T/home/.local/bin/docent")" "stub docent, version 2"
[ -z "$(ls -A "$T/home/.local/bin" | grep -v '^docent$')" ] || fail "left behind: $(ls -A "$T/home/.local/bin")"
done_case "$f"

# --bin-dir and fish.
f=$failed
new_machine bin-dir
printf '#!%s\nexit 0\n' "$BASH" >"$BIN/fish"
chmod +x "$BIN/fish"
run --bin-dir "$T/elsewhere"
expect_rc 0
expect_file "$T/elsewhere/docent"
[ ! -e "$T/home/.local/bin/docent" ] || fail "installed into ~/.local/bin too"
expect_file "$T/home/.config/fish/completions/docent.fish"
done_case "$f"

# --no-build without a build: what to run instead, and nothing installed.
f=$failed
new_machine no-build
run --no-build
expect_rc 1
expect_in "$ERR" "no docent binary at $T/target/release/docent"
expect_in "$ERR" "hint:"
[ ! -s "$LOG" ] || fail "cargo was called"
[ ! -e "$T/home/.local/bin/docent" ] || fail "installed something"
done_case "$f"

# A missing prerequisite stops before cargo runs, with the command to run.
f=$failed
new_machine no-protoc
rm "$BIN/protoc"
run
expect_rc 1
expect_in "$ERR" "protoc"
[ ! -s "$LOG" ] || fail "cargo was called"
done_case "$f"

printf 'install.sh: %d passed, %d failed\n' "$passed" "$((cases - passed))"
[ "$failed" = 0 ]
