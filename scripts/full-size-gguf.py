#!/usr/bin/env python3
"""A synthetic Gemma 4 26B-A4B GGUF: random weights with the real tensor names, shapes, types and
metadata (30 layers, 2816 wide, 128 experts of which 8 are used, 262,144-token vocabulary with the
real tokenizer and chat template), for load-time, memory and speed benchmarks. The words it
produces are noise.

Requires: gguf==0.19.0 numpy==2.4.6. The metadata, tokenizer and chat template are copied from
llama.cpp's models/ggml-vocab-gemma-4.gguf (the vocabulary-only GGUF of gemma-4-26B-A4B that ships
with llama.cpp's sources); `--llama-src` points at those sources, by default cloned from the git
bundle inside node-llama-cpp (scripts/llama-reference-setup.sh) as scripts/tiny-gguf.py does.

The file is written tensor by tensor in chunks of `--chunk-mib` (default 64 MiB), so it needs little
memory; at the full 30 layers it is about 14.2 GB in Q4_0 (the default) and goes into a cache
folder, never into the repository:

  python3 scripts/full-size-gguf.py                    # ~/.cache/docent-bench/gemma4-26b-a4b-synthetic-Q4_0.gguf
  python3 scripts/full-size-gguf.py --layers 2 --out /tmp/g4-2l.gguf   # a 1.4 GB check of the layout
  python3 scripts/full-size-gguf.py --dry-run          # print the tensor list and the size only

Quantised blocks are random bytes with one scale per tensor (weights of standard deviation about
1/sqrt(fan-in)); norms are 1, the per-layer output scales 0.5-1, the router scale and per-expert
scales near 1. Only Q4_0 and Q8_0 are offered: every row length here (2816, 2112, 704) is a multiple
of 32, but 704 is not a multiple of 256, so K-quants would need per-tensor fallbacks.
"""
from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as Q

GGUF_VERSION = "0.19.0"

# Gemma 4 26B-A4B, as in its GGUF (llama.cpp models/ggml-vocab-gemma-4.gguf) and llama.cpp's loader.
N_EMBD = 2816
N_FF = 2112  # the dense MLP beside the experts
N_HEAD = 16
N_KV_SWA, N_KV_FULL = 8, 2
HD_SWA, HD_FULL = 256, 512
N_EXPERT, N_EXPERT_USED, N_FF_EXP = 128, 8, 704
N_LAYER = 30
ROT_FULL = 0.25  # partial rotary factor of the global layers


def llama_src(path: str | None) -> Path:
    if path:
        return Path(path)
    home = Path(os.environ.get("DOCENT_LLAMACPP", Path.home() / ".cache" / "docent-llamacpp"))
    dest = home / "llama.cpp-src"
    if not (dest / "models").is_dir():
        bundle = home / "node_modules" / "node-llama-cpp" / "llama" / "gitRelease.bundle"
        if not bundle.is_file():
            sys.exit(f"{bundle} not found; hint: run bash scripts/llama-reference-setup.sh or pass --llama-src")
        subprocess.run(["git", "-c", "init.defaultBranch=main", "-c", "advice.detachedHead=false",
                        "clone", "--quiet", str(bundle), str(dest)], check=True)
    return dest


def read_kv(path: Path) -> dict:
    """The key-value section of a GGUF file. (gguf's GGUFReader makes a numpy view per array item
    and needs ~1.4 GB for this 15 MB vocabulary; this keeps the peak low.)"""
    data = path.read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0]

    def string() -> str:
        nonlocal pos
        n = take("Q")
        v = data[pos:pos + n].decode("utf-8")
        pos += n
        return v

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t: int):
        nonlocal pos
        if t == 8:
            return string()
        if t == 9:
            it, n = take("I"), take("Q")
            if it == 8:
                return [string() for _ in range(n)]
            a = np.frombuffer(data, np.dtype("<" + scalar[it]), n, pos)
            pos += a.nbytes
            return a.tolist()
        return take(scalar[t])

    assert data[:4] == b"GGUF", path
    pos = 4
    take("I")  # version
    take("Q")  # tensor count
    out = {}
    for _ in range(take("Q")):
        k = string()
        out[k] = value(take("I"))
    return out


def is_swa(i: int, n_layer: int) -> bool:
    # The real pattern: five sliding-window layers, then one global (layers 5, 11, ..., 29). With
    # fewer layers the last one is made global so that both kinds are present.
    return (i + 1) % 6 != 0 and i != n_layer - 1


def tensor_plan(n_layer: int, n_vocab: int, qtype: Q) -> list[tuple[str, list[int], Q, str]]:
    """(name, ggml shape ne0-first, type, initialiser) in the order the converter writes them."""
    t: list[tuple[str, list[int], Q, str]] = []
    t.append(("token_embd.weight", [N_EMBD, n_vocab], qtype, "embd"))
    t.append(("rope_freqs.weight", [HD_FULL // 2], Q.F32, "rope_freqs"))
    for i in range(n_layer):
        p = f"blk.{i}."
        s = is_swa(i, n_layer)
        hd, kv = (HD_SWA, N_KV_SWA) if s else (HD_FULL, N_KV_FULL)
        t.append((p + "attn_norm.weight", [N_EMBD], Q.F32, "one"))
        t.append((p + "attn_q.weight", [N_EMBD, N_HEAD * hd], qtype, "w"))
        t.append((p + "attn_k.weight", [N_EMBD, kv * hd], qtype, "w"))
        if s:
            t.append((p + "attn_v.weight", [N_EMBD, kv * hd], qtype, "w"))
        t.append((p + "attn_output.weight", [N_HEAD * hd, N_EMBD], qtype, "w"))
        t.append((p + "attn_q_norm.weight", [hd], Q.F32, "one"))
        t.append((p + "attn_k_norm.weight", [hd], Q.F32, "one"))
        t.append((p + "post_attention_norm.weight", [N_EMBD], Q.F32, "one"))
        t.append((p + "layer_output_scale.weight", [1], Q.F32, "out_scale"))
        t.append((p + "ffn_norm.weight", [N_EMBD], Q.F32, "one"))
        t.append((p + "ffn_gate.weight", [N_EMBD, N_FF], qtype, "w"))
        t.append((p + "ffn_up.weight", [N_EMBD, N_FF], qtype, "w"))
        t.append((p + "ffn_down.weight", [N_FF, N_EMBD], qtype, "w"))
        t.append((p + "post_ffw_norm.weight", [N_EMBD], Q.F32, "one"))
        t.append((p + "ffn_gate_inp.weight", [N_EMBD, N_EXPERT], Q.F32, "router"))
        t.append((p + "ffn_gate_inp.scale", [N_EMBD], Q.F32, "near_one"))
        t.append((p + "pre_ffw_norm_2.weight", [N_EMBD], Q.F32, "one"))
        t.append((p + "post_ffw_norm_1.weight", [N_EMBD], Q.F32, "one"))
        t.append((p + "post_ffw_norm_2.weight", [N_EMBD], Q.F32, "one"))
        t.append((p + "ffn_gate_up_exps.weight", [N_EMBD, 2 * N_FF_EXP, N_EXPERT], qtype, "w"))
        t.append((p + "ffn_down_exps.weight", [N_FF_EXP, N_EMBD, N_EXPERT], qtype, "w"))
        t.append((p + "ffn_down_exps.scale", [N_EXPERT], Q.F32, "near_one"))
    t.append(("output_norm.weight", [N_EMBD], Q.F32, "one"))
    return t


def nbytes(ne: list[int], qtype: Q) -> int:
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n = int(np.prod(ne, dtype=np.int64))
    assert ne[0] % block == 0, (ne, qtype)
    return n // block * size


def small_values(kind: str, ne: list[int], rng: np.random.Generator) -> np.ndarray:
    n = int(np.prod(ne))
    if kind == "one":
        return np.ones(n, np.float32)
    if kind == "near_one":
        return (1.0 + 0.05 * rng.standard_normal(n)).astype(np.float32)
    if kind == "out_scale":
        return rng.uniform(0.5, 1.0, n).astype(np.float32)
    if kind == "rope_freqs":
        k = int(HD_FULL * ROT_FULL / 2)
        return np.array([1.0] * k + [1e30] * (HD_FULL // 2 - k), np.float32)
    if kind == "router":
        return (rng.standard_normal(n) / np.sqrt(ne[0])).astype(np.float32)
    raise ValueError(kind)


def quant_chunks(ne: list[int], qtype: Q, std: float, rng: np.random.Generator, chunk: int):
    """Random blocks of `qtype`, `chunk` bytes at a time, with values of about `std`."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = int(np.prod(ne, dtype=np.int64)) // block
    per = max(1, chunk // size)
    if qtype == Q.Q4_0:
        # 16 nibbles centred on 8: uniform on -8..7 has standard deviation ~4.6
        d = np.float16(std / 4.6)
        dt = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
    elif qtype == Q.Q8_0:
        # int8 uniform on -128..127 has standard deviation ~73.9
        d = np.float16(std / 73.9)
        dt = np.dtype([("d", "<f2"), ("qs", "u1", (32,))])
    else:
        raise ValueError(qtype)
    assert dt.itemsize == size
    done = 0
    while done < n_blocks:
        k = min(per, n_blocks - done)
        a = np.empty(k, dt)
        a["d"] = d
        a["qs"] = np.frombuffer(rng.bytes(k * (size - 2)), np.uint8).reshape(k, size - 2)
        yield a.tobytes()
        done += k


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None)
    ap.add_argument("--layers", type=int, default=N_LAYER)
    ap.add_argument("--type", choices=["q4_0", "q8_0"], default="q4_0")
    ap.add_argument("--llama-src", default=None)
    ap.add_argument("--seed", type=int, default=26)
    ap.add_argument("--chunk-mib", type=int, default=64)
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args()
    qtype = {"q4_0": Q.Q4_0, "q8_0": Q.Q8_0}[a.type]
    ftype = {"q4_0": gguf.LlamaFileType.MOSTLY_Q4_0, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[a.type]
    if a.out is None:
        name = f"gemma4-26b-a4b-synthetic-{a.type.upper()}" + ("" if a.layers == N_LAYER else f"-{a.layers}l") + ".gguf"
        out = Path.home() / ".cache" / "docent-bench" / name
    else:
        out = Path(a.out)
    repo = Path(__file__).resolve().parent.parent
    if repo in out.resolve().parents:
        sys.exit(f"{out}: inside the repository; hint: write it into a cache folder (the default is ~/.cache/docent-bench/)")

    src = llama_src(a.llama_src)
    f = read_kv(src / "models" / "ggml-vocab-gemma-4.gguf")
    assert f["general.architecture"] == "gemma4" and f["gemma4.embedding_length"] == N_EMBD
    tokens = f["tokenizer.ggml.tokens"]
    plan = tensor_plan(a.layers, len(tokens), qtype)
    total = sum(nbytes(ne, t) for _, ne, t, _ in plan)
    print(f"{len(plan)} tensors, {total / 1e9:.2f} GB of tensor data, {a.layers} layers, {a.type}")
    if a.dry_run:
        for name, ne, t, _ in plan[:40]:
            print(f"  {name:40s} {str(ne):24s} {t.name}")
        return 0

    out.parent.mkdir(parents=True, exist_ok=True)
    n = a.layers
    swa = [is_swa(i, n) for i in range(n)]
    w = gguf.GGUFWriter(out, "gemma4")
    w.add_type("model")
    w.add_name("gemma-4-26B-A4B synthetic (random weights)")
    w.add_description("random weights with the real shapes and metadata of Gemma 4 26B-A4B, for benchmarks only")
    w.add_context_length(f["gemma4.context_length"])
    w.add_embedding_length(N_EMBD)
    w.add_block_count(n)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv([N_KV_SWA if s else N_KV_FULL for s in swa])
    w.add_rope_freq_base(f["gemma4.rope.freq_base"])
    w.add_float32("gemma4.rope.freq_base_swa", f["gemma4.rope.freq_base_swa"])
    w.add_layer_norm_rms_eps(f["gemma4.attention.layer_norm_rms_epsilon"])
    w.add_expert_count(N_EXPERT)
    w.add_expert_used_count(N_EXPERT_USED)
    w.add_key_length(HD_FULL)
    w.add_value_length(HD_FULL)
    w.add_file_type(ftype)
    w.add_final_logit_softcapping(f["gemma4.final_logit_softcapping"])
    w.add_sliding_window(f["gemma4.attention.sliding_window"])
    w.add_shared_kv_layers(0)
    w.add_embedding_length_per_layer_input(0)
    w.add_sliding_window_pattern(swa)
    w.add_key_length_swa(HD_SWA)
    w.add_value_length_swa(HD_SWA)
    w.add_expert_feed_forward_length(N_FF_EXP)
    w.add_rope_dimension_count(HD_FULL)
    w.add_rope_dimension_count_swa(HD_SWA)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_tokenizer_model("gemma4")
    w.add_token_list(tokens)
    w.add_token_scores(f["tokenizer.ggml.scores"])
    w.add_token_types(f["tokenizer.ggml.token_type"])
    w.add_token_merges(f["tokenizer.ggml.merges"])
    w.add_bos_token_id(f["tokenizer.ggml.bos_token_id"])
    w.add_eos_token_id(f["tokenizer.ggml.eos_token_id"])
    w.add_unk_token_id(f["tokenizer.ggml.unknown_token_id"])
    w.add_pad_token_id(f["tokenizer.ggml.padding_token_id"])
    w.add_mask_token_id(f["tokenizer.ggml.mask_token_id"])
    w.add_add_space_prefix(False)
    w.add_add_bos_token(True)
    w.add_chat_template(f["tokenizer.chat_template"])
    for name, ne, t, _ in plan:
        w.add_tensor_info(name, list(reversed(ne)), np.dtype(np.float32), nbytes(ne, t), raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    # The tensor data, streamed: each tensor starts on the alignment, as the tensor infos say.
    fout = w.fout[0]
    align = w.data_alignment
    rng = np.random.default_rng(a.seed)
    chunk = a.chunk_mib << 20
    start = time.time()
    written = 0
    for k, (name, ne, t, kind) in enumerate(plan):
        pad = (-fout.tell()) % align
        fout.write(b"\0" * pad)
        if t == Q.F32:
            data = small_values(kind, ne, rng).tobytes()
            assert len(data) == nbytes(ne, t)
            fout.write(data)
            written += len(data)
        else:
            # embeddings: the input is scaled by sqrt(2816) ~ 53, and the logits stay below the soft cap
            std = 0.02 if kind == "embd" else 1.0 / np.sqrt(ne[0])
            for piece in quant_chunks(ne, t, std, rng, chunk):
                fout.write(piece)
                written += len(piece)
        if t != Q.F32:
            el = time.time() - start
            print(f"\r{k + 1}/{len(plan)} tensors, {written / 1e9:.2f}/{total / 1e9:.2f} GB, {el:.0f} s", end="", flush=True)
    fout.write(b"\0" * ((-fout.tell()) % align))
    w.close()
    print(f"\nwrote {out}: {out.stat().st_size / 1e9:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
