#!/usr/bin/env python3
"""Reference embeddings of all-MiniLM-L6-v2 for docent-embed's tests.

Writes minilm_reference.json next to this script: for each text, the number of tokens the model
sees (special tokens included, after truncation to max_seq_length) and the sentence-transformers
embedding, L2-normalised, rounded to 7 significant digits.

    python3 -m venv ~/.cache/docent-py
    ~/.cache/docent-py/bin/pip install sentence-transformers
    ~/.cache/docent-py/bin/python crates/embed/tests/data/make_reference.py [--model DIR] [--out FILE]

The model loads from the local models directory only (no hub access): --model, else
$DOCENT_MODELS/all-MiniLM-L6-v2, else the per-user data directory used by scripts/fetch-models.sh.
Inference runs on the CPU, one text at a time (no padding).
"""

import argparse
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MODEL_NAME = "all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 256
DIM = 384

LONG_TEXT = (
    "The Linden Street Library reading room reopened in March after eight months of repairs. "
    "The roof over the east wing had leaked for years, and the 2023 survey found water damage in "
    "the joists, the plaster ceiling and two of the original oak bookcases. The board approved a "
    "budget of 412,000 euros, of which the city covered sixty percent and the Friends of the "
    "Library raised the rest through a book sale, a winter concert and a long list of small "
    "donations. Work began in July. The contractor replaced the roof membrane, rebuilt the gutters, "
    "treated the timber and restored the ceiling using lime plaster, as the heritage office "
    "required. The bookcases were taken apart, dried slowly in a workshop outside town and put "
    "back with new brass fittings. During the closure the library ran a temporary lending desk in "
    "the community centre on Mill Lane, open four afternoons a week, and volunteers delivered "
    "books to readers who could not travel. Children's story hour moved to the primary school hall. "
    "Some problems remained. The heating system, installed in 1987, struggled to keep the larger "
    "room warm in January, and the lift to the first floor was out of service for three weeks "
    "while a replacement part was shipped from Italy. Readers complained about the noise of the "
    "scaffolding and about the reduced opening hours, but most said the new lighting made the "
    "effort worthwhile. The tall windows on the south side, blocked for decades by shelving, now "
    "let daylight reach the study tables again. The library has also used the occasion to "
    "rethink its collection. About four thousand outdated reference books were sold or recycled, "
    "the local history archive was moved to climate-controlled cabinets, and a small makerspace "
    "with two 3D printers and a sewing machine opened in the former storeroom. Membership rose by "
    "eleven percent in the first month after reopening. The next phase, planned for the spring of "
    "next year, covers the west wing, the accessible entrance on Garden Street and a new "
    "children's corner. The board will publish the tender documents in November and expects to "
    "choose a contractor before the end of the year. Until then, the west wing stays open as "
    "usual, and the librarians ask readers to return borrowed items on time, to report any leaks "
    "they notice, and to keep suggesting books that the library should buy for its shelves."
)

TEXTS = [
    # short query
    "When is the final payment due?",
    # contract sentence
    "The Owner shall pay 30% of the fee on signing of this Agreement, 40% on completion of the "
    "structural works and the remaining 30% within fourteen (14) days of the Architect's final "
    "certificate.",
    # email-like text with header lines
    "From: Zoë Müller <zoe.mueller@example.org>\nSubject: Re: invoice #2024-117\n\nHi Tom,\n"
    "thanks for the reminder. I paid the invoice yesterday; the bank transfer should arrive by "
    "Friday.\n\nBest,\nZoë",
    # Markdown heading and list
    "# Meeting notes\n\n## Action items\n\n- Send the signed contract to **Françoise**\n"
    "- Book the room for 12 May\n- [ ] Check the *insurance* certificate\n\n1. First\n2. Second",
    # accents and umlauts
    "Zoë Müller und Françoise Lefèvre trafen sich im Café in Köln; später fuhren sie nach Zürich "
    "und São Paulo. Ærøskøbing, Łódź, naïve, façade, jalapeño.",
    # CJK
    "図書館は月曜日から金曜日まで午前九時に開館します。我们明天下午三点在会议室开会。"
    "도서관은 오늘 문을 닫습니다.",
    # Cyrillic
    "Библиотека на Липовой улице снова открылась после ремонта крыши. Оплата по договору — до "
    "15 марта.",
    # emoji
    "Great job on the launch 🎉🚀! The team 👩‍💻👨‍💻 shipped on time ✅ — coffee ☕ is on me. 👍🏽",
    # numbers and dates
    "Invoice 2024-0117 dated 2024-03-15: total €1,234.56 (VAT 19% = €197.53), due 15/04/2024. "
    "Ref. 0049-3371-8820, 3.14159, -42, 1e-6, 10:30 am on 1 April 1999.",
    # code-ish text
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * x).collect();\n"
    "    println!(\"{:?}\", v);\n}\n// TODO: handle Err(e) => return Err(e.into());",
    # long text (truncated at 256 tokens)
    LONG_TEXT,
    # whitespace runs and newlines
    "  First line   with   runs of spaces\n\n\n\tTabbed line\r\nWindows line\u00a0non-breaking"
    "\u200bzero-width   \n\n   last line   ",
    # single word
    "Invoice",
    # punctuation-heavy
    "Wait... what?!? (Really?) -- \"yes\" / 'no'; [maybe] {perhaps} <never> ... !!! ??? ;-) #$%&*@^~`|",
    # URL
    "https://www.example.com/docs/contracts/2024/agreement-final_v2.pdf?download=1&lang=en#page=3",
    # mixed case
    "ThE qUiCk BrOwN fOx JUMPS over the LAZY dog; iPhone, McDonald, NASA, eBay, JavaScript.",
    # very long word
    "The German word Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft "
    "and the hash a3f5c9e1b7d2048f6e9c1a0b3d5f7e9c2b4a6d8f0e1c3b5a7d9f1e2c4b6a8d0f are long.",
    # plain paragraph
    "Please keep the receipts for all project expenses. The accountant needs them before the "
    "quarterly VAT return is filed at the end of the month.",
    # question in French
    "Quand la facture finale doit-elle être payée ? Merci de répondre avant vendredi.",
    # list of names and addresses
    "Contact: Dr. A. O'Neill, 221B Baker Street, London NW1 6XE, UK; tel. +44 20 7946 0958.",
]


def default_model_dir() -> Path:
    if os.environ.get("DOCENT_MODELS"):
        base = Path(os.environ["DOCENT_MODELS"])
    elif sys.platform == "darwin":
        base = Path.home() / "Library/Application Support/docent/models"
    else:
        data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local/share")
        base = Path(data) / "docent/models"
    return base / MODEL_NAME


def round_sig(x: float, digits: int = 7) -> float:
    return float(f"{x:.{digits}g}")


def main() -> None:
    here = Path(__file__).resolve().parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=default_model_dir())
    ap.add_argument("--out", type=Path, default=here / "minilm_reference.json")
    args = ap.parse_args()

    import numpy as np
    import sentence_transformers
    import tokenizers
    import torch
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model = SentenceTransformer(str(args.model), device="cpu")
    model.eval()
    print(f"model: {args.model}")
    print(f"max_seq_length: {model.max_seq_length}")
    assert model.max_seq_length == MAX_SEQ_LENGTH, model.max_seq_length

    # The pipeline ends with a Normalize module, so embeddings are unit vectors even without
    # normalize_embeddings=True.
    modules = json.loads((args.model / "modules.json").read_text())
    types = [m["type"].rsplit(".", 1)[-1] for m in modules]
    print(f"modules: {types}")
    assert types == ["Transformer", "Pooling", "Normalize"], types

    # Token counts: model.tokenizer with truncation at max_seq_length, checked against the
    # attention mask sentence-transformers feeds the model and against tokenizer.json itself.
    raw = tokenizers.Tokenizer.from_file(str(args.model / "tokenizer.json"))
    counts = []
    for text in TEXTS:
        ids = model.tokenizer(text, truncation=True, max_length=model.max_seq_length)["input_ids"]
        # `preprocess` replaced `tokenize` in sentence-transformers 6.
        prep = getattr(model, "preprocess", None) or model.tokenize
        features = prep([text])
        assert features["input_ids"][0].tolist() == ids, text
        assert int(features["attention_mask"].sum()) == len(ids), text
        assert raw.encode(text).ids == ids, text
        counts.append(len(ids))

    # One text per batch: no padding in any input.
    emb = model.encode(TEXTS, batch_size=1, normalize_embeddings=True, convert_to_numpy=True)
    raw_emb = model.encode(TEXTS, batch_size=1, normalize_embeddings=False, convert_to_numpy=True)
    batched = model.encode(TEXTS, batch_size=len(TEXTS), normalize_embeddings=True, convert_to_numpy=True)
    assert emb.shape == (len(TEXTS), DIM), emb.shape
    norms = np.linalg.norm(raw_emb, axis=1)
    print(f"norms without normalize_embeddings: min {norms.min():.8f} max {norms.max():.8f}")
    assert np.allclose(norms, 1.0, atol=1e-5), norms
    print(f"max |normalised - pipeline output|: {np.abs(emb - raw_emb).max():.3g}")
    print(f"max |batch of 1 - batch of {len(TEXTS)}|: {np.abs(emb - batched).max():.3g}")
    assert np.abs(emb - batched).max() < 1e-5

    long_idx = TEXTS.index(LONG_TEXT)
    assert len(LONG_TEXT.split()) >= 380, len(LONG_TEXT.split())
    assert len(raw.encode(LONG_TEXT).ids) == MAX_SEQ_LENGTH
    untruncated = tokenizers.Tokenizer.from_file(str(args.model / "tokenizer.json"))
    untruncated.no_truncation()
    untruncated = untruncated.encode(LONG_TEXT).ids
    print(f"long text: {len(LONG_TEXT.split())} words, {len(untruncated)} tokens untruncated, "
          f"{counts[long_idx]} after truncation")
    assert counts[long_idx] == MAX_SEQ_LENGTH and len(untruncated) > MAX_SEQ_LENGTH

    items = []
    for text, n, vec in zip(TEXTS, counts, emb):
        values = [round_sig(float(x)) for x in vec]
        assert all(math.isfinite(v) for v in values)
        items.append({"text": text, "tokens": n, "embedding": values})

    header = {
        "model": MODEL_NAME,
        "producer": f"sentence-transformers {sentence_transformers.__version__}, "
        f"torch {torch.__version__}, CPU",
        "max_seq_length": model.max_seq_length,
    }
    # One item per line keeps the file small and its diffs readable.
    lines = ["{"]
    for k, v in header.items():
        lines.append(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)},")
    lines.append('  "items": [')
    for i, item in enumerate(items):
        sep = "," if i + 1 < len(items) else ""
        lines.append("    " + json.dumps(item, ensure_ascii=False, separators=(",", ":")) + sep)
    lines.append("  ]")
    lines.append("}")
    out = "\n".join(lines) + "\n"
    assert json.loads(out) == {**header, "items": items}
    args.out.write_text(out, encoding="utf-8")
    print(f"wrote {args.out} ({len(items)} items, {len(out.encode())} bytes)")
    for text, n in zip(TEXTS, counts):
        print(f"  {n:4d}  {text[:60]!r}")


if __name__ == "__main__":
    main()
