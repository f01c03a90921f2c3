#!/usr/bin/env bash
# What docent needs before the first compile, checked in seconds: Rust (cargo, and the toolchain
# that rust-toolchain.toml names), a C compiler (bundled SQLite, zstd, lz4), protoc (LanceDB's
# build scripts), Python 3 with pip (scripts/fetch-models.sh) and, for the tests, tmux.
#
# What is missing is installed with the system's package manager (apt-get, dnf, pacman,
# Homebrew), with sudo only when not root and sudo is there; otherwise it stops at once and
# prints the exact command to run. In CI (CI=true) or without a terminal on standard input
# nothing ever waits for an answer or a password.
#
# Sourced by scripts/demo.sh, scripts/test.sh, scripts/install.sh and .ci/run, which call
#   docent_prereqs [--tests]
# Run on its own: bash scripts/prereqs.sh [--tests] [--check]
#   --tests   also tmux (the terminal-interface tests need it)
#   --check   only report what is missing, install nothing (exit 1 when something is)
# DOCENT_NO_INSTALL=1 does the same as --check for every caller.

_prereq_say() { printf 'prereqs: %s\n' "$*" >&2; }

# The toolchain rust-toolchain.toml pins (e.g. 1.95.0), or nothing.
_prereq_toolchain() {
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    sed -n 's/^[[:space:]]*channel[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' \
        "$root/rust-toolchain.toml" 2>/dev/null | head -n 1
}

# Which package manager this machine has: apt, dnf, pacman, brew, or nothing.
_prereq_manager() {
    if [ "$(uname -s)" = Darwin ]; then
        command -v brew >/dev/null 2>&1 && echo brew
        return 0
    fi
    local m
    for m in apt-get dnf pacman brew; do
        if command -v "$m" >/dev/null 2>&1; then
            case "$m" in
                apt-get) echo apt ;;
                *) echo "$m" ;;
            esac
            return 0
        fi
    done
}

# The package that provides WHAT (protoc, cc, python, pip, tmux) under manager MGR.
_prereq_package() {
    local what="$1" mgr="$2"
    case "$mgr:$what" in
        apt:protoc) echo protobuf-compiler ;;
        apt:cc) echo build-essential ;;
        apt:python) echo python3 ;;
        apt:pip) echo python3-pip ;;
        dnf:protoc) echo protobuf-compiler ;;
        dnf:cc) echo gcc ;;
        dnf:python) echo python3 ;;
        dnf:pip) echo python3-pip ;;
        pacman:protoc) echo protobuf ;;
        pacman:cc) echo gcc ;;
        pacman:python) echo python ;;
        pacman:pip) echo python-pip ;;
        brew:protoc) echo protobuf ;;
        brew:python | brew:pip) echo python ;;
        brew:cc) echo gcc ;;
        *:tmux) echo tmux ;;
        # cc on macOS comes from the Command Line Tools, not from Homebrew.
        *) return 1 ;;
    esac
}

# The command that installs PACKAGES... under MGR, as one line (with sudo when needed).
_prereq_install_line() {
    local mgr="$1"
    shift
    local sudo=""
    if [ "$mgr" != brew ] && [ "$(id -u)" != 0 ]; then sudo="sudo "; fi
    case "$mgr" in
        apt) echo "${sudo}apt-get update && ${sudo}apt-get install -y $*" ;;
        dnf) echo "${sudo}dnf install -y $*" ;;
        pacman) echo "${sudo}pacman -S --needed --noconfirm $*" ;;
        brew) echo "brew install $*" ;;
    esac
}

_prereq_interactive() {
    [ "${CI:-}" != true ] && [ -t 0 ]
}

# Runs the install for MGR and PACKAGES...; returns non-zero when it cannot or it fails.
_prereq_install() {
    local mgr="$1"
    shift
    local sudo=()
    if [ "$mgr" != brew ] && [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            _prereq_say "not root, and sudo is not installed"
            return 1
        }
        if _prereq_interactive; then sudo=(sudo); else sudo=(sudo -n); fi
    fi
    case "$mgr" in
        apt)
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
                "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
            ;;
        dnf) "${sudo[@]}" dnf install -y -q "$@" ;;
        pacman) "${sudo[@]}" pacman -S --needed --noconfirm "$@" ;;
        brew) HOMEBREW_NO_AUTO_UPDATE=1 brew install "$@" ;;
        *) return 1 ;;
    esac
}

# What is missing now, as words: protoc cc python pip tmux cargo toolchain.
_prereq_missing() {
    local tests="$1" want
    command -v cargo >/dev/null 2>&1 || echo cargo
    want="$(_prereq_toolchain)"
    if [ -n "$want" ] && command -v rustup >/dev/null 2>&1; then
        rustup toolchain list 2>/dev/null | grep -q "^$want" || echo toolchain
    fi
    command -v cc >/dev/null 2>&1 || echo cc
    command -v protoc >/dev/null 2>&1 || echo protoc
    if ! command -v python3 >/dev/null 2>&1; then
        echo python
        echo pip
    elif ! python3 -m pip --version >/dev/null 2>&1; then
        echo pip
    fi
    if [ "$tests" = 1 ]; then command -v tmux >/dev/null 2>&1 || echo tmux; fi
}

docent_prereqs() {
    local tests=0 check=0 arg
    for arg in "$@"; do
        case "$arg" in
            --tests) tests=1 ;;
            --check) check=1 ;;
            *)
                _prereq_say "unknown option $arg (use --tests, --check)"
                return 2
                ;;
        esac
    done
    [ "${DOCENT_NO_INSTALL:-}" = 1 ] && check=1

    local missing
    missing="$(_prereq_missing "$tests" | tr '\n' ' ')"
    missing="${missing% }"
    [ -n "$missing" ] || return 0

    local mgr os
    mgr="$(_prereq_manager)"
    os="$(uname -s)"
    local failed=0 w
    local packages=()
    local manual=()
    for w in $missing; do
        case "$w" in
            cargo)
                manual+=("Rust (cargo) is not installed; install it with rustup, then open a new shell:"
                    "    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh")
                ;;
            toolchain)
                local want
                want="$(_prereq_toolchain)"
                if [ "$check" = 1 ]; then
                    manual+=("the Rust toolchain $want (rust-toolchain.toml) is not installed:"
                        "    rustup toolchain install $want --profile minimal --component rustfmt,clippy")
                else
                    _prereq_say "installing the Rust toolchain $want (rust-toolchain.toml)"
                    rustup toolchain install "$want" --profile minimal --component rustfmt,clippy >&2 ||
                        manual+=("could not install the Rust toolchain $want; run:"
                            "    rustup toolchain install $want --profile minimal --component rustfmt,clippy")
                fi
                ;;
            cc)
                if [ "$os" = Darwin ]; then
                    manual+=("no C compiler; install Apple's Command Line Tools:" "    xcode-select --install")
                elif [ -n "$mgr" ]; then
                    packages+=("$(_prereq_package cc "$mgr")")
                else
                    manual+=("no C compiler (cc): install gcc or clang with your package manager")
                fi
                ;;
            *)
                if [ -n "$mgr" ]; then
                    packages+=("$(_prereq_package "$w" "$mgr")")
                else
                    manual+=("$w is missing: install it with your package manager")
                fi
                ;;
        esac
    done

    # One package may serve two needs (Homebrew's python brings pip).
    local unique=() p q seen
    for p in "${packages[@]+"${packages[@]}"}"; do
        seen=0
        for q in "${unique[@]+"${unique[@]}"}"; do [ "$p" = "$q" ] && seen=1; done
        [ "$seen" = 1 ] || unique+=("$p")
    done

    if [ ${#unique[@]} -gt 0 ]; then
        local line
        line="$(_prereq_install_line "$mgr" "${unique[@]}")"
        if [ "$check" = 1 ]; then
            manual+=("missing: $missing; install with:" "    $line")
        else
            _prereq_say "missing: $missing; installing: $line"
            if ! _prereq_install "$mgr" "${unique[@]}" >&2; then
                manual+=("could not install ${unique[*]}; run this, then try again:" "    $line")
            fi
        fi
    elif [ -z "$mgr" ] && [ "$os" = Darwin ]; then
        manual+=("Homebrew (https://brew.sh) installs the rest: brew install protobuf python tmux")
    fi

    if [ ${#manual[@]} -gt 0 ]; then
        for w in "${manual[@]}"; do printf 'prereqs: %s\n' "$w" >&2; done
        if [ -z "$mgr" ] && [ "$os" != Darwin ]; then
            _prereq_say "the packages are: protoc (Debian/Ubuntu: protobuf-compiler; Fedora: protobuf-compiler; Arch: protobuf), a C compiler, python3 with pip, tmux (tests)"
        fi
        failed=1
    fi
    # Whatever was installed, say what is still missing.
    if [ "$failed" = 0 ]; then
        local still
        still="$(_prereq_missing "$tests" | tr '\n' ' ')"
        still="${still% }"
        if [ -n "$still" ]; then
            _prereq_say "still missing after the install: $still"
            failed=1
        fi
    fi
    if [ "$failed" = 1 ]; then
        _prereq_say "see README.md, \"Prerequisites\""
        return 1
    fi
    _prereq_say "all set"
}

# Run directly (not sourced): check, install, report.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    docent_prereqs "$@"
fi
