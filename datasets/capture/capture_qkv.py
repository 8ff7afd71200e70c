#!/usr/bin/env python3
"""Captures the queries, keys and values of one attention layer of a Hugging Face model into the HDF5
layout that attnbench's `hdf5` inputs read (docs/datasets.md): datasets q [B, Hq, L, D], k and v
[B, Hkv, L, D], float32 (or float16, or bfloat16 words as uint16 with attribute encoding="bfloat16"),
and root attributes model, layer, rope_applied, text.

Q and K are taken after RoPE, as the attention kernel sees them: the script wraps the model's
`apply_rotary_pos_emb` (Llama, Mistral, Qwen2 and most decoder models define one in their modeling
module) and keeps the rotated tensors of the chosen layer; V comes from a forward hook on v_proj.

    python3 capture_qkv.py --model meta-llama/Llama-3.2-1B --layer 8 --text-file book.txt \
        --max-tokens 4096 -o llama_l8.h5
    attnbench run suite.json   # with "inputs": "hdf5", "inputs_file": "llama_l8.h5"
"""
import argparse
import importlib

import h5py
import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="Hugging Face model id or local path")
    ap.add_argument("--layer", type=int, default=0, help="decoder layer whose attention is captured")
    ap.add_argument("--text-file", required=True, help="text to run through the model")
    ap.add_argument("--max-tokens", type=int, default=4096, help="tokens kept from the text")
    ap.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default="float32",
                    help="element type written to the file")
    ap.add_argument("-o", "--output", required=True, help="HDF5 file to write")
    args = ap.parse_args()

    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    text = open(args.text_file, encoding="utf-8").read()
    ids = tok(text, return_tensors="pt").input_ids[:, : args.max_tokens]

    attn = model.model.layers[args.layer].self_attn
    modeling = importlib.import_module(type(attn).__module__)
    captured = {}
    original_rope = modeling.apply_rotary_pos_emb
    calls = {"n": 0}

    def rope_and_keep(q, k, *rest, **kw):
        q2, k2 = original_rope(q, k, *rest, **kw)
        if calls["n"] == args.layer:  # layers run in order; the layer-th call is ours
            captured["q"], captured["k"] = q2.detach(), k2.detach()
        calls["n"] += 1
        return q2, k2

    def keep_v(_module, _inputs, out):
        b, l, _ = out.shape
        captured["v"] = out.detach().view(b, l, -1, attn.head_dim).transpose(1, 2)

    modeling.apply_rotary_pos_emb = rope_and_keep
    handle = attn.v_proj.register_forward_hook(keep_v)
    try:
        with torch.no_grad():
            model(ids)
    finally:
        modeling.apply_rotary_pos_emb = original_rope
        handle.remove()

    with h5py.File(args.output, "w") as f:
        for name in ("q", "k", "v"):
            x = captured[name].float().contiguous()  # [B, H, L, D]
            if args.dtype == "bfloat16":
                words = (x.view(torch.int32) >> 16).to(torch.int32) & 0xFFFF  # truncation to bf16
                ds = f.create_dataset(name, data=words.numpy().astype(np.uint16))
                ds.attrs["encoding"] = "bfloat16"
            else:
                f.create_dataset(name, data=x.numpy().astype(args.dtype))
        f.attrs["model"] = args.model
        f.attrs["layer"] = np.int64(args.layer)
        f.attrs["rope_applied"] = np.int64(1)
        f.attrs["text"] = text[:200]
    print(f"{args.output}: q {tuple(captured['q'].shape)}, k {tuple(captured['k'].shape)}, "
          f"v {tuple(captured['v'].shape)} from layer {args.layer} of {args.model}")


if __name__ == "__main__":
    main()
