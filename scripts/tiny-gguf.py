#!/usr/bin/env python3
"""Tiny random-weight GGUF files, one per architecture, for checking docent's language-model graph
against llama.cpp (crates/llm/tests/reference/tiny/, ARCHITECTURES.md there describes each one).

Requires: gguf==0.19.0 numpy==2.4.6 (pip install gguf==0.19.0 numpy==2.4.6). Other versions may
write different bytes; the manifest's SHA-256 sums were made with these.

The weights are random (seeded per tensor name, so the same arguments give the same bytes), the
metadata keys, tensor names, shapes and layouts are the ones llama.cpp reads for each architecture
(the llama.cpp that node-llama-cpp 3.22.1 bundles, see ARCHITECTURES.md). The tokenizers are
truncated copies of the real ones (Qwen's byte-level BPE, Gemma 4's SentencePiece-style BPE): the
byte tokens, the first merges, and the special tokens, renumbered. They are taken from the
vocabulary-only GGUFs that ship with llama.cpp's sources (models/ggml-vocab-*.gguf), with the
chat templates in models/templates/; `--llama-src` points at those sources. By default the script
clones them from the git bundle inside node-llama-cpp (installed by
scripts/llama-reference-setup.sh) into ~/.cache/docent-llamacpp/llama.cpp-src.

Usage:
  python3 scripts/tiny-gguf.py [--out crates/llm/tests/reference/tiny] [--llama-src DIR] [--check]
--check regenerates into a temporary folder and compares with the manifest (exit 1 on a difference).
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as Q

GGUF_VERSION = "0.19.0"
NUMPY_VERSION = "2.4.6"

F32 = Q.F32
SEED = 20260128


# ---------------------------------------------------------------------------------------------
# llama.cpp sources (for the vocabularies and chat templates)


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


def read_vocab(path: Path) -> dict:
    r = gguf.GGUFReader(path)
    out = {}
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                "tokenizer.ggml.scores", "tokenizer.chat_template"):
        if key in r.fields:
            out[key] = r.fields[key].contents()
    return out


# ---------------------------------------------------------------------------------------------
# Tokenizers


def qwen_vocab(src: Path, pre: str, extra_user: list[str], n_merges: int = 1000) -> dict:
    """Qwen's byte-level BPE cut to the 256 byte tokens and its first `n_merges` merges (merge i
    makes token 256 + i in Qwen's vocabulary), then the control and user-defined tokens."""
    v = read_vocab(src / "models" / ("ggml-vocab-qwen35.gguf" if pre == "qwen35" else "ggml-vocab-qwen2.gguf"))
    toks, merges = v["tokenizer.ggml.tokens"], v["tokenizer.ggml.merges"]
    tokens = list(toks[: 256 + n_merges])
    for i, m in enumerate(merges[:n_merges]):
        assert m.replace(" ", "", 1) == tokens[256 + i], (i, m)
    types = [gguf.TokenType.NORMAL] * len(tokens)
    specials = {}
    for t in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]:
        specials[t] = len(tokens)
        tokens.append(t)
        types.append(gguf.TokenType.CONTROL)
    for t in extra_user:
        specials[t] = len(tokens)
        tokens.append(t)
        types.append(gguf.TokenType.USER_DEFINED)
    return {
        "model": "gpt2",
        "pre": pre,
        "tokens": tokens,
        "types": types,
        "merges": list(merges[:n_merges]),
        "bos": specials["<|endoftext|>"],
        "eos": specials["<|im_end|>"],
        "pad": specials["<|endoftext|>"],
        "add_bos": False,
    }


@functools.lru_cache(maxsize=None)
def gemma4_vocab(src: Path, n_merges: int = 1200) -> dict:
    """Gemma 4's BPE (raw UTF-8 symbols, spaces as U+2581, <0xXX> byte fallback) cut to: its first
    494 tokens (controls, the turn/channel/tool markers, the 256 byte tokens), the single-character
    tokens of Latin, Greek, Cyrillic, Hebrew, Arabic, Devanagari and kana/CJK ranges, and the first
    `n_merges` merges (in rank order) whose two parts are already kept, with their results."""
    v = read_vocab(src / "models" / "ggml-vocab-gemma-4.gguf")
    toks, types0, merges, scores = (v["tokenizer.ggml.tokens"], v["tokenizer.ggml.token_type"],
                                    v["tokenizer.ggml.merges"], v["tokenizer.ggml.scores"])
    keep_ids = list(range(494))
    kept = set(toks[i] for i in keep_ids)

    def wanted_char(t: str) -> bool:
        if len(t) != 1:
            return False
        c = ord(t)
        return (0x20 <= c < 0x250 or c == 0x2581 or 0x370 <= c < 0x530 or 0x590 <= c < 0x700
                or 0x900 <= c < 0x980 or 0x3040 <= c < 0x3100 or c in (0x65E5, 0x672C, 0x8A9E))

    for i, t in enumerate(toks):
        if i >= 494 and types0[i] == gguf.TokenType.NORMAL and wanted_char(t) and t not in kept:
            keep_ids.append(i)
            kept.add(t)
    # The image/audio markers the chat template can emit.
    for i, t in enumerate(toks):
        if types0[i] == gguf.TokenType.CONTROL and i >= 494 and t not in kept:
            keep_ids.append(i)
            kept.add(t)
    chosen = []
    used = set()
    changed = True
    while changed and len(chosen) < n_merges:
        changed = False
        for r, m in enumerate(merges):
            if r in used:
                continue
            a, b = m.split(" ", 1)
            if a in kept and b in kept:
                used.add(r)
                chosen.append(r)
                kept.add(a + b)
                changed = True
                if len(chosen) >= n_merges:
                    break
    index = {t: i for i, t in enumerate(toks)}
    final_ids = sorted(set(keep_ids) | {index[t] for t in kept})
    tokens = [toks[i] for i in final_ids]
    types = [int(types0[i]) for i in final_ids]
    sc = [float(scores[i]) for i in final_ids]
    chosen.sort()
    new = {t: i for i, t in enumerate(tokens)}
    return {
        "model": "gemma4",
        "pre": None,
        "tokens": tokens,
        "types": types,
        "scores": sc,
        "merges": [merges[r] for r in chosen],
        "bos": new["<bos>"],
        "eos": new["<eos>"],
        "unk": new["<unk>"],
        "pad": new["<pad>"],
        "mask": new["<mask>"],
        "add_bos": True,
        "chat_template": v["tokenizer.chat_template"],
    }


def add_vocab(w: gguf.GGUFWriter, voc: dict, template: str) -> None:
    w.add_tokenizer_model(voc["model"])
    if voc.get("pre"):
        w.add_tokenizer_pre(voc["pre"])
    w.add_token_list(voc["tokens"])
    if "scores" in voc:
        w.add_token_scores(voc["scores"])
    w.add_token_types(voc["types"])
    w.add_token_merges(voc["merges"])
    w.add_bos_token_id(voc["bos"])
    w.add_eos_token_id(voc["eos"])
    if "unk" in voc:
        w.add_unk_token_id(voc["unk"])
    w.add_pad_token_id(voc["pad"])
    if "mask" in voc:
        w.add_mask_token_id(voc["mask"])
    if voc["model"] == "gemma4":
        w.add_add_space_prefix(False)
    w.add_add_bos_token(voc["add_bos"])
    w.add_chat_template(template)


# ---------------------------------------------------------------------------------------------
# Tensors


class Tensors:
    """Collects tensors in the order llama.cpp's converter writes them. Shapes are given in ggml
    order (ne0 first, the contiguous dimension), as ARCHITECTURES.md lists them."""

    def __init__(self, w: gguf.GGUFWriter, seed: int):
        self.w = w
        self.seed = seed

    def rng(self, name: str) -> np.random.Generator:
        h = hashlib.sha256(f"{self.seed}:{name}".encode()).digest()
        return np.random.default_rng(int.from_bytes(h[:8], "little"))

    def put(self, name: str, ne: list[int], data: np.ndarray, qtype: Q = F32) -> None:
        arr = data.astype(np.float32).reshape(list(reversed(ne)))
        if qtype == F32:
            self.w.add_tensor(name, arr)
        elif qtype == Q.F16:
            self.w.add_tensor(name, arr.astype(np.float16))
        else:
            q = gguf.quants.quantize(arr, qtype)
            self.w.add_tensor(name, q, raw_dtype=qtype)

    def normal(self, name: str, ne: list[int], std: float, qtype: Q = F32, mean: float = 0.0) -> None:
        n = int(np.prod(ne))
        self.put(name, ne, mean + std * self.rng(name).standard_normal(n), qtype)

    def uniform(self, name: str, ne: list[int], lo: float, hi: float) -> None:
        n = int(np.prod(ne))
        self.put(name, ne, self.rng(name).uniform(lo, hi, n))

    def norm(self, name: str, n: int, mean: float = 1.0) -> None:
        self.normal(name, [n], 0.1 * mean, F32, mean=mean)

    def linear(self, name: str, n_in: int, n_out: int, qtype: Q = F32, gain: float = 1.0, experts: int = 0) -> None:
        ne = [n_in, n_out] + ([experts] if experts else [])
        self.normal(name, ne, gain / np.sqrt(n_in), qtype)

    def const(self, name: str, ne: list[int], values) -> None:
        self.put(name, ne, np.asarray(values, dtype=np.float32))


def writer(path: Path, arch: str, name: str) -> gguf.GGUFWriter:
    w = gguf.GGUFWriter(path, arch)
    w.add_type("model")
    w.add_name(name)
    w.add_description("random weights, for testing only: " + name)
    return w


def finish(w: gguf.GGUFWriter) -> None:
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------------------------------------
# Architectures


def qwen2(path: Path, src: Path) -> None:
    arch = "qwen2"
    voc = qwen_vocab(src, "qwen2", ["<tool_call>", "</tool_call>"])
    n_vocab, n_embd, n_layer, n_head, n_kv, n_ff = len(voc["tokens"]), 64, 2, 4, 2, 128
    hd = n_embd // n_head
    w = writer(path, arch, "tiny-qwen2")
    w.add_context_length(4096)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_freq_base(1000000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    add_vocab(w, voc, (src / "models/templates/Qwen-Qwen2.5-7B-Instruct.jinja").read_text())
    t = Tensors(w, SEED + 1)
    # Tied embeddings (no output.weight), as the small Qwen 2.5 models. With tied random weights the
    # input token's own row wins the output unless the layers outweigh it, hence the gains.
    t.normal("token_embd.weight", [n_embd, n_vocab], 0.3, Q.Q8_0)
    for i in range(n_layer):
        p = f"blk.{i}."
        t.norm(p + "attn_norm.weight", n_embd)
        t.linear(p + "attn_q.weight", n_embd, n_head * hd, Q.Q8_0)
        t.normal(p + "attn_q.bias", [n_head * hd], 0.1)
        t.linear(p + "attn_k.weight", n_embd, n_kv * hd, Q.Q8_0)
        t.normal(p + "attn_k.bias", [n_kv * hd], 0.1)
        t.linear(p + "attn_v.weight", n_embd, n_kv * hd, Q.Q8_0)
        t.normal(p + "attn_v.bias", [n_kv * hd], 0.1)
        t.linear(p + "attn_output.weight", n_head * hd, n_embd, Q.Q8_0, gain=1.5)
        t.norm(p + "ffn_norm.weight", n_embd)
        t.linear(p + "ffn_gate.weight", n_embd, n_ff, Q.Q4_0)
        t.linear(p + "ffn_up.weight", n_embd, n_ff, Q.Q4_0)
        t.linear(p + "ffn_down.weight", n_ff, n_embd, Q.Q8_0, gain=1.5)
    t.norm("output_norm.weight", n_embd)
    finish(w)


def qwen3(path: Path, src: Path, moe: bool) -> None:
    arch = "qwen3moe" if moe else "qwen3"
    voc = qwen_vocab(src, "qwen2", ["<think>", "</think>", "<tool_call>", "</tool_call>"])
    n_vocab, n_embd, n_layer, n_head, n_kv, hd = len(voc["tokens"]), 64, 3 if moe else 2, 4, 2, 32
    n_ff = 256
    n_expert, n_used, n_ff_exp = 8, 2, 32
    w = writer(path, arch, "tiny-" + arch)
    w.add_context_length(4096)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    # head_dim (32) is not n_embd / n_head (16), as in the real Qwen 3 models.
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_freq_base(1000000.0)
    w.add_layer_norm_rms_eps(1e-6)
    if moe:
        w.add_expert_count(n_expert)
        w.add_expert_used_count(n_used)
        w.add_expert_feed_forward_length(n_ff_exp)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    add_vocab(w, voc, (src / "models/templates/Qwen-Qwen3-0.6B.jinja").read_text())
    t = Tensors(w, SEED + (3 if moe else 2))
    t.normal("token_embd.weight", [n_embd, n_vocab], 0.35, Q.Q8_0)
    # In the MoE file the attention stays F32: quantisation noise upstream of a router flips
    # near-tied expert choices between llama.cpp's own batch and single-token paths.
    qa = F32 if moe else Q.Q8_0
    for i in range(n_layer):
        p = f"blk.{i}."
        t.norm(p + "attn_norm.weight", n_embd)
        t.linear(p + "attn_q.weight", n_embd, n_head * hd, qa)
        t.linear(p + "attn_k.weight", n_embd, n_kv * hd, qa)
        t.linear(p + "attn_v.weight", n_embd, n_kv * hd, qa)
        t.linear(p + "attn_output.weight", n_head * hd, n_embd, qa)
        t.norm(p + "attn_q_norm.weight", hd)
        t.norm(p + "attn_k_norm.weight", hd)
        t.norm(p + "ffn_norm.weight", n_embd)
        if moe:
            t.linear(p + "ffn_gate_inp.weight", n_embd, n_expert, F32, gain=3.0)
            t.linear(p + "ffn_gate_exps.weight", n_embd, n_ff_exp, Q.Q8_0, experts=n_expert)
            t.linear(p + "ffn_up_exps.weight", n_embd, n_ff_exp, Q.Q8_0, experts=n_expert)
            t.linear(p + "ffn_down_exps.weight", n_ff_exp, n_embd, Q.Q8_0, gain=2.0, experts=n_expert)
        else:
            t.linear(p + "ffn_gate.weight", n_embd, n_ff, Q.Q5_1)
            t.linear(p + "ffn_up.weight", n_embd, n_ff, Q.Q5_0)
            t.linear(p + "ffn_down.weight", n_ff, n_embd, Q.Q4_1)
    t.norm("output_norm.weight", n_embd)
    # Untied output head.
    t.normal("output.weight", [n_embd, n_vocab], 0.3, Q.Q8_0)
    finish(w)


def gemma4(path: Path, src: Path, moe: bool) -> None:
    arch = "gemma4"
    voc = gemma4_vocab(src)
    n_vocab, n_embd, n_head = len(voc["tokens"]), 64, 4
    swa = [True, True, False, True, True, False]  # the real models: 5 sliding, 1 global
    n_layer = len(swa)
    hd_swa, hd_full = 16, 32
    kv_swa, kv_full = 2, 1
    n_ff = 64 if moe else 128
    n_expert, n_used, n_ff_exp = 8, 2, 32
    window = 16
    rot_full = 0.25  # partial_rotary_factor of the global layers ("proportional" RoPE)
    w = writer(path, arch, "tiny-gemma4" + ("-moe" if moe else ""))
    w.add_context_length(4096)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv([kv_swa if s else kv_full for s in swa])
    w.add_rope_freq_base(1000000.0)
    w.add_float32(f"{arch}.rope.freq_base_swa", 10000.0)
    w.add_layer_norm_rms_eps(1e-6)
    if moe:
        w.add_expert_count(n_expert)
        w.add_expert_used_count(n_used)
    w.add_key_length(hd_full)
    w.add_value_length(hd_full)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    # Real value 30; lower here so that the random logits reach the curved part of tanh.
    w.add_final_logit_softcapping(10.0)
    w.add_sliding_window(window)
    w.add_shared_kv_layers(0)
    w.add_embedding_length_per_layer_input(0)
    w.add_sliding_window_pattern(swa)
    w.add_key_length_swa(hd_swa)
    w.add_value_length_swa(hd_swa)
    if moe:
        w.add_expert_feed_forward_length(n_ff_exp)
    w.add_rope_dimension_count(hd_full)
    w.add_rope_dimension_count_swa(hd_swa)
    add_vocab(w, voc, voc["chat_template"])
    t = Tensors(w, SEED + (5 if moe else 4))
    # Tied embeddings (Gemma has no output.weight). Input rows are scaled by sqrt(n_embd); the
    # post-norms are set near 3 (the real ones vary widely) so that the layers outweigh the input
    # token's own row, which would otherwise win every output with tied random weights.
    t.normal("token_embd.weight", [n_embd, n_vocab], 0.4, Q.Q8_0)
    n_rot_pairs = int(hd_full * rot_full / 2)
    t.const("rope_freqs.weight", [hd_full // 2], [1.0] * n_rot_pairs + [1e30] * (hd_full // 2 - n_rot_pairs))
    qa = F32 if moe else Q.Q8_0  # see qwen3(): routers and quantisation noise
    for i, s in enumerate(swa):
        p = f"blk.{i}."
        hd = hd_swa if s else hd_full
        kv = kv_swa if s else kv_full
        t.norm(p + "attn_norm.weight", n_embd)
        t.linear(p + "attn_q.weight", n_embd, n_head * hd, qa)
        t.linear(p + "attn_k.weight", n_embd, kv * hd, qa)
        if s:
            # Global layers have no V projection: V is K (before K's norm and RoPE).
            t.linear(p + "attn_v.weight", n_embd, kv * hd, qa)
        t.linear(p + "attn_output.weight", n_head * hd, n_embd, qa)
        # q and k are RMS-normed and attention has no 1/sqrt(head_dim): norms near 0.5 keep the
        # random attention from being one-hot.
        t.norm(p + "attn_q_norm.weight", hd, 0.5)
        t.norm(p + "attn_k_norm.weight", hd, 0.5)
        t.norm(p + "post_attention_norm.weight", n_embd, 3.0)
        t.uniform(p + "layer_output_scale.weight", [1], 0.5, 0.9)
        t.norm(p + "ffn_norm.weight", n_embd)
        t.linear(p + "ffn_gate.weight", n_embd, n_ff, qa)
        t.linear(p + "ffn_up.weight", n_embd, n_ff, qa)
        t.linear(p + "ffn_down.weight", n_ff, n_embd, Q.Q4_0 if not moe else F32)
        t.norm(p + "post_ffw_norm.weight", n_embd, 3.0)
        if moe:
            t.linear(p + "ffn_gate_inp.weight", n_embd, n_expert, F32, gain=3.0 * np.sqrt(n_embd))
            t.norm(p + "ffn_gate_inp.scale", n_embd)
            t.norm(p + "pre_ffw_norm_2.weight", n_embd)
            t.norm(p + "post_ffw_norm_1.weight", n_embd)
            t.norm(p + "post_ffw_norm_2.weight", n_embd)
            # gate and up of each expert in one tensor: rows [0, n_ff_exp) gate, [n_ff_exp, 2 n_ff_exp) up
            t.linear(p + "ffn_gate_up_exps.weight", n_embd, 2 * n_ff_exp, Q.Q8_0, experts=n_expert)
            t.linear(p + "ffn_down_exps.weight", n_ff_exp, n_embd, Q.Q8_0, experts=n_expert)
            t.uniform(p + "ffn_down_exps.scale", [n_expert], 0.5, 1.5)
    t.norm("output_norm.weight", n_embd)
    finish(w)


def qwen35(path: Path, src: Path, moe: bool) -> None:
    arch = "qwen35moe" if moe else "qwen35"
    voc = qwen_vocab(src, "qwen35", ["<think>", "</think>", "<tool_call>", "</tool_call>"])
    n_vocab, n_embd, n_layer, n_head, n_kv, hd = len(voc["tokens"]), 64, 4, 4, 2, 32
    full_interval = 2  # layers 1 and 3 full attention, 0 and 2 Gated DeltaNet (real models: 4)
    n_rot = 8  # partial_rotary_factor 0.25 of head_dim 32
    sections = [2, 1, 1, 0]  # interleaved M-RoPE sections (pairs); sum = n_rot / 2
    d_conv, d_state, n_group, dt_rank = 4, 16, 2, 4
    d_inner = d_state * dt_rank  # value heads x head dim
    n_ff = 128
    n_expert, n_used, n_ff_exp, n_ff_shexp = 8, 2, 32, 64
    key_dim, value_dim = d_state * n_group, d_state * dt_rank
    conv_dim = 2 * key_dim + value_dim
    w = writer(path, arch, "tiny-" + arch)
    w.add_context_length(4096)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_freq_base(10000000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_key_length(hd)
    w.add_value_length(hd)
    if moe:
        w.add_expert_count(n_expert)
        w.add_expert_used_count(n_used)
        w.add_expert_feed_forward_length(n_ff_exp)
        w.add_expert_shared_feed_forward_length(n_ff_shexp)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_ssm_conv_kernel(d_conv)
    w.add_ssm_state_size(d_state)
    w.add_ssm_group_count(n_group)
    w.add_ssm_time_step_rank(dt_rank)
    w.add_ssm_inner_size(d_inner)
    w.add_full_attention_interval(full_interval)
    w.add_rope_dimension_count(n_rot)
    w.add_rope_dimension_sections(sections)
    add_vocab(w, voc, (src / "models/templates/Qwen3.5-4B.jinja").read_text())
    t = Tensors(w, SEED + (7 if moe else 6))
    t.normal("token_embd.weight", [n_embd, n_vocab], 0.35, Q.Q8_0)
    qa = F32 if moe else Q.Q8_0  # see qwen3(): routers and quantisation noise
    for i in range(n_layer):
        p = f"blk.{i}."
        recurrent = (i + 1) % full_interval != 0
        t.norm(p + "attn_norm.weight", n_embd)
        t.norm(p + "post_attention_norm.weight", n_embd)
        if recurrent:
            # q, k (n_group heads of d_state) and v (dt_rank heads of d_state), in that order
            t.linear(p + "attn_qkv.weight", n_embd, conv_dim, qa)
            t.linear(p + "attn_gate.weight", n_embd, value_dim, qa)  # z, the output gate
            t.normal(p + "ssm_conv1d.weight", [d_conv, conv_dim], 0.4)
            t.normal(p + "ssm_dt.bias", [dt_rank], 0.5)
            t.uniform(p + "ssm_a", [dt_rank], -4.0, -0.5)  # -exp(A_log)
            t.linear(p + "ssm_beta.weight", n_embd, dt_rank)
            t.linear(p + "ssm_alpha.weight", n_embd, dt_rank)
            t.norm(p + "ssm_norm.weight", d_state)
            t.linear(p + "ssm_out.weight", value_dim, n_embd, qa)
        else:
            # Q and its output gate interleaved per head: [q_h0 (hd), gate_h0 (hd), q_h1, ...]
            t.linear(p + "attn_q.weight", n_embd, 2 * n_head * hd, qa)
            t.linear(p + "attn_k.weight", n_embd, n_kv * hd, qa)
            t.linear(p + "attn_v.weight", n_embd, n_kv * hd, qa)
            t.linear(p + "attn_output.weight", n_head * hd, n_embd, qa)
            t.norm(p + "attn_q_norm.weight", hd)
            t.norm(p + "attn_k_norm.weight", hd)
        if moe:
            t.linear(p + "ffn_gate_inp.weight", n_embd, n_expert, F32, gain=3.0)
            t.linear(p + "ffn_gate_exps.weight", n_embd, n_ff_exp, Q.Q8_0, experts=n_expert)
            t.linear(p + "ffn_up_exps.weight", n_embd, n_ff_exp, Q.Q8_0, experts=n_expert)
            t.linear(p + "ffn_down_exps.weight", n_ff_exp, n_embd, Q.Q8_0, gain=2.0, experts=n_expert)
            t.linear(p + "ffn_gate_inp_shexp.weight", n_embd, 1, F32, gain=2.0)
            t.linear(p + "ffn_gate_shexp.weight", n_embd, n_ff_shexp, Q.Q8_0)
            t.linear(p + "ffn_up_shexp.weight", n_embd, n_ff_shexp, Q.Q8_0)
            t.linear(p + "ffn_down_shexp.weight", n_ff_shexp, n_embd, Q.Q8_0)
        else:
            t.linear(p + "ffn_gate.weight", n_embd, n_ff, Q.Q8_0)
            t.linear(p + "ffn_up.weight", n_embd, n_ff, Q.Q8_0)
            t.linear(p + "ffn_down.weight", n_ff, n_embd, Q.Q4_0)
    t.norm("output_norm.weight", n_embd)
    t.normal("output.weight", [n_embd, n_vocab], 0.3, Q.Q8_0)
    finish(w)


MODELS = {
    "tiny-qwen2.gguf": lambda p, s: qwen2(p, s),
    "tiny-qwen3.gguf": lambda p, s: qwen3(p, s, moe=False),
    "tiny-qwen3moe.gguf": lambda p, s: qwen3(p, s, moe=True),
    "tiny-gemma4.gguf": lambda p, s: gemma4(p, s, moe=False),
    "tiny-gemma4-moe.gguf": lambda p, s: gemma4(p, s, moe=True),
    "tiny-qwen35.gguf": lambda p, s: qwen35(p, s, moe=False),
    "tiny-qwen35moe.gguf": lambda p, s: qwen35(p, s, moe=True),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def generate(out: Path, src: Path, only: list[str] | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    sums = {}
    for name, make in MODELS.items():
        if only and name not in only:
            continue
        path = out / name
        make(path, src)
        sums[name] = {"bytes": path.stat().st_size, "sha256": sha256(path)}
        print(f"{path}: {path.stat().st_size} bytes")
    return sums


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "crates/llm/tests/reference/tiny"))
    ap.add_argument("--llama-src", default=None)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("models", nargs="*", help="only these file names")
    a = ap.parse_args()
    import importlib.metadata as md
    got = (md.version("gguf"), np.__version__)
    if got != (GGUF_VERSION, NUMPY_VERSION):
        print(f"warning: gguf {got[0]}, numpy {got[1]}; the manifest was made with gguf {GGUF_VERSION}, numpy {NUMPY_VERSION}",
              file=sys.stderr)
    src = llama_src(a.llama_src)
    out = Path(a.out)
    manifest = out / "manifest.json"
    if a.check:
        want = json.loads(manifest.read_text())["files"]
        with tempfile.TemporaryDirectory() as tmp:
            got_sums = generate(Path(tmp), src, a.models or None)
        bad = [n for n in got_sums if want.get(n, {}).get("sha256") != got_sums[n]["sha256"]]
        for n in bad:
            print(f"{n}: differs from the manifest", file=sys.stderr)
        return 1 if bad else 0
    sums = generate(out, src, a.models or None)
    old = json.loads(manifest.read_text())["files"] if manifest.exists() else {}
    old.update(sums)
    manifest.write_text(json.dumps({
        "generator": "scripts/tiny-gguf.py",
        "gguf": GGUF_VERSION,
        "numpy": NUMPY_VERSION,
        "seed": SEED,
        "files": dict(sorted(old.items())),
    }, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
