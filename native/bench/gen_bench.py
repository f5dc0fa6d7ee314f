"""Generation speed on CPU: `loraforge-core generate` vs transformers `generate`, same machine,
same threads, side by side in one run; and the memory-bandwidth bound of batch 1.

    .venv/bin/python native/bench/gen_bench.py --core native/build/loraforge-core --threads 2

For each shape (stories260K, the real weights; 15M: run_bench.py's random dim-288 model) and
batch 1 and 16: prompts of PROMPT random tokens, NEW greedy tokens each (no stop token, so every
sequence generates exactly NEW), KV cache on both sides. tokens/s = generated tokens / wall time
of the whole generation (prefill included): the core's `done` event (timed from after the model
load; 16 prompts in batches of 1 or 16); transformers' `generate` call timed after one warm-up call, in a child process (sdpa
attention, fp32, torch.set_num_threads = threads). Best of --reps runs each.

Bandwidth bound (batch 1): every decoding step reads all weights once (the embedding only one
row; with tied embeddings the LM head reads the table) plus the KV cache, so tokens/s <= memory
bandwidth / bytes read per token. Bandwidth: the best of a few numpy copies of 256 MiB
(read + write bytes / time), in this process, on one thread. A model whose weights fit in the
last-level cache (stories260K: 1 MB) is not bound by DRAM; its bound is printed for scale only.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run_bench import SHAPES, env_threads, last_json, load_average, machine  # noqa: E402

PROMPT, NEW = 32, 64
BATCHES = [1, 16]
N_PROMPTS = 16  # the core runs 16 prompts at either batch size (batch 1: one after another), so a
                # run lasts long enough to time on a busy machine

HF_GENERATE = """
import json, sys, time, torch
from transformers import LlamaForCausalLM
model_dir, threads, batch, prompt, new, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
torch.set_num_threads(threads)
m = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
g = torch.Generator().manual_seed(3)
ids = torch.cat([torch.ones(batch, 1, dtype=torch.long), torch.randint(3, m.config.vocab_size, (batch, prompt - 1), generator=g)], 1)
kw = dict(attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new, do_sample=False, num_beams=1,
          pad_token_id=0, eos_token_id=None, use_cache=True)
with torch.inference_mode():
    m.generate(ids, **kw)  # warm-up
    best = 1e30
    for _ in range(reps):
        t0 = time.perf_counter()
        out = m.generate(ids, **kw)
        best = min(best, time.perf_counter() - t0)
assert out.shape[1] == prompt + new, out.shape
print(json.dumps({"tokens_per_s": batch * new / best, "seconds": best}))
"""


def bandwidth_gbs() -> float:
    a = np.ones(64 << 20, dtype=np.float32)  # 256 MiB
    b = np.empty_like(a)
    best = 1e30
    for _ in range(5):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.nbytes / best / 1e9


def bytes_per_token(cfg: dict, ctx: int) -> float:
    """fp32 bytes read by one decoding step of one sequence at context length ctx."""
    d, L, V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    h, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
    hd = cfg.get("head_dim") or d // h
    ff = cfg["intermediate_size"]
    per_layer = d * (h * hd) + 2 * d * (kv * hd) + (h * hd) * d + 3 * d * ff + 2 * d
    weights = L * per_layer + d + V * d + d  # + final norm, LM head, one embedding row
    cache = L * 2 * ctx * kv * hd
    return 4.0 * (weights + cache)


def run_core(core: Path, model_dir: Path, prompts: Path, threads: int, batch: int, reps: int) -> float:
    best = 0.0
    for _ in range(reps):
        p = subprocess.run([str(core), "generate", "--model", str(model_dir), "--prompts", str(prompts),
                            "--max-new-tokens", str(NEW), "--batch-size", str(batch), "--threads", str(threads),
                            "--stop-tokens", ""], capture_output=True, text=True, env=env_threads(threads))
        if p.returncode != 0:
            raise SystemExit(f"loraforge-core generate failed ({p.returncode}): {p.stdout[-800:]}{p.stderr[-800:]}")
        done = last_json(p.stdout, "loraforge-core generate")
        assert done["event"] == "done" and done["tokens"] == N_PROMPTS * NEW, done
        best = max(best, done["tokens_per_s"])
    return best


def run_hf(model_dir: Path, threads: int, batch: int, reps: int) -> float:
    p = subprocess.run([sys.executable, "-c", HF_GENERATE, str(model_dir), str(threads), str(batch), str(PROMPT),
                        str(NEW), str(reps)], capture_output=True, text=True, env=env_threads(threads))
    if p.returncode != 0:
        raise SystemExit(f"transformers generate failed: {p.stderr[-1500:]}")
    return last_json(p.stdout, "transformers generate")["tokens_per_s"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--core", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--shapes", default="stories260K,15M")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None, help="where the 15M model is kept (default: a temp dir)")
    a = ap.parse_args()
    load_before = load_average()
    bw = bandwidth_gbs()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for shape in a.shapes.split(","):
            model_dir = SHAPES[shape](work)
            cfg = json.loads((model_dir / "config.json").read_text())
            rng = np.random.default_rng(3)
            for batch in BATCHES:
                prompts = work / f"prompts-{shape}-{batch}.jsonl"
                with prompts.open("w") as f:
                    for i in range(N_PROMPTS):
                        toks = [1] + rng.integers(3, cfg["vocab_size"], PROMPT - 1).tolist()
                        f.write(json.dumps({"id": str(i), "tokens": toks}) + "\n")
                ours = run_core(a.core, model_dir, prompts, a.threads, batch, a.reps)
                hf = run_hf(model_dir, a.threads, batch, a.reps)
                bound = bw * 1e9 / bytes_per_token(cfg, PROMPT + NEW // 2) if batch == 1 else float("nan")
                rows.append((shape, batch, ours, hf, bound))
                print(f"  {shape} batch {batch}: ours {ours:.0f} tok/s, transformers {hf:.0f} tok/s", file=sys.stderr)
    print(f"# generation, {PROMPT}-token prompts, {NEW} new tokens each, greedy, fp32, {a.threads} thread(s)")
    print(f"# {machine()}; {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"# load average before / after: {load_before} / {load_average()} (1, 5, 15 min)")
    print(f"# memory bandwidth (numpy copy of 256 MiB, 1 thread): {bw:.1f} GB/s")
    print("| shape | batch | loraforge-core tok/s | transformers tok/s | ours / HF | bandwidth bound tok/s (batch 1) | ours / bound |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for shape, batch, ours, hf, bound in rows:
        b = f"{bound:.0f}" if bound == bound else "—"
        r = f"{ours / bound:.2f}" if bound == bound else "—"
        print(f"| {shape} | {batch} | {ours:.0f} | {hf:.0f} | {ours / hf:.2f}x | {b} | {r} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
