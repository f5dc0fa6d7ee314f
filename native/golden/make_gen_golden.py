"""Write the generation goldens the core's `generate` and `score` are tested against.

For each golden config's model (../tests/golden/v1/<config>/model, written by make_golden.py) this
makes a seeded PEFT adapter with non-zero B (so it changes the output) and records, from the
pinned Hugging Face stack, with and without the adapter:
  - transformers' greedy `generate` of a few prompts of different lengths, each alone (batch 1):
    the generated tokens and the raw logits of every step (`output_logits=True`);
  - the same for one prompt with a token of its base output as eos (the stop-token path);
  - greedy with repetition_penalty 1.3 for one prompt;
  - transformers' processors (repetition penalty, temperature, top-k, top-p) on one row of logits;
  - the score of a few (prompt, target) pairs: sum over the target of -log p(target[i] | prompt,
    target[<i]) from one forward pass, log_softmax in fp32, summed in fp64.

    python make_gen_golden.py                       # all configs into ../tests/golden/gen-v1
    python make_gen_golden.py --out /tmp/g --configs stories260k

Files per config (<out>/<config>/): adapter/ (adapter_config.json, adapter_model.safetensors),
gen_golden.json (settings, versions, prompts, tokens, stops, score examples and values) and
gen_golden.safetensors (`<variant>.p<i>.logits` [steps, vocab] fp32).

The CPU kernels are pinned by dispatch.py exactly as for the training goldens (ATen AVX2, MKL's
conditional numerical reproducibility, oneDNN capped, one thread; set before torch is imported),
so the stale check regenerates the same bits on any x86-64-v3 machine, AMD or Intel; plus
torch.use_deterministic_algorithms(True). Attention is "eager", the same math as the core's.
"""

import os

import dispatch

DISPATCH = dispatch.pin()  # before torch loads: it picks its CPU kernels at import
KERNELS: dict[str, str] = {}

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import peft  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import LlamaForCausalLM  # noqa: E402
from transformers.generation.logits_process import (  # noqa: E402
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent / "tests" / "golden" / "v1"
DEFAULT_OUT = HERE.parent / "tests" / "golden" / "gen-v1"
FORMAT = 1
MAX_NEW_TOKENS = 24
PROMPT_LENS = [1, 4, 9, 13]  # BOS included
PENALTY = 1.3  # greedy with transformers' repetition penalty, on PENALTY_PROMPT
PENALTY_PROMPT = 1
# the sampling processors on one row of logits: repetition penalty, temperature, top-k, top-p
PROCESSORS = {"repetition_penalty": 1.3, "temperature": 0.7, "top_k": 20, "top_p": 0.8}
STOP_PROMPT = 2  # the prompt generated again with a token of its output as eos
SCORE_LENS = [(1, 5), (3, 2), (6, 7), (2, 1)]  # (prompt, target)

# the adapter of each config: the training golden's targets, so every module kind is covered
ADAPTERS = {
    "stories260k": dict(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]),
    "mha_untied_all7": dict(r=8, lora_alpha=16, use_rslora=True,
                            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                            "down_proj"]),
    "gqa_bf16_sharded": dict(r=2, lora_alpha=4, target_modules=["k_proj", "gate_proj", "up_proj"]),
    "llama3_rope": dict(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"]),
}


def load(model_dir: Path) -> LlamaForCausalLM:
    return LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager").eval()


def make_adapter(model: LlamaForCausalLM, spec: dict, seed: int):
    torch.manual_seed(seed)
    cfg = LoraConfig(lora_dropout=0.0, bias="none", task_type="CAUSAL_LM", **spec)
    pm = get_peft_model(model, cfg).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_B" in name:  # PEFT inits B = 0: the adapter would change nothing
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return pm


def random_ids(g: torch.Generator, n: int, vocab: int) -> list[int]:
    return [1] + torch.randint(3, vocab, (n - 1,), generator=g).tolist()


def greedy(model, prompt: list[int], eos: int, **kw) -> tuple[list[int], bool, torch.Tensor]:
    out = model.generate(input_ids=torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                         max_new_tokens=MAX_NEW_TOKENS, do_sample=False, num_beams=1, eos_token_id=eos,
                         pad_token_id=0, output_logits=True, return_dict_in_generate=True, **kw)
    new = out.sequences[0, len(prompt):].tolist()
    logits = torch.cat([step.float() for step in out.logits], dim=0)  # [steps, V]
    stopped = len(new) > 0 and new[-1] == eos
    return (new[:-1] if stopped else new), stopped, logits


def score(model, prompt: list[int], target: list[int]) -> float:
    ids = torch.tensor([prompt + target])
    logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    P = len(prompt)
    return float(sum(-float(logp[P - 1 + i, t]) for i, t in enumerate(target)))  # fp64 sum


def make(config: str, out: Path, seed: int) -> None:
    model_dir = MODELS / config / "model"
    cfg = json.loads((model_dir / "config.json").read_text())
    vocab, eos = cfg["vocab_size"], cfg["eos_token_id"]
    g = torch.Generator().manual_seed(seed)
    prompts = [random_ids(g, n, vocab) for n in PROMPT_LENS]
    examples = [(random_ids(g, p, vocab), torch.randint(3, vocab, (t,), generator=g).tolist()) for p, t in SCORE_LENS]
    dest = out / config
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "adapter").mkdir(parents=True)

    model = load(model_dir)
    variants = {}
    tensors = {}
    with torch.no_grad():
        for variant in ("base", "adapter"):
            if variant == "adapter":
                model = make_adapter(model, ADAPTERS[config], seed)
                model.save_pretrained(dest / "adapter")
                (dest / "adapter" / "README.md").unlink(missing_ok=True)
            seqs = []
            for i, p in enumerate(prompts):
                toks, stopped, logits = greedy(model, p, eos)
                seqs.append({"tokens": toks, "stop": "stop_token" if stopped else "max_new_tokens"})
                tensors[f"{variant}.p{i}.logits"] = logits.contiguous()
            scores = [score(model, p, t) for p, t in examples]
            # a stop token: the 7th token the base model generates for prompt 2, as eos
            if variant == "base":
                stop_id = seqs[STOP_PROMPT]["tokens"][6]
            toks, stopped, _ = greedy(model, prompts[STOP_PROMPT], stop_id)
            stop_seq = {"tokens": toks, "stop": "stop_token" if stopped else "max_new_tokens"}
            toks, stopped, _ = greedy(model, prompts[PENALTY_PROMPT], eos, repetition_penalty=PENALTY)
            penalty_seq = {"tokens": toks, "stop": "stop_token" if stopped else "max_new_tokens"}
            variants[variant] = {"sequences": seqs, "loss_sum": scores, "stop_case": stop_seq,
                                 "penalty_case": penalty_seq}
    # the processors on the last step's logits of the base model's prompt 3, its context the prompt
    # and the tokens generated before that step
    context = prompts[3] + variants["base"]["sequences"][3]["tokens"][:-1]
    raw = tensors["base.p3.logits"][-1:].clone()
    ids = torch.tensor([context])
    processed = RepetitionPenaltyLogitsProcessor(PROCESSORS["repetition_penalty"])(ids, raw.clone())
    for proc in (TemperatureLogitsWarper(PROCESSORS["temperature"]), TopKLogitsWarper(PROCESSORS["top_k"]),
                 TopPLogitsWarper(PROCESSORS["top_p"])):
        processed = proc(ids, processed)
    tensors["processors.input"] = raw[0].contiguous()
    tensors["processors.output"] = processed[0].contiguous()
    # the adapter must change what is generated or scored, else it tests nothing
    assert variants["base"] != variants["adapter"], f"{config}: the adapter changes nothing"
    cfg_path = dest / "adapter" / "adapter_config.json"
    ac = json.loads(cfg_path.read_text())
    ac["base_model_name_or_path"] = config  # not this machine's path
    ac["target_modules"] = sorted(ac["target_modules"])  # PEFT keeps a set: the order varies per run
    cfg_path.write_text(json.dumps(ac, indent=2, sort_keys=True) + "\n")
    save_file(tensors, str(dest / "gen_golden.safetensors"))
    golden = {
        "format": FORMAT,
        "config": config,
        "model": f"v1/{config}/model",
        "settings": {"max_new_tokens": MAX_NEW_TOKENS, "do_sample": False, "eos_token_id": eos,
                     "attn_implementation": "eager", "dtype": "float32"},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "peft": peft.__version__, "python": platform.python_version(),
                     "kernels": KERNELS},
        "prompts": prompts,
        "stop_case": {"prompt": STOP_PROMPT, "eos_token_id": stop_id},
        "penalty_case": {"prompt": PENALTY_PROMPT, "repetition_penalty": PENALTY},
        "processors": {"context": context, **PROCESSORS},
        "score_examples": [{"prompt": p, "target": t} for p, t in examples],
        "variants": variants,
    }
    (dest / "gen_golden.json").write_text(json.dumps(golden, indent=1) + "\n")
    print(f"{config}: {dest}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--configs", default=",".join(ADAPTERS))
    ap.add_argument("--seed", type=int, default=2024)
    a = ap.parse_args()
    global KERNELS
    KERNELS = dispatch.check(DISPATCH)  # one set of kernels and one summation order, whatever the x86
    torch.use_deterministic_algorithms(True)
    for c in a.configs.split(","):
        if c not in ADAPTERS:
            raise SystemExit(f"unknown config {c!r} (known: {', '.join(ADAPTERS)})")
        make(c, a.out, a.seed)


if __name__ == "__main__":
    main()
