"""Convert a llama2.c "legacy" checkpoint (.bin, e.g. stories260K.bin) into a Hugging Face
LlamaForCausalLM in fp32.

Layout and the RoPE permutation are described in ../../../shared/assets/stories260K/FORMAT.md
(read from karpathy/llama2.c run.c and export.py): a 7 x int32 header, then fp32 arrays back to
back. llama2.c rotates interleaved pairs (q[2i], q[2i+1]); HF rotates halves (i, i + head_dim/2),
so the rows of wq and wk are permuted per head.

Usage as a script (checks greedy generation against expected_greedy.json):
    python convert_llama2c.py /work/shared/assets/stories260K/stories260K.bin OUT_DIR \
        --expected /work/shared/assets/stories260K/expected_greedy.json
"""

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

HEADER = struct.Struct("<7i")


class ConversionError(Exception):
    pass


def _permute_rows_for_rotate_half(w: np.ndarray, n_heads: int) -> np.ndarray:
    # w: [n_heads * head_dim, dim]; interleaved pairs -> halves, per head
    out_features, dim = w.shape
    head_dim = out_features // n_heads
    return w.reshape(n_heads, head_dim // 2, 2, dim).transpose(0, 2, 1, 3).reshape(out_features, dim)


def read_llama2c(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Returns (header, HF-named fp32 tensors) of a legacy llama2.c checkpoint."""
    data = path.read_bytes()
    if len(data) < HEADER.size:
        raise ConversionError(f"{path}: {len(data)} bytes, shorter than the 28-byte header")
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab_signed, seq_len = HEADER.unpack_from(data, 0)
    if min(dim, hidden, n_layers, n_heads, n_kv_heads, seq_len) <= 0 or dim % n_heads or n_heads % n_kv_heads:
        raise ConversionError(f"{path}: implausible header {HEADER.unpack_from(data, 0)}")
    shared = vocab_signed > 0
    vocab = abs(vocab_signed)
    head_dim = dim // n_heads
    kv_dim = n_kv_heads * head_dim
    shapes = [
        ("embed", (vocab, dim)),
        ("rms_att", (n_layers, dim)),
        ("wq", (n_layers, dim, dim)),
        ("wk", (n_layers, kv_dim, dim)),
        ("wv", (n_layers, kv_dim, dim)),
        ("wo", (n_layers, dim, dim)),
        ("rms_ffn", (n_layers, dim)),
        ("w1", (n_layers, hidden, dim)),
        ("w2", (n_layers, dim, hidden)),
        ("w3", (n_layers, hidden, dim)),
        ("rms_final", (dim,)),
        ("freq_cis", (2, seq_len * head_dim // 2)),  # legacy RoPE tables, unused
    ]
    if not shared:
        shapes.append(("wcls", (vocab, dim)))
    expected = HEADER.size + 4 * sum(int(np.prod(s)) for _, s in shapes)
    if len(data) != expected:
        raise ConversionError(f"{path}: {len(data)} bytes, the header implies {expected}")
    arrays = {}
    offset = HEADER.size
    for name, shape in shapes:
        count = int(np.prod(shape))
        arrays[name] = np.frombuffer(data, dtype="<f4", count=count, offset=offset).reshape(shape)
        offset += 4 * count

    t = {"model.embed_tokens.weight": arrays["embed"], "model.norm.weight": arrays["rms_final"]}
    for layer in range(n_layers):
        p = f"model.layers.{layer}."
        t[p + "input_layernorm.weight"] = arrays["rms_att"][layer]
        t[p + "self_attn.q_proj.weight"] = _permute_rows_for_rotate_half(arrays["wq"][layer], n_heads)
        t[p + "self_attn.k_proj.weight"] = _permute_rows_for_rotate_half(arrays["wk"][layer], n_kv_heads)
        t[p + "self_attn.v_proj.weight"] = arrays["wv"][layer]
        t[p + "self_attn.o_proj.weight"] = arrays["wo"][layer]
        t[p + "post_attention_layernorm.weight"] = arrays["rms_ffn"][layer]
        t[p + "mlp.gate_proj.weight"] = arrays["w1"][layer]
        t[p + "mlp.down_proj.weight"] = arrays["w2"][layer]
        t[p + "mlp.up_proj.weight"] = arrays["w3"][layer]
    if not shared:
        t["lm_head.weight"] = arrays["wcls"]
    header = dict(dim=dim, hidden_dim=hidden, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv_heads,
                  vocab_size=vocab, seq_len=seq_len, shared_classifier=shared)
    return header, t


def to_hf(path: Path) -> LlamaForCausalLM:
    header, tensors = read_llama2c(path)
    config = LlamaConfig(
        vocab_size=header["vocab_size"],
        hidden_size=header["dim"],
        intermediate_size=header["hidden_dim"],
        num_hidden_layers=header["n_layers"],
        num_attention_heads=header["n_heads"],
        num_key_value_heads=header["n_kv_heads"],
        max_position_embeddings=header["seq_len"],
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=header["shared_classifier"],
        hidden_act="silu",
        bos_token_id=1,
        eos_token_id=2,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config).float()
    state = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    allowed_missing = {"lm_head.weight"} if config.tie_word_embeddings else set()
    if set(missing) - allowed_missing or unexpected:
        raise ConversionError(f"{path}: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.eval()
    return model


def check_greedy(model: LlamaForCausalLM, expected_path: Path) -> None:
    """Greedy tokens from BOS must equal the reference's; so must the first logits (fp64 reference)."""
    ref = json.loads(expected_path.read_text())
    expected = ref["greedy_token_ids_from_bos_64"]
    ref_logits = torch.tensor(ref["logits_first16_positions_of_greedy_seq_row0_first8"], dtype=torch.float64)
    with torch.no_grad():
        got_logits = model(torch.tensor([expected[:16]])).logits[0, 0, :8].double()
    diff = float((got_logits - ref_logits).abs().max() / ref_logits.abs().max())
    if diff > 1e-5:
        raise ConversionError(f"logits at position 0 differ from {expected_path} by {diff:.1e} (relative)")
    with torch.no_grad():
        out = model.generate(torch.tensor([[1]]), max_new_tokens=len(expected) - 1, do_sample=False,
                             num_beams=1, pad_token_id=0)
    got = out[0].tolist()
    if got != expected:
        first = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
        raise ConversionError(f"greedy tokens differ from {expected_path} at position {first}: "
                              f"got {got[first:first + 8]}, expected {expected[first:first + 8]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("out_dir", type=Path, nargs="?")
    ap.add_argument("--expected", type=Path, help="expected_greedy.json to check HF greedy generation against")
    args = ap.parse_args()
    try:
        model = to_hf(args.checkpoint)
        if args.expected:
            check_greedy(model, args.expected)
            print(f"greedy generation matches {args.expected}")
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.out_dir:
        model.save_pretrained(args.out_dir, safe_serialization=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
