"""LoRA training on one GPU: loraforge-core (cuda backend) vs transformers + PEFT (SDPA), side by side.

    python native/gpu/bench_gpu.py --core native/build-gpu/loraforge-core            # the GPU check's benchmark
    python native/gpu/bench_gpu.py --core native/build/loraforge-core --device cpu \\
        --shapes tiny --precisions fp32 --steps 2 --warmup 1                      # its CPU dry run

Per shape (random weights, written once as an fp16 safetensors model directory; nothing is
downloaded) and precision: a shard of seq-512 records, then `loraforge-core bench` and the PEFT
reference (this file with --peft, a separate process, so each peak is its own) one after the
other. LoRA r 16 on q, k, v, o; micro-batch 4. Prints one table: tokens/s, peak GPU memory, MFU
and the ratios against the issue's targets (>= 2x PEFT tokens/s in bf16, >= 1.8x in fp16,
<= 0.6x its peak memory, MFU >= 50%), and one JSON line per row on stderr.

Peak memory: PEFT's is torch.cuda.max_memory_reserved (what its allocator took); ours is the
largest `memory.used` nvidia-smi reports while the core runs minus the value before it started
(the same process-level view both ways would need NVML per process; this is the closest
without it). MFU: training FLOPs per token (flops_per_token) x tokens/s over the GPU's dense
peak for the precision (PEAK_TFLOPS by device name, or --peak-tflops).
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "golden"))

from lfshard import read_shard, write_shard  # noqa: E402

SEQ, MICRO, R, ALPHA = 512, 4, 16, 16
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
SHAPES = {  # Llama-2 shapes; tiny is the CPU dry run's
    "tiny": dict(hidden_size=64, intermediate_size=172, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512),
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=32, vocab_size=32000),
    "13b": dict(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40,
                num_key_value_heads=40, vocab_size=32000),
}
# dense fp16/bf16 tensor-core peak (TFLOP/s) of the GPUs this check is meant for
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "V100": 125.0, "L40S": 362.0}
TARGET_SPEEDUP = {"bf16": 2.0, "fp16": 1.8, "fp32": 1.0}
TARGET_MEM, TARGET_MFU = 0.6, 0.5


def flops_per_token(cfg: dict, seq: int) -> float:
    """Frozen linears: forward + input gradient = 2 x 2N; LoRA: 3 x 2 r(in+out); attention over a
    causal context of (T+1)/2: forward 2 x 2 x ctx x d per layer, backward twice that."""
    d, L, V, ff = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"], cfg["intermediate_size"]
    h, kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = d // h
    io = {"q_proj": (d, h * hd), "k_proj": (d, kv * hd), "v_proj": (d, kv * hd), "o_proj": (h * hd, d),
          "gate_proj": (d, ff), "up_proj": (d, ff), "down_proj": (ff, d)}
    base = L * sum(i * o for i, o in io.values()) + V * d
    lora = L * sum(R * (io[m][0] + io[m][1]) for m in TARGETS)
    attn = L * 2 * 2 * ((seq + 1) / 2) * h * hd
    return 2 * 2 * base + 3 * 2 * lora + 3 * attn


def make_model(shape: str, work: Path) -> Path:
    """Random-weight Llama model directory (fp16 safetensors), written once per shape."""
    dest = work / f"model-{shape}"
    if (dest / "config.json").is_file():
        return dest
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    cfg = LlamaConfig(**SHAPES[shape], max_position_embeddings=4096, rms_norm_eps=1e-5, tie_word_embeddings=False,
                      bos_token_id=1, eos_token_id=2, torch_dtype="float16")
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(dev):
        model = LlamaForCausalLM(cfg).to(torch.float16)
    tmp = dest.with_name(dest.name + ".tmp")
    model.save_pretrained(tmp, safe_serialization=True, max_shard_size="5GB")
    del model
    tmp.rename(dest)
    return dest


def make_shard(path: Path, vocab: int, n: int) -> None:
    import random
    rng = random.Random(1)
    records = []
    for _ in range(n):
        toks = [1] + [rng.randrange(3, vocab) for _ in range(SEQ - 1)]
        prompt = rng.randrange(16, 96)
        records.append((toks, [0] * prompt + [1] * (SEQ - prompt)))
    write_shard(path, records, vocab)


class GpuMemPoll:
    """Largest nvidia-smi memory.used (MiB) of GPU 0 while running, minus the value at start."""

    def __init__(self, enabled: bool):
        self.enabled, self.peak, self.base, self._stop = enabled, 0.0, 0.0, threading.Event()

    def _read(self) -> float:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, check=True).stdout
        return float(out.strip().splitlines()[0])

    def __enter__(self):
        if self.enabled:
            self.base = self._read()
            self._t = threading.Thread(target=self._loop, daemon=True)
            self._t.start()
        return self

    def _loop(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._read())
            time.sleep(0.1)

    def __exit__(self, *exc):
        if self.enabled:
            self._stop.set()
            self._t.join()

    @property
    def used_mb(self) -> float | None:
        return self.peak - self.base if self.enabled else None


def last_json(stdout: str, what: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit(f"{what}: no JSON result in its output")


def run_core(core: Path, model: Path, shard: Path, work: Path, backend: str, precision: str, steps: int,
             checkpointing: bool, gpu: bool) -> dict:
    run = {
        "version": 1, "model_dir": str(model), "train_shards": [str(shard)], "val_shards": [str(shard)],
        "output_dir": str(work / "core-out"), "backend": backend, "threads": 0, "base_model_name_or_path": str(model),
        "lora": {"r": R, "alpha": ALPHA, "dropout": 0.05, "target_modules": TARGETS, "use_rslora": False},
        "training": {"epochs": 1, "max_steps": 0, "learning_rate": 3e-4, "batch_size": MICRO,
                     "micro_batch_size": MICRO, "warmup_steps": 1, "scheduler": "linear", "weight_decay": 0.0,
                     "adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-8, "max_grad_norm": 1.0,
                     "seed": 42, "shuffle": False, "group_by_length": False, "precision": precision,
                     "gradient_checkpointing": checkpointing},
        "intervals": {"log_steps": 1, "eval_steps": 0, "save_steps": 0, "save_total_limit": 1},
        "check_numerics": False,
    }
    cfg = work / f"run-{backend}-{precision}.json"
    cfg.write_text(json.dumps(run, indent=2))
    with GpuMemPoll(gpu) as mem:
        p = subprocess.run([str(core), "bench", "--config", str(cfg), "--steps", str(steps)], capture_output=True,
                           text=True)
    if p.returncode != 0:
        return {"error": f"loraforge-core bench exited {p.returncode}: {p.stderr.strip()[-400:]}"}
    r = last_json(p.stdout, "loraforge-core bench")
    r["peak_mb"] = mem.used_mb if gpu else r.get("peak_rss_mb", r.get("peak_rss_bytes", 0) / 2**20)
    return r


def run_peft(model: Path, shard: Path, device: str, precision: str, steps: int, warmup: int,
             checkpointing: bool) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--peft", "--model", str(model), "--shard", str(shard),
           "--device", device, "--precisions", precision, "--steps", str(steps), "--warmup", str(warmup)]
    if checkpointing:
        cmd.append("--checkpointing")
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": f"PEFT reference exited {p.returncode}: {p.stderr.strip()[-400:]}"}
    return last_json(p.stdout, "PEFT reference")


def peft_main(a) -> int:
    """The reference side (in its own process): the Trainer's per-step work without its bookkeeping."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM
    from transformers import logging as hf_logging
    hf_logging.set_verbosity_error()
    torch.manual_seed(42)
    precision = a.precisions
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    dev = torch.device(a.device)
    base = LlamaForCausalLM.from_pretrained(a.model, dtype=dtype if precision != "fp32" else torch.float32,
                                            attn_implementation="sdpa").to(dev)
    if a.checkpointing:
        base.gradient_checkpointing_enable()
        base.enable_input_require_grads()
    model = get_peft_model(base, LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.05, target_modules=TARGETS,
                                            task_type="CAUSAL_LM"))
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:  # fp32 master LoRA weights, as ours
        p.data = p.data.float()
    opt = torch.optim.AdamW(params, lr=3e-4, weight_decay=0.0)
    scaler = torch.amp.GradScaler(enabled=precision == "fp16")
    _, records = read_shard(a.shard)
    tokens, t0 = 0, None
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for step in range(a.warmup + a.steps):
        if step == a.warmup:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        recs = [records[(step * MICRO + i) % len(records)] for i in range(MICRO)]
        ids = torch.tensor([t for t, _ in recs], device=dev)
        labels = torch.where(torch.tensor([m for _, m in recs], device=dev).bool(), ids, torch.full_like(ids, -100))
        with torch.autocast(dev.type, dtype=dtype, enabled=precision != "fp32"):
            loss = model(input_ids=ids, labels=labels).loss
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        if step >= a.warmup:
            tokens += ids.numel()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_reserved() / 2**20 if dev.type == "cuda" else None
    print(json.dumps({"impl": "transformers+peft", "torch": torch.__version__, "tokens": tokens, "seconds": seconds,
                      "tokens_per_s": tokens / seconds, "peak_mb": peak, "last_loss": loss.item()}))
    return 0


def gpu_name() -> str:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader", "-i", "0"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "no GPU"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--core", type=Path)
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--shapes", default="7b")
    ap.add_argument("--precisions", default="bf16,fp16")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--checkpointing", action="store_true", help="gradient checkpointing on both sides")
    ap.add_argument("--memory-only", action="store_true", help="ours only (the 13B fp16 peak-memory row)")
    ap.add_argument("--peak-tflops", type=float, default=0.0)
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "loraforge-gpu-bench")
    ap.add_argument("--peft", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--shard", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.peft:
        return peft_main(a)
    if a.core is None or not a.core.is_file():
        ap.error(f"--core: {a.core} is not a file (build loraforge-core first)")
    gpu = a.device == "cuda"
    backend = "cuda" if gpu else "cpu"
    name = gpu_name() if gpu else "cpu"
    peak = a.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in name), 0.0)
    a.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for shape in a.shapes.split(","):
        if shape not in SHAPES:
            ap.error(f"--shapes: unknown shape '{shape}' (known: {', '.join(SHAPES)})")
        model = make_model(shape, a.work)
        shard = a.work / f"train-{shape}.lfs"
        if not shard.is_file():
            make_shard(shard, SHAPES[shape]["vocab_size"], MICRO * (a.steps + a.warmup + 1))
        fpt = flops_per_token(SHAPES[shape], SEQ)
        for precision in a.precisions.split(","):
            ours = run_core(a.core, model, shard, a.work, backend, precision, a.steps, a.checkpointing, gpu)
            ref = {} if a.memory_only else run_peft(model, shard, a.device, precision, a.steps, a.warmup,
                                                    a.checkpointing)
            row = {"shape": shape, "precision": precision, "checkpointing": a.checkpointing, "gpu": name,
                   "ours": ours, "peft": ref, "flops_per_token": fpt}
            print(json.dumps(row), file=sys.stderr)
            rows.append(row)
    print(f"\nLoRA r{R} q,k,v,o, seq {SEQ}, micro-batch {MICRO}, random weights; {name}; peak {peak or '?'} TFLOP/s")
    hdr = (f"{'shape':6} {'prec':5} {'ckpt':4} | {'ours tok/s':>10} {'PEFT tok/s':>10} {'speedup':>8} {'target':>6} | "
           f"{'ours MiB':>9} {'PEFT MiB':>9} {'ratio':>6} | {'ours MFU':>8} {'PEFT MFU':>8}")
    print(hdr)
    print("-" * len(hdr))
    ok = True
    for r in rows:
        o, p = r["ours"], r["peft"]
        if "error" in o or "error" in p:
            print(f"{r['shape']:6} {r['precision']:5} {'yes' if r['checkpointing'] else 'no':4} | "
                  f"ERROR {o.get('error') or p.get('error')}")
            ok = False
            continue
        ot, pt = o.get("tokens_per_s", 0.0), p.get("tokens_per_s")
        om, pm = o.get("peak_mb"), p.get("peak_mb")
        sp = ot / pt if pt else None
        mr = om / pm if om and pm else None
        mfu = (lambda t: f"{100 * t * r['flops_per_token'] / (peak * 1e12):7.1f}%" if peak and t else f"{'-':>8}")
        print(f"{r['shape']:6} {r['precision']:5} {'yes' if r['checkpointing'] else 'no':4} | {ot:10.0f} "
              f"{pt if pt is None else round(pt):>10} {sp and f'{sp:7.2f}x' or '-':>8} "
              f"{TARGET_SPEEDUP.get(r['precision'], 1.0):5.1f}x | {om or 0:9.0f} {pm or 0:9.0f} "
              f"{mr and f'{mr:5.2f}x' or '-':>6} | {mfu(ot)} {mfu(pt)}")
    print(f"targets: speedup as listed, memory <= {TARGET_MEM}x PEFT, MFU >= {100 * TARGET_MFU:.0f}%")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
