#!/usr/bin/env bash
# Generates the scanned fixtures in fixtures-scanned/ from the fictional PDFs in fixtures/pdf/:
# their pages rendered at 300 dpi with poppler's pdftoppm, then degraded like real scans with
# Pillow (speckle noise, a slight skew, a page turned 90°, JPEG compression, bilevel CCITT G4) and
# wrapped into PDFs with img2pdf (images embedded as they are, no re-encoding) and poppler's
# pdfunite.
#
# Needs Debian packages: poppler-utils img2pdf python3-pil (run with the system python3).
#   apt install poppler-utils img2pdf python3-pil
# The outputs are committed (about 1 MB); tests read them, they never run this script.
# Deterministic: noise comes from a fixed seed; img2pdf writes no dates when SOURCE_DATE_EPOCH
# is set.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/fixtures/pdf"
out="$root/fixtures-scanned"
py=/usr/bin/python3
for tool in pdftoppm pdfseparate pdfunite img2pdf; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt install poppler-utils img2pdf)" >&2; exit 1; }
done
"$py" -c 'import PIL' 2>/dev/null || { echo "missing Pillow (apt install python3-pil)" >&2; exit 1; }

export SOURCE_DATE_EPOCH=1730419200
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

pdftoppm -r 300 -gray "$src/linden-contract.pdf" "$tmp/contract"
pdftoppm -r 300 -gray "$src/roof-inspection.pdf" "$tmp/roof"

"$py" - "$tmp" <<'EOF'
import random, sys
from PIL import Image, ImageFilter

tmp = sys.argv[1]
rng = random.Random(20241002)

def load(name):
    return Image.open(f"{tmp}/{name}.pgm").convert("L")

def bilevel(img):
    return img.point(lambda v: 255 if v > 160 else 0).convert("1", dither=Image.Dither.NONE)

def speckle(img, count):
    img = img.copy()
    px = img.load()
    w, h = img.size
    for _ in range(count):
        x, y = rng.randrange(w - 3), rng.randrange(h - 3)
        v = 0 if rng.random() < 0.7 else 255
        for dx in range(rng.randrange(1, 4)):
            for dy in range(rng.randrange(1, 4)):
                px[x + dx, y + dy] = v
    return img

def skew(img, degrees):
    return img.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)

def grain(img, amount):
    """Mild greyscale noise, as a flatbed scanner's sensor adds."""
    noise = Image.effect_noise(img.size, amount).convert("L")
    return Image.blend(img, noise, 0.12).filter(ImageFilter.SMOOTH)

def g4(img, path):
    img.save(path, compression="group4", dpi=(300, 300))

# The contract, scanned: page 1 skewed 1.5° with speckles, page 2 clean, page 3 turned 90°.
g4(bilevel(speckle(skew(load("contract-1"), 1.5), 1500)), f"{tmp}/c1.tif")
g4(bilevel(load("contract-2")), f"{tmp}/c2.tif")
g4(bilevel(load("contract-3")).rotate(90, expand=True), f"{tmp}/c3.tif")

# The roof report's first page photographed: grain, a 0.8° skew, strong JPEG compression.
grain(skew(load("roof-1"), -0.8), 40).save(f"{tmp}/roof-photo.jpg", quality=30, dpi=(300, 300))

# The whole roof report as a two-page bilevel TIFF (as a fax or document scanner writes it).
pages = [bilevel(load("roof-1")), bilevel(load("roof-2"))]
pages[0].save(f"{tmp}/roof.tif", save_all=True, append_images=pages[1:],
              compression="group4", dpi=(300, 300))
EOF

img2pdf --producer "" --creationdate "2024-11-01" --moddate "2024-11-01" \
    "$tmp/c1.tif" "$tmp/c2.tif" "$tmp/c3.tif" -o "$out/contract-scanned.pdf"
cp "$tmp/roof-photo.jpg" "$out/roof-photo.jpg"
cp "$tmp/roof.tif" "$out/roof-inspection.tif"

# Mixed: the contract's text pages 1 and 3 around a scan of page 2.
pdfseparate -f 1 -l 3 "$src/linden-contract.pdf" "$tmp/text-%d.pdf"
img2pdf --producer "" --creationdate "2024-11-01" --moddate "2024-11-01" \
    "$tmp/c2.tif" -o "$tmp/scan-2.pdf"
pdfunite "$tmp/text-1.pdf" "$tmp/scan-2.pdf" "$tmp/text-3.pdf" "$out/contract-mixed.pdf"

ls -l "$out"
du -ch "$out"/* | tail -1
