#!/usr/bin/env bash
# Tests of scripts/prereqs.sh against stubbed package managers: what it installs, with which
# command, in which order, and what it prints when it cannot install. Runs in a second, compiles
# nothing, touches nothing outside a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
PREREQS="$PWD/scripts/prereqs.sh"

passed=0
cases=0
failed=0
fail() {
    printf 'FAIL %s: %s\n' "$CASE" "$*" >&2
    failed=$((failed + 1))
}

# A machine with only the named tools; package managers and sudo log their arguments to $LOG. Installing with a
# stub package manager puts stubs for protoc, cc, python3 and tmux in place, as a real one would.
new_machine() {
    CASE="$1"
    shift
    T="$(mktemp -d)"
    BIN="$T/bin"
    LOG="$T/log"
    mkdir -p "$BIN"
    : >"$LOG"
    local tool
    for tool in bash env uname sed head tr grep dirname cat mkdir chmod; do
        ln -s "$(command -v "$tool")" "$BIN/$tool"
    done
    for tool in "$@"; do stub "$tool"; done
}

stub() {
    local name="$1" uid
    case "$name" in
        apt-get | dnf | pacman | brew)
            cat >"$BIN/$name" <<EOF
#!$BASH
echo "$name \$*" >>"$LOG"
for a in "\$@"; do
    case "\$a" in
        protobuf-compiler | protobuf) printf '#!$BASH\nexit 0\n' >"$BIN/protoc" && chmod +x "$BIN/protoc" ;;
        build-essential | gcc) printf '#!$BASH\nexit 0\n' >"$BIN/cc" && chmod +x "$BIN/cc" ;;
        python3 | python) printf '#!$BASH\nexit 0\n' >"$BIN/python3" && chmod +x "$BIN/python3" ;;
        tmux) printf '#!$BASH\nexit 0\n' >"$BIN/tmux" && chmod +x "$BIN/tmux" ;;
    esac
done
exit \${STUB_FAIL:-0}
EOF
            ;;
        sudo)
            cat >"$BIN/sudo" <<EOF
#!$BASH
echo "sudo \$*" >>"$LOG"
[ "\$1" = -n ] && shift
exec "\$@"
EOF
            ;;
        id-user | id-root)
            name=id
            [ "$1" = id-root ] && uid=0 || uid=1000
            printf '#!%s\necho %s\n' "$BASH" "$uid" >"$BIN/id"
            ;;
        *)
            printf '#!%s\nexit 0\n' "$BASH" >"$BIN/$name"
            ;;
    esac
    chmod +x "$BIN/$name"
}

# run ARGS...: runs prereqs.sh on the stub machine, without a terminal; sets RC, ERR.
run() {
    set +e
    ERR="$(env -i PATH="$BIN" HOME="$T" CI="${CI_VALUE:-true}" STUB_FAIL="${STUB_FAIL:-0}" \
        "$BASH" "$PREREQS" "$@" </dev/null 2>&1 >/dev/null)"
    RC=$?
    set -e
}

expect_rc() { [ "$RC" = "$1" ] || fail "exit status $RC, expected $1; output:
$ERR"; }
expect_err() { grep -qF -- "$1" <<<"$ERR" || fail "no '$1' in the output:
$ERR"; }
expect_log() { grep -qxF -- "$1" "$LOG" || fail "no '$1' in the log:
$(cat "$LOG")"; }
expect_no_log() { ! grep -qF -- "$1" "$LOG" || fail "'$1' in the log:
$(cat "$LOG")"; }
done_case() {
    rm -rf "$T"
    cases=$((cases + 1))
    if [ "$failed" = "$1" ]; then passed=$((passed + 1)); fi
}

# Debian as root: apt-get update first, then one install of what is missing; nothing else left.
f=$failed
new_machine debian-root apt-get cargo id-root
run --tests
expect_rc 0
[ "$(head -n 1 "$LOG")" = "apt-get update -qq" ] || fail "apt-get update is not first: $(cat "$LOG")"
expect_log "apt-get install -y -qq build-essential protobuf-compiler python3 python3-pip tmux"
expect_err "all set"
done_case "$f"

# Nothing missing: no package manager is called, nothing printed.
f=$failed
new_machine complete apt-get cargo id-user cc protoc python3 tmux
run --tests
expect_rc 0
[ -z "$ERR" ] || fail "printed: $ERR"
[ ! -s "$LOG" ] || fail "called: $(cat "$LOG")"
done_case "$f"

# tmux only for the tests.
f=$failed
new_machine no-tmux apt-get cargo id-user cc protoc python3
run
expect_rc 0
[ ! -s "$LOG" ] || fail "called: $(cat "$LOG")"
done_case "$f"

# Not root, sudo there, in CI: sudo -n, so that a password prompt can never hang the run.
f=$failed
new_machine ci-sudo apt-get sudo cargo id-user cc python3 tmux
run
expect_rc 0
expect_log "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq"
expect_log "apt-get install -y -qq protobuf-compiler"
done_case "$f"

# Not root, no sudo: stops at once with the exact command.
f=$failed
new_machine no-sudo apt-get cargo id-user cc python3 tmux
run
expect_rc 1
expect_err "sudo apt-get update && sudo apt-get install -y protobuf-compiler"
expect_no_log "apt-get"
done_case "$f"

# The install fails: the command to run by hand, and a non-zero exit.
f=$failed
new_machine install-fails apt-get cargo id-root cc python3
STUB_FAIL=1 run
expect_rc 1
expect_err "could not install protobuf-compiler; run this, then try again:"
expect_err "apt-get update && apt-get install -y protobuf-compiler"
done_case "$f"

# --check installs nothing and names the command.
f=$failed
new_machine check-only apt-get cargo id-root python3
run --check
expect_rc 1
expect_err "apt-get install -y build-essential protobuf-compiler"
[ ! -s "$LOG" ] || fail "called: $(cat "$LOG")"
done_case "$f"

# Fedora and Arch name the packages their own way.
f=$failed
new_machine fedora dnf cargo id-root python3
run
expect_rc 0
expect_log "dnf install -y -q gcc protobuf-compiler"
done_case "$f"

f=$failed
new_machine arch pacman cargo id-root python3
run --tests
expect_rc 0
expect_log "pacman -S --needed --noconfirm gcc protobuf tmux"
done_case "$f"

# No Rust: the rustup command, and the rest is still installed.
f=$failed
new_machine no-rust apt-get id-root cc python3
run
expect_rc 1
expect_err "curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh"
expect_log "apt-get install -y -qq protobuf-compiler"
done_case "$f"

# No package manager at all: what to install, and nothing waited for.
f=$failed
new_machine bare cargo id-user python3
run
expect_rc 1
expect_err "protoc is missing"
expect_err "protobuf-compiler"
done_case "$f"

printf 'prereqs.sh: %d passed, %d failed\n' "$passed" "$((cases - passed))"
[ "$failed" = 0 ]
