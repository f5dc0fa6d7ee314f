"""Loads a LoraForge adapter with PEFT onto the base model and prints, as JSON, how many LoRA
tensors PEFT took from the file (each checked equal to the file's values) and how much the
adapter changes the logits of one prompt. Exits non-zero when PEFT loads nothing or the values
differ.

usage: python peft_load.py <HF model dir> <adapter dir>
"""
import json
import sys

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoTokenizer, LlamaForCausalLM

model_dir, adapter_dir = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(model_dir)
ids = tok("### Instruction:\nWrite a story about Mia and a kite.\n\n### Response:\n", return_tensors="pt").input_ids
base = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
with torch.no_grad():
    base_logits = base(ids).logits
tuned = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32), adapter_dir).eval()
state = dict(tuned.named_parameters())
stored = load_file(f"{adapter_dir}/adapter_model.safetensors")
checked = 0
for key, value in stored.items():
    # file: ...q_proj.lora_A.weight; loaded module: ...q_proj.lora_A.default.weight
    name = key.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")
    if name not in state:
        sys.exit(f"PEFT did not load {key} (no parameter {name})")
    if not torch.equal(state[name].detach(), value):
        sys.exit(f"PEFT's {name} differs from the file's {key}")
    checked += 1
with torch.no_grad():
    tuned_logits = tuned(ids).logits
print(json.dumps({"loraTensors": checked, "maxLogitChange": float((tuned_logits - base_logits).abs().max())}))
