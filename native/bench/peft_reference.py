"""The reference side of the benchmark: LoRA training with transformers + PEFT on torch CPU.

Prints one JSON line: tokens_per_s (warm-up steps excluded), peak_rss_mb (ru_maxrss of this
process, which includes torch itself), rss_after_import_mb, seconds, tokens, steps.

    python peft_reference.py --model DIR --shard train.lfs --threads 2 --steps 6 --warmup 2 \
        --micro-batch 8 --r 16 --alpha 16 --targets q_proj,k_proj,v_proj,o_proj

The loop is what the Trainer does per optimizer step without its bookkeeping (forward with
labels, backward, clip_grad_norm_, AdamW, linear schedule), so it is, if anything, a little
faster than alpaca-lora's Trainer run.
"""

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "golden"))


def rss_mb() -> float:
    """Peak RSS of this process image. VmHWM, not ru_maxrss: Linux carries ru_maxrss across
    fork+exec, so a child would report at least its parent's RSS at the time of the fork."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--shard", type=Path, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--steps", type=int, default=6, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--r", type=int, default=16)
    ap.add_argument("--alpha", type=int, default=16)
    ap.add_argument("--dropout", type=float, default=0.05)
    ap.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
    ap.add_argument("--lr", type=float, default=3e-4)
    args = ap.parse_args()

    import torch  # after argument parsing, so --help is quick
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM, get_linear_schedule_with_warmup
    from transformers import logging as hf_logging

    from lfshard import read_shard

    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    hf_logging.set_verbosity_error()
    rss_import = rss_mb()

    _, records = read_shard(args.shard)
    base = LlamaForCausalLM.from_pretrained(args.model, dtype=torch.float32)  # default attention (sdpa)
    model = get_peft_model(base, LoraConfig(r=args.r, lora_alpha=args.alpha, lora_dropout=args.dropout,
                                            target_modules=args.targets.split(","), task_type="CAUSAL_LM"))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    total = args.warmup + args.steps
    sched = get_linear_schedule_with_warmup(opt, 1, total)

    def batch(step: int):
        n = len(records)
        recs = [records[(step * args.micro_batch + i) % n] for i in range(args.micro_batch)]
        longest = max(len(t) for t, _ in recs)
        ids = torch.zeros((len(recs), longest), dtype=torch.long)
        att = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for i, (t, m) in enumerate(recs):
            tt, mm = torch.tensor(t), torch.tensor(m, dtype=torch.bool)
            ids[i, : len(t)] = tt
            att[i, : len(t)] = 1
            labels[i, : len(t)] = torch.where(mm, tt, torch.full_like(tt, -100))
        return {"input_ids": ids, "attention_mask": att, "labels": labels}

    tokens, t0, first_loss, last_loss = 0, None, None, None
    for step in range(total):
        if step == args.warmup:
            t0 = time.perf_counter()
        b = batch(step)
        loss = model(**b).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        last_loss = loss.item()
        first_loss = last_loss if first_loss is None else first_loss
        if step >= args.warmup:
            tokens += b["input_ids"].numel()
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "impl": "transformers+peft", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "steps": args.steps, "warmup_steps": args.warmup, "tokens": tokens, "seconds": seconds,
        "tokens_per_s": tokens / seconds, "peak_rss_mb": rss_mb(), "rss_after_import_mb": rss_import,
        "trainable_params": sum(p.numel() for p in params), "first_loss": first_loss, "last_loss": last_loss,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
