"""Does PEFT read the core's adapter, and does it compute the same logits as the core?

Two ways to run it (exit 0: agree; 1: mismatch or bad adapter; 2: usage):

  # an adapter the core already wrote
  python check_peft.py --core native/build/loraforge-core --model MODEL_DIR --adapter ADAPTER_DIR

  # end to end: the core trains 10 steps on a golden config's records (a shard written here,
  # contract 3), then its final/ adapter is checked
  python check_peft.py --core native/build/loraforge-core --train-golden native/tests/golden/v1/stories260k

Checks, in order:
  1. adapter_config.json has the fields and values of contract 4 and PEFT parses it;
  2. adapter_model.safetensors has exactly the keys, shapes and dtype (F32) PEFT's own
     get_peft_model_state_dict gives for that config, and PeftModel.from_pretrained loads each
     value unchanged (PEFT only warns about keys it does not recognise);
  3. on a probe input, `loraforge-core logits` without and with the adapter matches transformers /
     PeftModel: max |core - ref| / max |ref| <= --tol (1e-5) for logits and loss;
  4. the adapter changes the logits at all (otherwise check 3 proves nothing);
  5. `loraforge-core merge` writes the weights PEFT's merge_and_unload() gives (<= 1e-6 relative
     per tensor, every base tensor present; a BF16/F16 base stays BF16/F16: within one ulp).
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from peft import LoraConfig, PeftConfig, PeftModel, get_peft_model
from peft.utils import get_peft_model_state_dict
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import LlamaForCausalLM
from transformers import logging as hf_logging

from lfshard import write_shard


class Mismatch(Exception):
    pass


CONTRACT4_FIXED = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "bias": "none", "fan_in_fan_out": False,
                   "inference_mode": True}
CONTRACT4_PRESENT = ["r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora", "base_model_name_or_path"]


def load_base(model_dir: Path) -> LlamaForCausalLM:
    return LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()


# ---------------------------------------------------------------------------------------------
# 1-2: the adapter files
# ---------------------------------------------------------------------------------------------

def check_adapter_files(model_dir: Path, adapter_dir: Path) -> LoraConfig:
    cfg_path = adapter_dir / "adapter_config.json"
    st_path = adapter_dir / "adapter_model.safetensors"
    for p in (cfg_path, st_path):
        if not p.is_file():
            raise Mismatch(f"{p}: missing")
    try:
        raw = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise Mismatch(f"{cfg_path}: not JSON ({e})") from e
    for k, v in CONTRACT4_FIXED.items():
        if raw.get(k) != v:
            raise Mismatch(f"{cfg_path}: field {k} is {raw.get(k)!r}, contract 4 wants {v!r}")
    for k in CONTRACT4_PRESENT:
        if k not in raw:
            raise Mismatch(f"{cfg_path}: field {k} is missing")
    config = PeftConfig.from_pretrained(str(adapter_dir))
    if not isinstance(config, LoraConfig):
        raise Mismatch(f"{cfg_path}: PEFT reads it as {type(config).__name__}, not LoraConfig")

    # what PEFT itself would save for this config on this model
    expected_model = get_peft_model(load_base(model_dir), LoraConfig(**{**config.to_dict(), "inference_mode": False}))
    expected = {k: tuple(v.shape) for k, v in get_peft_model_state_dict(expected_model).items()}
    with safe_open(str(st_path), "pt") as f:
        got = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    if missing or extra:
        raise Mismatch(f"{st_path}: keys differ from PEFT's: missing {missing[:4]}{'...' if len(missing) > 4 else ''}, "
                       f"unexpected {extra[:4]}{'...' if len(extra) > 4 else ''}")
    for k in sorted(expected):
        if got[k] != expected[k]:
            raise Mismatch(f"{st_path}: {k} has shape {list(got[k])}, PEFT expects {list(expected[k])}")
        if dtypes[k] != "F32":
            raise Mismatch(f"{st_path}: {k} is {dtypes[k]}, contract 4 wants F32")
    return config


def load_peft(model_dir: Path, adapter_dir: Path) -> PeftModel:
    model = PeftModel.from_pretrained(load_base(model_dir), str(adapter_dir)).eval()
    stored = load_file(str(adapter_dir / "adapter_model.safetensors"))
    loaded = {n.replace(".default.weight", ".weight"): p for n, p in model.named_parameters() if "lora_" in n}
    for k, v in stored.items():
        if k not in loaded or not torch.equal(loaded[k].detach(), v):
            raise Mismatch(f"{adapter_dir}: PeftModel.from_pretrained did not load {k} as stored")
    return model


# ---------------------------------------------------------------------------------------------
# 3-4: logits
# ---------------------------------------------------------------------------------------------

def core_logits(core: Path, model_dir: Path, adapter_dir: Path | None, tokens: list[int], tmp: Path):
    out = tmp / f"logits-{'adapter' if adapter_dir else 'base'}.safetensors"
    cmd = [str(core), "logits", "--model", str(model_dir), "--tokens", ",".join(map(str, tokens)), "--out", str(out)]
    if adapter_dir:
        cmd[4:4] = ["--adapter", str(adapter_dir)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        raise Mismatch(f"{' '.join(cmd)} exited {run.returncode}: {run.stderr.strip()[-800:]}")
    t = load_file(str(out))
    for k in ("logits", "loss"):
        if k not in t:
            raise Mismatch(f"{out}: the core wrote no '{k}' tensor (has {sorted(t)})")
    if tuple(t["logits"].shape) != (len(tokens), t["logits"].shape[-1]):
        raise Mismatch(f"{out}: logits shape {list(t['logits'].shape)}, expected [{len(tokens)}, vocab]")
    return t["logits"], t["loss"]


def ref_logits(model, tokens: list[int]):
    ids = torch.tensor([tokens])
    with torch.no_grad():
        r = model(input_ids=ids, labels=ids)
    return r.logits[0], r.loss


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def compare(what: str, core, ref, tol: float) -> str:
    if core[0].shape != ref[0].shape:
        raise Mismatch(f"{what}: logits shape {list(core[0].shape)} vs reference {list(ref[0].shape)}")
    dl, dloss = rel(core[0], ref[0]), rel(core[1].reshape(()), ref[1].reshape(()))
    line = f"{what}: logits rel diff {dl:.2e}, loss {float(core[1]):.6f} vs {float(ref[1]):.6f} (rel {dloss:.2e})"
    if not (dl <= tol and dloss <= tol):
        raise Mismatch(f"{line} > tolerance {tol:g}")
    return line


def probe_tokens(vocab: int, n: int = 24) -> list[int]:
    g = torch.Generator().manual_seed(7)
    return [1] + torch.randint(3, vocab, (n - 1,), generator=g).tolist()


def check(core: Path, model_dir: Path, adapter_dir: Path, tokens: list[int] | None, tol: float) -> None:
    config = check_adapter_files(model_dir, adapter_dir)
    print(f"adapter files: contract 4 fields present, keys/shapes/dtype as PEFT saves them "
          f"(r={config.r}, alpha={config.lora_alpha}, targets={sorted(config.target_modules)}, rslora={config.use_rslora})")
    peft_model = load_peft(model_dir, adapter_dir)
    vocab = peft_model.get_base_model().config.vocab_size
    tokens = tokens or probe_tokens(vocab)
    with tempfile.TemporaryDirectory() as tmp:
        core_base = core_logits(core, model_dir, None, tokens, Path(tmp))
        core_lora = core_logits(core, model_dir, adapter_dir, tokens, Path(tmp))
    ref_lora = ref_logits(peft_model, tokens)
    with peft_model.disable_adapter():
        ref_base = ref_logits(peft_model, tokens)
    print(compare("base model    ", core_base, ref_base, tol))
    print(compare("with adapter  ", core_lora, ref_lora, tol))
    effect = rel(ref_lora[0], ref_base[0])
    if effect == 0:
        raise Mismatch(f"{adapter_dir}: the adapter does not change the logits; the comparison proves nothing")
    print(f"adapter effect on the logits: {effect:.2e} (relative)")
    check_merge(core, model_dir, adapter_dir, peft_model)


def check_merge(core: Path, model_dir: Path, adapter_dir: Path, peft_model: PeftModel, tol: float = 1e-6) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "merged"
        cmd = [str(core), "merge", "--model", str(model_dir), "--adapter", str(adapter_dir), "--out", str(out)]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            raise Mismatch(f"{' '.join(cmd)} exited {run.returncode}: {run.stderr.strip()[-800:]}")
        files = sorted(out.glob("*.safetensors"))
        if not files or not (out / "config.json").is_file():
            raise Mismatch(f"{out}: merge wrote no config.json or no *.safetensors")
        core_merged = {}
        for f in files:
            core_merged.update(load_file(str(f)))
    ref = peft_model.merge_and_unload().state_dict()  # fp32; modifies peft_model: the last use of it
    tied = peft_model.config.tie_word_embeddings
    worst, worst_key = 0.0, ""
    for k, v in ref.items():
        if k not in core_merged:
            if tied and k == "lm_head.weight":
                continue
            raise Mismatch(f"merge: tensor {k} missing from the core's merged model")
        got = core_merged[k]
        if got.dtype == torch.float32:
            d = rel(got, v)
        else:  # the core keeps the base's BF16/F16: allow one unit in the last place of that dtype
            ulp = torch.finfo(got.dtype).eps * v.abs().clamp_min(torch.finfo(got.dtype).tiny)
            d = float(((got.float() - v).abs() / ulp).max()) * tol  # <= tol <=> within 1 ulp
        if d > worst:
            worst, worst_key = d, k
    if worst > tol:
        raise Mismatch(f"merge: {worst_key} differs from PEFT's merge_and_unload by {worst:.2e} > {tol:g} "
                       f"(for BF16/F16 tensors: more than one unit in the last place)")
    print(f"merge: {len(core_merged)} tensors as PEFT's merge_and_unload (worst {worst:.2e}, {worst_key or '-'})")


# ---------------------------------------------------------------------------------------------
# end to end: the core trains on a golden config's records
# ---------------------------------------------------------------------------------------------

def golden_records(golden_dir: Path):
    g = load_file(str(golden_dir / "golden.safetensors"))
    toks, mask, off = g["train.tokens"].tolist(), g["train.mask"].tolist(), g["train.offsets"].tolist()
    return [(toks[a:b], mask[a:b]) for a, b in zip(off[:-1], off[1:])]


def train_with_core(core: Path, golden_dir: Path, work: Path) -> Path:
    golden = json.loads((golden_dir / "golden.json").read_text())
    model_dir = golden_dir / "model"
    vocab = json.loads((model_dir / "config.json").read_text())["vocab_size"]
    records = golden_records(golden_dir)
    write_shard(work / "train.lfs", records, vocab)
    write_shard(work / "val.lfs", records[:4], vocab)
    t = golden["train"]
    run = {
        "version": 1, "model_dir": str(model_dir.resolve()),
        "train_shards": [str(work / "train.lfs")], "val_shards": [str(work / "val.lfs")],
        "output_dir": str(work / "out"), "backend": "cpu", "threads": 0,
        "base_model_name_or_path": str(model_dir.resolve()),
        "lora": {"r": golden["lora"]["r"], "alpha": golden["lora"]["alpha"], "dropout": 0.05,
                 "target_modules": golden["lora"]["target_modules"], "use_rslora": golden["lora"]["use_rslora"]},
        "training": {"epochs": 1, "max_steps": t["steps"], "learning_rate": t["learning_rate"],
                     "batch_size": t["batch_size"], "micro_batch_size": t["micro_batch_size"],
                     "warmup_steps": t["warmup_steps"], "scheduler": "linear", "weight_decay": 0.0,
                     "adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-8,
                     "max_grad_norm": t["max_grad_norm"], "seed": 42, "shuffle": True, "group_by_length": False,
                     "precision": "fp32", "gradient_checkpointing": False},
        "intervals": {"log_steps": 1, "eval_steps": 0, "save_steps": 0, "save_total_limit": 1},
        "check_numerics": False,
    }
    (work / "run.json").write_text(json.dumps(run, indent=2))
    proc = subprocess.run([str(core), "train", "--config", str(work / "run.json"), "--no-resume"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise Mismatch(f"loraforge-core train exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    done = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    done = [e for e in done if e.get("event") == "done"]
    if not done:
        raise Mismatch("loraforge-core train printed no 'done' event")
    adapter = Path(done[-1]["adapter_dir"])
    print(f"core trained {done[-1]['step']} steps on {golden_dir.name}'s records, train_loss {done[-1]['train_loss']:.4f}")
    return adapter


def main() -> int:
    ap = argparse.ArgumentParser(description="Check PEFT loads the core's adapter and agrees on the logits.")
    ap.add_argument("--core", type=Path, required=True, help="path of the loraforge-core binary")
    ap.add_argument("--model", type=Path, help="base model directory")
    ap.add_argument("--adapter", type=Path, help="adapter directory written by the core")
    ap.add_argument("--train-golden", type=Path, help="golden config dir: train with the core there, then check")
    ap.add_argument("--tokens", help="probe token ids, comma-separated (default: 24 seeded ids)")
    ap.add_argument("--tol", type=float, default=1e-5)
    args = ap.parse_args()
    if not args.core.is_file():
        print(f"error: --core {args.core}: no such file", file=sys.stderr)
        return 2
    if bool(args.train_golden) == bool(args.adapter):
        print("error: give either --adapter (with --model) or --train-golden", file=sys.stderr)
        return 2
    if args.adapter and not args.model:
        print("error: --adapter needs --model", file=sys.stderr)
        return 2
    tokens = None
    if args.tokens:
        try:
            tokens = [int(x) for x in args.tokens.split(",")]
        except ValueError:
            print(f"error: --tokens {args.tokens!r}: not comma-separated integers", file=sys.stderr)
            return 2
    torch.set_num_threads(1)
    hf_logging.set_verbosity_error()
    try:
        if args.train_golden:
            with tempfile.TemporaryDirectory() as work:
                adapter = train_with_core(args.core, args.train_golden, Path(work))
                check(args.core, args.train_golden / "model", adapter, tokens, args.tol)
        else:
            check(args.core, args.model, args.adapter, tokens, args.tol)
    except Mismatch as e:
        print(f"MISMATCH: {e}", file=sys.stderr)
        return 1
    print("PEFT agrees with the core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
