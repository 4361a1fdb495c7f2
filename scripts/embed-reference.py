#!/usr/bin/env python3
"""Reference forward pass of a BERT sentence-embedding model in numpy (no torch), used once
to check switchboard-search's Rust encoder (crates/switchboard-search/src/embed/).

Usage: python3 scripts/embed-reference.py MODEL_DIR "sentence" ...
Needs numpy, safetensors and tokenizers (a throwaway venv). Prints, per sentence, a JSON
line with the token ids and the unit-length mean-pooled embedding.
"""
import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

model_dir, sentences = sys.argv[1], sys.argv[2:]
cfg = json.load(open(f"{model_dir}/config.json"))
w = load_file(f"{model_dir}/model.safetensors")
w = {k[5:] if k.startswith("bert.") else k: v.astype(np.float64) for k, v in w.items()}
tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
tok.no_truncation()
tok.no_padding()
eps = cfg["layer_norm_eps"]
H, heads = cfg["hidden_size"], cfg["num_attention_heads"]
d = H // heads
erf = np.vectorize(math.erf)


def ln(x, p):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w[p + ".weight"] + w[p + ".bias"]


def lin(x, p):
    return x @ w[p + ".weight"].T + w[p + ".bias"]


for s in sentences:
    ids = tok.encode(s).ids[:256]
    n = len(ids)
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][:n]
         + w["embeddings.token_type_embeddings.weight"][0])
    x = ln(x, "embeddings.LayerNorm")
    for l in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{l}."
        q, k, v = (lin(x, p + "attention.self." + m).reshape(n, heads, d).transpose(1, 0, 2)
                   for m in ("query", "key", "value"))
        a = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(1, 0, 2).reshape(n, H)
        x = ln(x + lin(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        i = lin(x, p + "intermediate.dense")
        i = 0.5 * i * (1 + erf(i / math.sqrt(2)))
        x = ln(x + lin(i, p + "output.dense"), p + "output.LayerNorm")
    e = x.mean(0)
    e /= np.linalg.norm(e)
    print(json.dumps({"text": s, "ids": ids, "embedding": [round(float(f), 7) for f in e]}))
