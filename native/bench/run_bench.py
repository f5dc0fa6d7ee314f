"""LoRA training speed and memory: loraforge-core vs transformers + PEFT, same machine, same threads.

    .venv/bin/python native/bench/run_bench.py --core native/build/loraforge-core --threads 2

For each shape (stories260K, the real weights; 15M: dim 288, 6 layers, 6 heads, vocab 32000,
hidden 768, random weights) it writes a model directory and a shard of seq-256 records, then runs
`loraforge-core bench` and peft_reference.py one after the other in separate processes (so each
peak RSS is its own), and prints one table with the ratios against the targets
(>= 3x PEFT's tokens/s, <= 0.5x its peak RSS), FLOPs/token and GFLOP/s of each side, and the
machine's fp32 ceiling (lf-fma-peak: FMA peak and a large sgemm) next to what 3x PEFT would need.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent / "golden"))

from lfshard import write_shard  # noqa: E402

SEQ, MICRO, R, ALPHA, DROPOUT = 256, 8, 16, 16, 0.05
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
TARGET_SPEEDUP, TARGET_RSS = 3.0, 0.5


MAKE_15M = f"""
import sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(15)
cfg = LlamaConfig(vocab_size=32000, hidden_size=288, intermediate_size=768, num_hidden_layers=6,
                  num_attention_heads=6, num_key_value_heads=6, max_position_embeddings={SEQ},
                  rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
LlamaForCausalLM(cfg).save_pretrained(sys.argv[1], safe_serialization=True)
"""


def model_15m(dest: Path) -> Path:
    # in a child process: this one stays small, because Linux hands a parent's RSS at fork time
    # down to its children's ru_maxrss, and the core reports ru_maxrss
    if not (dest / "model.safetensors").is_file():
        subprocess.run([sys.executable, "-c", MAKE_15M, str(dest)], check=True)
    return dest


SHAPES = {
    "stories260K": lambda work: ROOT / "native/tests/golden/v1/stories260k/model",
    "15M": lambda work: model_15m(work / "model-15M"),
}


def flops_per_token(cfg: dict) -> dict:
    """Training FLOPs per token, counted per matmul (a multiply-add = 2 FLOPs).

    Frozen base linears: forward + input gradient (no weight gradient) = 2 x 2N.
    LoRA A, B: forward + input gradient + weight gradient = 3 x 2(r(in+out)).
    Attention scores and weighted sum over a causal context of (T+1)/2 on average:
    forward 2 x 2 x ctx x n_heads x head_dim per layer, backward twice that.
    """
    d, L, V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
    h, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
    hd = cfg.get("head_dim") or d // h
    ff = cfg["intermediate_size"]
    io = {"q_proj": (d, h * hd), "k_proj": (d, kv * hd), "v_proj": (d, kv * hd), "o_proj": (h * hd, d),
          "gate_proj": (d, ff), "up_proj": (d, ff), "down_proj": (ff, d)}
    base = L * sum(i * o for i, o in io.values()) + V * d  # + lm_head
    lora = L * sum(R * (io[m][0] + io[m][1]) for m in TARGETS)
    attn = L * 2 * 2 * ((SEQ + 1) / 2) * h * hd
    return {"base_params": base, "lora_params": lora, "flops": 2 * 2 * base + 3 * 2 * lora + 3 * attn}


def make_shard(path: Path, vocab: int, n: int) -> float:
    """Writes n records; returns the fraction of positions that have a loss target (the next
    token is unmasked): the rows the core runs the LM head for."""
    import random
    rng = random.Random(1)
    records, with_target = [], 0
    for _ in range(n):
        toks = [1] + [rng.randrange(3, vocab) for _ in range(SEQ - 1)]
        prompt = rng.randrange(16, 96)  # a masked prompt, as in instruction tuning
        mask = [0] * prompt + [1] * (SEQ - prompt)
        records.append((toks, mask))
        with_target += sum(mask[1:])
    write_shard(path, records, vocab)
    return with_target / (n * SEQ)


def fp32_ceiling(core: Path, threads: int) -> dict:
    """FMA peak and large-sgemm GFLOP/s with this many threads (lf-fma-peak, built beside the core)."""
    tool = core.parent / "lf-fma-peak"
    if not tool.is_file():
        return {"fma_peak_gflops": float("nan"), "sgemm_gflops": float("nan")}
    p = subprocess.run([str(tool), "--threads", str(threads)], capture_output=True, text=True, env=env_threads(threads))
    return last_json(p.stdout, "lf-fma-peak") if p.returncode == 0 else {"fma_peak_gflops": float("nan"), "sgemm_gflops": float("nan")}


def env_threads(threads: int) -> dict:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    return env


def last_json(stdout: str, what: str) -> dict:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"{what} printed no JSON line; stdout: {stdout[-500:]}")
    return json.loads(lines[-1])


def run_core(core: Path, model_dir: Path, shard: Path, work: Path, threads: int, steps: int) -> dict:
    run = {
        "version": 1, "model_dir": str(model_dir), "train_shards": [str(shard)], "val_shards": [str(shard)],
        "output_dir": str(work / "core-out"), "backend": "cpu", "threads": threads,
        "base_model_name_or_path": str(model_dir),
        "lora": {"r": R, "alpha": ALPHA, "dropout": DROPOUT, "target_modules": TARGETS, "use_rslora": False},
        "training": {"epochs": 1, "max_steps": 0, "learning_rate": 3e-4, "batch_size": MICRO,
                     "micro_batch_size": MICRO, "warmup_steps": 1, "scheduler": "linear", "weight_decay": 0.0,
                     "adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-8, "max_grad_norm": 1.0,
                     "seed": 42, "shuffle": False, "group_by_length": False, "precision": "fp32",
                     "gradient_checkpointing": False},
        "intervals": {"log_steps": 1, "eval_steps": 0, "save_steps": 0, "save_total_limit": 1},
        "check_numerics": False,
    }
    cfg = work / "run.json"
    cfg.write_text(json.dumps(run, indent=2))
    p = subprocess.run([str(core), "bench", "--config", str(cfg), "--steps", str(steps)],
                       capture_output=True, text=True, env=env_threads(threads))
    if p.returncode != 0:
        raise SystemExit(f"loraforge-core bench exited {p.returncode}: {p.stderr[-800:]}")
    r = last_json(p.stdout, "loraforge-core bench")
    if "peak_rss_mb" not in r and "peak_rss_bytes" in r:
        r["peak_rss_mb"] = r["peak_rss_bytes"] / 2**20
    return r


def run_peft(model_dir: Path, shard: Path, threads: int, steps: int, warmup: int) -> dict:
    cmd = [sys.executable, str(HERE / "peft_reference.py"), "--model", str(model_dir), "--shard", str(shard),
           "--threads", str(threads), "--steps", str(steps), "--warmup", str(warmup), "--micro-batch", str(MICRO),
           "--r", str(R), "--alpha", str(ALPHA), "--dropout", str(DROPOUT), "--targets", ",".join(TARGETS)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env_threads(threads))
    if p.returncode != 0:
        raise SystemExit(f"peft_reference.py exited {p.returncode}: {p.stderr[-800:]}")
    return last_json(p.stdout, "peft_reference.py")


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?")
    except OSError:
        model = "?"
    return f"{model}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def best(runs: list[dict]) -> dict:
    """The fastest of the repeats (other processes only ever slow a run down); the highest RSS."""
    fastest = dict(max(runs, key=lambda r: r["tokens_per_s"]))
    fastest["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    fastest["all_tokens_per_s"] = [round(r["tokens_per_s"], 1) for r in runs]
    return fastest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--core", type=Path, default=ROOT / "native/build/loraforge-core")
    ap.add_argument("--threads", default=str(os.cpu_count()), help="thread counts, comma-separated (e.g. 1,2)")
    ap.add_argument("--steps", type=int, default=6, help="timed steps per side (the core runs 1 untimed warm-up step first)")
    ap.add_argument("--peft-warmup", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="alternate ours/PEFT this many times, keep the best of each")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--work", type=Path, default=Path("/tmp/loraforge-bench"))
    args = ap.parse_args()
    if not args.core.is_file():
        print(f"error: --core {args.core}: no such file (build native/ first)", file=sys.stderr)
        return 2
    try:
        thread_counts = [int(t) for t in args.threads.split(",")]
    except ValueError:
        print(f"error: --threads {args.threads!r}: not comma-separated integers", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    loads = [load_average()]
    rows = []
    for name in args.shapes.split(","):
        if name not in SHAPES:
            print(f"error: unknown shape {name}; known: {list(SHAPES)}", file=sys.stderr)
            return 2
        model_dir = SHAPES[name](args.work)
        cfg = json.loads((model_dir / "config.json").read_text())
        shard = args.work / f"train-{name}.lfs"
        target_frac = make_shard(shard, cfg["vocab_size"], MICRO * (args.steps + args.peft_warmup + 1))
        f = flops_per_token(cfg)
        # the core runs the LM head (forward + input gradient) only for rows with a loss target
        f["flops_ours"] = f["flops"] - (1 - target_frac) * 2 * 2 * cfg["vocab_size"] * cfg["hidden_size"]
        for threads in thread_counts:
            ours_runs, ref_runs = [], []
            for _ in range(args.repeat):
                ours_runs.append(run_core(args.core, model_dir, shard, args.work, threads, args.steps))
                ref_runs.append(run_peft(model_dir, shard, threads, args.steps, args.peft_warmup))
                print(f"# {name} x{threads}: core {json.dumps(ours_runs[-1])}", file=sys.stderr)
                print(f"# {name} x{threads}: peft {json.dumps(ref_runs[-1])}", file=sys.stderr)
            rows.append((name, threads, f, best(ours_runs), best(ref_runs), fp32_ceiling(args.core, threads)))
            loads.append(load_average())

    print(f"LoRA training, seq {SEQ}, micro-batch {MICRO}, r {R} on {','.join(TARGETS)}, fp32; "
          f"{args.steps} timed steps, best of {args.repeat}; "
          f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {machine()}; "
          f"load average during the run {' -> '.join(loads)}")
    print()
    print("| shape | threads | params (base + LoRA) | FLOPs/token PEFT (ours) | ours tok/s | PEFT tok/s "
          "| speed-up (target >= 3x) | ours peak RSS MB | PEFT peak RSS MB | RSS ratio (target <= 0.5x) "
          "| ours GFLOP/s | PEFT GFLOP/s | fp32 ceiling: FMA peak / large sgemm | 3x PEFT would need |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    ok = True
    for name, threads, f, ours, ref, ceil in rows:
        speed = ours["tokens_per_s"] / ref["tokens_per_s"]
        rss = ours["peak_rss_mb"] / ref["peak_rss_mb"]
        ok &= speed >= TARGET_SPEEDUP and rss <= TARGET_RSS
        # what 3x PEFT's tokens/s costs in arithmetic, with the core's own (smaller) FLOP count
        need = TARGET_SPEEDUP * ref["tokens_per_s"] * f["flops_ours"] / 1e9
        peak, gemm = ceil["fma_peak_gflops"], ceil["sgemm_gflops"]
        print(f"| {name} | {threads} | {f['base_params'] / 1e6:.2f}M + {f['lora_params'] / 1e3:.1f}k "
              f"| {f['flops'] / 1e6:.1f}M ({f['flops_ours'] / 1e6:.1f}M) "
              f"| {ours['tokens_per_s']:.0f} | {ref['tokens_per_s']:.0f} "
              f"| {speed:.2f}x {'met' if speed >= TARGET_SPEEDUP else 'MISSED'} "
              f"| {ours['peak_rss_mb']:.0f} | {ref['peak_rss_mb']:.0f} (torch alone {ref['rss_after_import_mb']:.0f}) "
              f"| {rss:.2f}x {'met' if rss <= TARGET_RSS else 'MISSED'} "
              f"| {f['flops_ours'] * ours['tokens_per_s'] / 1e9:.1f} | {f['flops'] * ref['tokens_per_s'] / 1e9:.1f} "
              f"| {peak:.0f} / {gemm:.0f} "
              f"| {need:.1f} GFLOP/s = {100 * need / peak:.0f}% of FMA peak, {100 * need / gemm:.0f}% of sgemm |")
    print()
    print("targets met" if ok else "targets NOT all met")
    return 0  # a benchmark reports; it does not fail a build


if __name__ == "__main__":
    sys.exit(main())
