#!/usr/bin/env python3
"""Embedding throughput of all-MiniLM-L6-v2 with sentence-transformers on the CPU.

A baseline for docent's own embedder. Prints one JSON line on stdout:

    {"impl":"sentence-transformers","texts":N,"tokens":T,"seconds":S,"texts_per_s":...,
     "tokens_per_s":...,"threads":...,"batch_size":...}

`tokens` counts the tokens the model sees: special tokens included, after truncation to the
model's max_seq_length (256). `seconds` times `SentenceTransformer.encode` over all texts (it
sorts texts by length and pads each batch to its longest text); loading the model and one
warm-up batch are not timed.

    ~/.cache/docent-py/bin/python benches/embed_reference.py --texts 1000 --batch-size 32 [--input FILE]

--input: one text per line, either plain text or JSON lines (each line a JSON string, or an
object with a "text" field); --texts then caps how many are used. Without --input, --texts
synthetic chunk-like texts of 150-250 tokens are generated from a fixed seed.
--model: the model folder; default $DOCENT_MODELS/all-MiniLM-L6-v2, else the per-user data
directory used by scripts/fetch-models.sh. Nothing is fetched from the network.
"""

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MODEL_NAME = "all-MiniLM-L6-v2"

WORDS = (
    "the of and to in a is that for on with as by at from this be are was it an or which will "
    "shall may not any all such its their other under these those each within after before "
    "agreement contract owner architect contractor payment invoice fee schedule clause party "
    "parties notice period date completion works site drawings specification certificate "
    "insurance liability damages termination dispute arbitration law court library reading "
    "room roof repairs budget board council volunteers readers books shelves archive collection "
    "meeting minutes agenda action items report quarter revenue expenses receipts account bank "
    "transfer tax return deadline email reply thanks regards project team schedule delivery "
    "software release version update bug fix server database backup storage network password "
    "user account settings document page section chapter table figure appendix summary note "
    "question answer search index query result embedding model token chunk heading paragraph "
    "March April May June July September October November December Monday Friday week month "
    "year morning afternoon evening Linden Street Mill Lane Garden Zürich Köln Müller Françoise"
).split()


def default_model_dir() -> Path:
    if os.environ.get("DOCENT_MODELS"):
        base = Path(os.environ["DOCENT_MODELS"])
    elif sys.platform == "darwin":
        base = Path.home() / "Library/Application Support/docent/models"
    else:
        data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local/share")
        base = Path(data) / "docent/models"
    return base / MODEL_NAME


def read_texts(path: Path, limit: int | None) -> list[str]:
    texts = []
    with path.open(encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    first = next((line for line in lines if line.strip()), "")
    jsonl = first.lstrip().startswith(("{", '"'))
    for line in lines:
        if not line.strip():
            continue
        if jsonl:
            value = json.loads(line)
            texts.append(value["text"] if isinstance(value, dict) else str(value))
        else:
            texts.append(line)
        if limit is not None and len(texts) >= limit:
            break
    return texts


def synthetic_texts(n: int, tokenizer, seed: int) -> list[str]:
    """n paragraph-like texts whose token counts (special tokens included) lie in 150-250."""
    rng = random.Random(seed)

    def count(text: str) -> int:
        return len(tokenizer.encode(text).ids)

    texts = []
    for _ in range(n):
        target = rng.randint(150, 250)
        sentences: list[str] = []
        while count(" ".join(sentences)) < target:
            k = rng.randint(6, 22)
            words = [rng.choice(WORDS) for _ in range(k)]
            if rng.random() < 0.3:
                words.insert(rng.randrange(k), str(rng.randint(1, 2030)))
            sentence = " ".join(words)
            end = rng.choice([".", ".", ".", ";", "?", ":"])
            sentences.append(sentence[0].upper() + sentence[1:] + end)
        words = " ".join(sentences).split(" ")

        def finish(ws: list[str]) -> str:
            text = " ".join(ws)
            return text if text[-1] in ".;?:" else text + "."

        while count(finish(words)) > target:
            words.pop()
        texts.append(finish(words))
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=default_model_dir())
    ap.add_argument("--input", type=Path, help="plain text or JSON lines, one text per line")
    ap.add_argument("--texts", type=int, default=None,
                    help="number of synthetic texts (default 1000), or cap on --input texts")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--repeat", type=int, default=1,
                    help="timed runs; seconds is their median")
    args = ap.parse_args()

    import tokenizers
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    model = SentenceTransformer(str(args.model), device="cpu")
    model.eval()

    # tokenizer.json truncates at max_seq_length, like the model's own input pipeline.
    tok = tokenizers.Tokenizer.from_file(str(args.model / "tokenizer.json"))
    tok.enable_truncation(model.max_seq_length)
    tok.no_padding()
    counter = tokenizers.Tokenizer.from_file(str(args.model / "tokenizer.json"))
    counter.no_truncation()
    counter.no_padding()

    if args.input:
        texts = read_texts(args.input, args.texts)
    else:
        texts = synthetic_texts(args.texts if args.texts is not None else 1000, counter, args.seed)
    if not texts:
        sys.exit("no texts to embed")
    tokens = sum(len(e.ids) for e in tok.encode_batch(texts))

    model.encode(texts[: args.batch_size], batch_size=args.batch_size, show_progress_bar=False)
    runs = []
    for _ in range(max(1, args.repeat)):
        start = time.perf_counter()
        emb = model.encode(texts, batch_size=args.batch_size, show_progress_bar=False,
                           convert_to_numpy=True, normalize_embeddings=True)
        runs.append(time.perf_counter() - start)
        assert emb.shape[0] == len(texts)
    seconds = sorted(runs)[len(runs) // 2]

    print(json.dumps({
        "impl": "sentence-transformers",
        "texts": len(texts),
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "texts_per_s": round(len(texts) / seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "runs": [round(r, 3) for r in runs],
    }))


if __name__ == "__main__":
    main()
