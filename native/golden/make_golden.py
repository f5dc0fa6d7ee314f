"""Write the golden files the C++ core is tested against (format 1, ../tests/golden/FORMAT.md).

Every number comes from the pinned Hugging Face stack (requirements.txt): transformers'
LlamaForCausalLM, PEFT's LoRA, and the real transformers Trainer for the 10 optimizer steps.
An explicit training loop re-derives the Trainer's numbers, so the convention the core must
follow is spelled out in code (see `explicit_training_loop`) and checked on every run.

    python make_golden.py                      # all configs into ../tests/golden/v1
    python make_golden.py --out /tmp/g --configs stories260k
"""

import argparse
import json
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dispatch

DISPATCH = dispatch.pin()  # before torch loads: it picks its CPU kernels at import

import numpy as np  # noqa: E402
import peft  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch.utils.data import SequentialSampler  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainerCallback, TrainingArguments  # noqa: E402

import convert_llama2c  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "tests" / "golden" / "v1"
STORIES_DIR = HERE / "assets" / "stories260K"
FORMAT = 1
PAD_ID = 0
LOSS_CONVENTION = (
    "sum of token losses over the accumulated batch / number of unmasked tokens in the whole "
    "accumulated batch (transformers num_items_in_batch)"
)


# ---------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------

@dataclass
class Lora:
    r: int
    alpha: int
    target_modules: list[str]
    use_rslora: bool = False


@dataclass
class Train:
    learning_rate: float
    batch_size: int
    micro_batch_size: int
    warmup_steps: int
    max_grad_norm: float
    record_len: tuple[int, int]  # inclusive range of record lengths
    steps: int = 10
    # every k-th record is trained from its first token (mask[0] = 1, as trainOnInputs gives):
    # the BOS label is never a target after the shift but counts in num_items_in_batch. 0: none
    full_mask_every: int = 0


@dataclass
class GoldenConfig:
    name: str
    model: Callable[[], LlamaForCausalLM]
    lora: Lora
    fwd_batch: int
    fwd_seq: int
    train: Train
    seed: int = 1234
    save_dtype: torch.dtype = torch.float32  # how model/ stores the weights; all math is fp32
    max_shard_size: str = "5GB"  # small -> model-0000k-of-0000n.safetensors + index.json


def stories260k_model() -> LlamaForCausalLM:
    model = convert_llama2c.to_hf(STORIES_DIR / "stories260K.bin")
    convert_llama2c.check_greedy(model, STORIES_DIR / "expected_greedy.json")
    return model


def random_model(config: LlamaConfig, seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).float()
    # RMSNorm weights start at 1 in HF; make them non-trivial so the core must apply them.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
    return model.eval()


def mha_untied_all7_model() -> LlamaForCausalLM:
    return random_model(LlamaConfig(
        vocab_size=256, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
        rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False, initializer_range=0.1,
        bos_token_id=1, eos_token_id=2, torch_dtype="float32"), seed=11)


def llama3_rope_model() -> LlamaForCausalLM:
    # original_max_position_embeddings 32 with head_dim 32 and theta 5e5 puts the RoPE frequencies
    # in all three llama3 regimes (kept, smoothed, divided by factor); positions reach 64.
    return random_model(LlamaConfig(
        vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=256,
        rms_norm_eps=1e-5, rope_theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 32},
        tie_word_embeddings=False, initializer_range=0.1, bos_token_id=1, eos_token_id=2,
        torch_dtype="float32"), seed=12)


def gqa_bf16_sharded_model() -> LlamaForCausalLM:
    return random_model(LlamaConfig(
        vocab_size=320, hidden_size=48, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=64,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, initializer_range=0.1,
        bos_token_id=1, eos_token_id=2), seed=13)


ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]
ALL7 = ATTN + ["gate_proj", "up_proj", "down_proj"]

CONFIGS = {
    c.name: c for c in [
        GoldenConfig(
            name="stories260k", model=stories260k_model,
            lora=Lora(r=4, alpha=8, target_modules=ATTN),
            fwd_batch=3, fwd_seq=32,
            train=Train(learning_rate=5e-3, batch_size=4, micro_batch_size=2, warmup_steps=3,
                        max_grad_norm=11.0, record_len=(6, 24)),
        ),
        GoldenConfig(
            name="mha_untied_all7", model=mha_untied_all7_model,
            lora=Lora(r=8, alpha=16, target_modules=ALL7, use_rslora=True),
            fwd_batch=2, fwd_seq=24,
            train=Train(learning_rate=3e-3, batch_size=6, micro_batch_size=3, warmup_steps=2,
                        max_grad_norm=4.8, record_len=(5, 20), full_mask_every=4),
        ),
        GoldenConfig(
            name="llama3_rope", model=llama3_rope_model,
            lora=Lora(r=4, alpha=16, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"]),
            fwd_batch=2, fwd_seq=64,
            train=Train(learning_rate=4e-3, batch_size=4, micro_batch_size=1, warmup_steps=4,
                        max_grad_norm=1.3, record_len=(20, 60)),
        ),
        GoldenConfig(
            # BF16 weights in 3+ shards with model.safetensors.index.json: HF upcasts them to fp32
            # exactly, so must the core's loader
            name="gqa_bf16_sharded", model=gqa_bf16_sharded_model,
            lora=Lora(r=2, alpha=4, target_modules=["k_proj", "gate_proj", "up_proj"]),
            fwd_batch=2, fwd_seq=20,
            train=Train(learning_rate=5e-3, batch_size=4, micro_batch_size=2, warmup_steps=2,
                        max_grad_norm=0.55, record_len=(4, 16)),
            save_dtype=torch.bfloat16, max_shard_size="60KB",
        ),
    ]
}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def peft_key(param_name: str) -> str:
    """named_parameters name -> the key PEFT writes in adapter_model.safetensors."""
    return param_name.replace(".default.weight", ".weight")


def lora_params(model) -> dict[str, torch.nn.Parameter]:
    return {peft_key(n): p for n, p in model.named_parameters() if "lora_" in n}


def snapshot(model) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone().contiguous() for k, p in sorted(lora_params(model).items())}


def lora_config(c: GoldenConfig) -> LoraConfig:
    return LoraConfig(r=c.lora.r, lora_alpha=c.lora.alpha, lora_dropout=0.0,
                      target_modules=list(c.lora.target_modules), use_rslora=c.lora.use_rslora,
                      bias="none", task_type="CAUSAL_LM")


def load_base(model_dir: Path) -> LlamaForCausalLM:
    # eager attention: the plain softmax(QK^T/sqrt(d) + mask) V that the core implements
    return LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                            attn_implementation="eager").eval()


def make_records(gen: torch.Generator, n: int, length: tuple[int, int], vocab: int, full_mask_every: int = 0):
    """n records of random tokens; a prompt of >= 1 tokens is masked (mask 0), the rest is trained;
    with full_mask_every = k, records k-1, 2k-1, ... are trained whole (mask all 1)."""
    records = []
    for i in range(n):
        t = int(torch.randint(length[0], length[1] + 1, (1,), generator=gen))
        tokens = torch.randint(3, vocab, (t,), generator=gen)
        tokens[0] = 1  # BOS
        prompt = int(torch.randint(1, t - 1, (1,), generator=gen))
        if full_mask_every and i % full_mask_every == full_mask_every - 1:
            prompt = 0
        mask = torch.zeros(t, dtype=torch.uint8)
        mask[prompt:] = 1
        records.append((tokens, mask))
    return records


def collate(records) -> dict[str, torch.Tensor]:
    """Right-pad a micro-batch to its longest record; padding and mask-0 tokens get label -100."""
    longest = max(len(t) for t, _ in records)
    ids = torch.full((len(records), longest), PAD_ID, dtype=torch.long)
    att = torch.zeros((len(records), longest), dtype=torch.long)
    labels = torch.full((len(records), longest), -100, dtype=torch.long)
    for i, (t, m) in enumerate(records):
        ids[i, : len(t)] = t
        att[i, : len(t)] = 1
        labels[i, : len(t)] = torch.where(m.bool(), t, torch.full_like(t, -100))
    return {"input_ids": ids, "attention_mask": att, "labels": labels}


class RecordDataset(torch.utils.data.Dataset):
    def __init__(self, records):
        self.records = records

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        return self.records[i]


# ---------------------------------------------------------------------------------------------
# Forward / backward check
# ---------------------------------------------------------------------------------------------

def forward_backward(c: GoldenConfig, model_dir: Path, out: dict) -> None:
    torch.manual_seed(c.seed)
    base = load_base(model_dir)
    vocab = base.config.vocab_size
    gen = torch.Generator().manual_seed(c.seed + 1)
    B, T = c.fwd_batch, c.fwd_seq
    ids = torch.randint(3, vocab, (B, T), generator=gen)
    ids[:, 0] = 1
    att = torch.ones(B, T, dtype=torch.long)
    labels = ids.clone()
    pad = T // 4
    att[1, T - pad:] = 0  # row 1 is right-padded
    ids[1, T - pad:] = PAD_ID
    for b in range(B):  # a masked prompt of a different length per row
        labels[b, : 2 + 3 * b] = -100
    labels[att == 0] = -100

    with torch.no_grad():
        base_logits = base(input_ids=ids, attention_mask=att).logits
    if base.config.rope_scaling:
        plain = LlamaConfig.from_dict({**base.config.to_dict(), "rope_scaling": None})
        with torch.random.fork_rng(), torch.no_grad():  # leave the global RNG (PEFT's A init) alone
            unscaled = LlamaForCausalLM(plain).eval()
            unscaled.load_state_dict(base.state_dict())
            effect = rel_diff(unscaled(input_ids=ids, attention_mask=att).logits[att.bool()], base_logits[att.bool()])
        if effect < 1e-3:
            raise SystemExit(f"{c.name}: rope_scaling changes the logits by only {effect:.1e}; make seq longer")

    model = get_peft_model(base, lora_config(c))
    with torch.no_grad():  # B random so every gradient (A's too) is non-trivial
        for k, p in lora_params(model).items():
            if ".lora_B." in k:
                p.copy_(0.02 * torch.randn(p.shape, generator=gen))
    init = snapshot(model)
    model.train()  # dropout is 0: train() changes nothing but is the mode gradients come from
    result = model(input_ids=ids, attention_mask=att, labels=labels)
    result.loss.backward()

    logits = result.logits.detach()
    real = att.bool()
    change = (logits - base_logits)[real].abs().max() / base_logits[real].abs().max()
    if change < 1e-3:
        raise SystemExit(f"{c.name}: the adapter barely changes the logits ({change:.2e}); the check would be weak")

    out["fwd.input_ids"] = ids
    out["fwd.attention_mask"] = att
    out["fwd.labels"] = labels
    out["fwd.logits"] = logits.contiguous()
    out["fwd.loss"] = result.loss.detach().reshape(())
    for k, v in init.items():
        out[f"init.{k}"] = v
    for k, p in sorted(lora_params(model).items()):
        if p.grad is None or p.grad.abs().max() == 0:
            raise SystemExit(f"{c.name}: gradient of {k} is zero")
        out[f"grad.{k}"] = p.grad.detach().clone()


# ---------------------------------------------------------------------------------------------
# 10 optimizer steps with the real Trainer
# ---------------------------------------------------------------------------------------------

class SequentialTrainer(Trainer):
    """The stock Trainer, but records are consumed in order and each micro-batch loss is kept."""

    micro_losses: list[float]

    def _get_train_sampler(self, train_dataset=None):
        return SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.micro_losses.append(loss)
        return loss


class Recorder(TrainerCallback):
    def __init__(self):
        self.lrs, self.grad_norms = [], []

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        self.lrs.append(optimizer.param_groups[0]["lr"])  # the lr this optimizer.step() uses

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "grad_norm" in logs:  # clip_grad_norm_'s return: the norm before clipping
            self.grad_norms.append(float(logs["grad_norm"]))


def training_args(c: GoldenConfig, out_dir: str) -> TrainingArguments:
    t = c.train
    return TrainingArguments(
        output_dir=out_dir, use_cpu=True, seed=c.seed, max_steps=t.steps,
        per_device_train_batch_size=t.micro_batch_size,
        gradient_accumulation_steps=t.batch_size // t.micro_batch_size,
        learning_rate=t.learning_rate, lr_scheduler_type="linear", warmup_steps=t.warmup_steps,
        weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
        max_grad_norm=t.max_grad_norm, optim="adamw_torch",
        logging_steps=1, save_strategy="no", eval_strategy="no", report_to=[],
        disable_tqdm=True, dataloader_num_workers=0, remove_unused_columns=False,
        group_by_length=False, fp16=False, bf16=False,
    )


def train_with_trainer(c: GoldenConfig, model_dir: Path, records):
    torch.manual_seed(c.seed)
    model = get_peft_model(load_base(model_dir), lora_config(c))
    init = snapshot(model)
    recorder = Recorder()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = SequentialTrainer(model=model, args=training_args(c, tmp), train_dataset=RecordDataset(records),
                                    data_collator=collate, callbacks=[recorder])
        trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # keep stdout for our summary
        trainer.micro_losses = []
        trainer.train()
    accum = c.train.batch_size // c.train.micro_batch_size
    micro = trainer.micro_losses
    if len(micro) != c.train.steps * accum or len(recorder.lrs) != c.train.steps or len(recorder.grad_norms) != c.train.steps:
        raise SystemExit(f"{c.name}: Trainer ran {len(micro)} micro-batches, {len(recorder.lrs)} steps")
    step_losses = [sum(micro[s * accum:(s + 1) * accum], torch.zeros(())) for s in range(c.train.steps)]
    return {
        "init": init, "final": snapshot(model),
        "losses": torch.stack(step_losses).float(),
        "grad_norms": torch.tensor(recorder.grad_norms, dtype=torch.float32),
        "lrs": torch.tensor(recorder.lrs, dtype=torch.float32),
    }


def explicit_training_loop(c: GoldenConfig, model_dir: Path, records, init: dict):
    """What the Trainer does, written out: the convention the core implements.

    step s takes records [s*batch, (s+1)*batch) in micro-batches; N = unmasked labels of the whole
    batch (labels != -100, counted before the shift); each micro-batch contributes
    sum(token CE) / N, gradients accumulate; the step loss is the sum of the micro-batch losses;
    clip_grad_norm_ (coef = max_norm / (norm + 1e-6), applied only when < 1); torch AdamW;
    lr from get_linear_schedule_with_warmup, step s uses lr * s / warmup during warmup.
    """
    t = c.train
    model = get_peft_model(load_base(model_dir), lora_config(c))
    params = lora_params(model)
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(init[k])
    ordered = list(params.values())  # model order, as the Trainer passes them (sums follow it)
    opt = torch.optim.AdamW(ordered, lr=t.learning_rate, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    sched = transformers.get_linear_schedule_with_warmup(opt, t.warmup_steps, t.steps)
    model.train()
    losses, norms, lrs = [], [], []
    for s in range(t.steps):
        batch = records[s * t.batch_size:(s + 1) * t.batch_size]
        micro = [collate(batch[i:i + t.micro_batch_size]) for i in range(0, len(batch), t.micro_batch_size)]
        n_items = sum(int((m["labels"] != -100).sum()) for m in micro)
        step_loss = torch.zeros(())
        for m in micro:
            loss = model(**m, num_items_in_batch=torch.tensor(n_items)).loss
            loss.backward()
            step_loss = step_loss + loss.detach()
        norms.append(float(torch.nn.utils.clip_grad_norm_(ordered, t.max_grad_norm)))
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(float(step_loss))
    return {"final": snapshot(model), "losses": torch.tensor(losses), "grad_norms": torch.tensor(norms),
            "lrs": torch.tensor(lrs)}


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def training(c: GoldenConfig, model_dir: Path, out: dict) -> dict:
    t = c.train
    gen = torch.Generator().manual_seed(c.seed + 2)
    vocab = json.loads((model_dir / "config.json").read_text())["vocab_size"]
    records = make_records(gen, t.steps * t.batch_size, t.record_len, vocab, t.full_mask_every)

    ref = train_with_trainer(c, model_dir, records)
    mine = explicit_training_loop(c, model_dir, records, ref["init"])
    diffs = {k: rel_diff(mine[k], ref[k]) for k in ("losses", "grad_norms", "lrs")}
    diffs.update({k: rel_diff(mine["final"][k], ref["final"][k]) for k in ref["final"]})
    worst = max(diffs.values())
    if worst > 1e-6:
        bad = {k: f"{v:.1e}" for k, v in diffs.items() if v > 1e-6}
        raise SystemExit(f"{c.name}: the explicit loop disagrees with the Trainer: {bad}")
    clipped = int((ref["grad_norms"] > t.max_grad_norm).sum())
    if not 0 < clipped < t.steps:
        raise SystemExit(f"{c.name}: clipping triggered in {clipped}/{t.steps} steps; "
                         f"grad norms {ref['grad_norms'].tolist()}; choose max_grad_norm so some steps clip")

    tokens = torch.cat([r[0] for r in records]).to(torch.int32)
    mask = torch.cat([r[1] for r in records])
    offsets = torch.tensor([0] + list(np.cumsum([len(r[0]) for r in records])), dtype=torch.int64)
    out["train.tokens"] = tokens
    out["train.mask"] = mask
    out["train.offsets"] = offsets
    for k, v in ref["init"].items():
        out[f"train.init.{k}"] = v
    out["train.step_losses"] = ref["losses"]
    out["train.grad_norms"] = ref["grad_norms"]
    out["train.lrs"] = ref["lrs"]
    for k, v in ref["final"].items():
        out[f"train.final.{k}"] = v
    return {"clipped_steps": clipped, "trainer_vs_explicit": worst, "n_examples": len(records)}


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def make(c: GoldenConfig, out_root: Path, kernels: dict[str, str]) -> None:
    torch.manual_seed(c.seed)
    dest = out_root / c.name
    tmp = out_root / f".{c.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "model").mkdir(parents=True)
    c.model().to(c.save_dtype).save_pretrained(tmp / "model", safe_serialization=True,
                                               max_shard_size=c.max_shard_size)
    (tmp / "model" / "generation_config.json").unlink(missing_ok=True)

    tensors: dict[str, torch.Tensor] = {}
    forward_backward(c, tmp / "model", tensors)
    info = training(c, tmp / "model", tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp / "golden.safetensors"))

    t = c.train
    golden = {
        "format": FORMAT, "config": c.name,
        "versions": {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__,
                     "peft": peft.__version__, "python": platform.python_version()},
        "lora": {"r": c.lora.r, "alpha": c.lora.alpha, "dropout": 0.0,
                 "target_modules": list(c.lora.target_modules), "use_rslora": c.lora.use_rslora},
        "forward": {"batch": c.fwd_batch, "seq": c.fwd_seq},
        "train": {"steps": t.steps, "learning_rate": t.learning_rate, "batch_size": t.batch_size,
                  "micro_batch_size": t.micro_batch_size, "warmup_steps": t.warmup_steps,
                  "scheduler": "linear", "max_grad_norm": t.max_grad_norm, "weight_decay": 0.0,
                  "adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-8,
                  "n_examples": info["n_examples"]},
        "loss_convention": LOSS_CONVENTION,
        "kernels": kernels,
    }
    (tmp / "golden.json").write_text(json.dumps(golden, indent=2) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    print(f"{c.name}: loss {float(tensors['fwd.loss']):.6f}, step losses "
          f"{[round(x, 4) for x in tensors['train.step_losses'].tolist()]}, clipped {info['clipped_steps']}/{t.steps}, "
          f"Trainer vs explicit loop {info['trainer_vs_explicit']:.1e}")


def main() -> int:
    ap = argparse.ArgumentParser(description="Write golden files from transformers + PEFT (format 1).")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    args = ap.parse_args()
    names = [n for n in args.configs.split(",") if n]
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        print(f"error: unknown config(s) {unknown}; known: {list(CONFIGS)}", file=sys.stderr)
        return 2
    kernels = dispatch.check(DISPATCH)  # one set of kernels and one summation order, whatever the x86
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    args.out.mkdir(parents=True, exist_ok=True)
    for n in names:
        make(CONFIGS[n], args.out, kernels)
    return 0


if __name__ == "__main__":
    sys.exit(main())
