#!/usr/bin/env bash
# OCR throughput and peak memory: every scan in fixtures-scanned/ (COPIES times) through the
# isolated worker, THREADS at a time, as `docent index` runs them (one worker per file, default
# [ocr] settings: 300 dpi, eng, confidence 30, one tesseract thread per page).
#
#   cargo build --release --example pdf-worker -p docent-parse   (or use the docent binary)
#   scripts/bench-ocr.sh target/release/examples/pdf-worker [COPIES] [THREADS]
#
# Prints pages recognised, wall time, pages/minute, and the largest peak RSS of one worker
# (including the pdftoppm/tesseract processes it started: GNU time's maximum resident set of
# the process tree's largest member).
set -euo pipefail

worker="$1"
copies="${2:-3}"
threads="${3:-2}"
root="$(cd "$(dirname "$0")/.." && pwd)"
tesseract="$(command -v tesseract)"
pdftoppm="$(command -v pdftoppm)"
psm=3
tesseract --list-langs 2>/dev/null | grep -qx osd && psm=1
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

job() {
    printf '{"kind":"%s","memory_bytes":2147483648,"cpu_secs":600,"time_ms":600000,"ocr":{"tesseract":"%s","pdftoppm":"%s","languages":"eng","psm":%s,"min_confidence":30.0,"dpi":300,"max_pixels":60000000}}\n' \
        "$1" "$tesseract" "$pdftoppm" "$psm"
}
export -f job
export tesseract pdftoppm psm worker tmp

one() {
    local file="$1" n="$2" kind=image
    case "$file" in *.pdf) kind=pdf ;; esac
    { job "$kind"; cat "$file"; } |
        /usr/bin/time -f "%M" -o "$tmp/rss-$n" "$worker" __pdf-worker >"$tmp/out-$n"
}
export -f one

files=()
for _ in $(seq "$copies"); do
    for f in "$root"/fixtures-scanned/*.pdf "$root"/fixtures-scanned/*.jpg "$root"/fixtures-scanned/*.tif; do
        files+=("$f")
    done
done
start=$(date +%s.%N)
for i in "${!files[@]}"; do printf '%s\t%s\n' "${files[$i]}" "$i"; done |
    xargs -P "$threads" -L 1 bash -c 'one "$0" "$1"'
end=$(date +%s.%N)

pages=$(cat "$tmp"/out-* | python3 -c '
import json, sys
print(sum(len(json.loads(line).get("ocr_pages", [])) for line in sys.stdin if line.strip()))')
rss=$(cat "$tmp"/rss-* | sort -n | tail -1)
python3 - "$start" "$end" "$pages" "$rss" "${#files[@]}" "$threads" <<'EOF'
import sys
start, end, pages, rss, files, threads = sys.argv[1:]
secs = float(end) - float(start)
print(f"{files} files, {pages} pages recognised in {secs:.1f} s with {threads} workers: "
      f"{int(pages) / secs * 60:.1f} pages/minute; peak RSS of one worker {int(rss) / 1024:.0f} MiB")
EOF
