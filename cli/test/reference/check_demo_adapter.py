"""After `npm run demo`: load the demo's adapter with PEFT on the imported stories260K and
generate, greedy, for one demo prompt with the base model and with the adapter.

Run from the repository root:  .venv/bin/python cli/test/reference/check_demo_adapter.py
"""
import torch
from peft import PeftModel
from transformers import AutoTokenizer, LlamaForCausalLM

MODEL = ".cache/models/stories260K"
ADAPTER = ".cache/runs/stories260k-demo/adapter"
prompt = "### Instruction:\nWrite a story about Mia and a kite.\n\n### Response:\n"
tok = AutoTokenizer.from_pretrained(MODEL)
ids = tok(prompt, return_tensors="pt").input_ids
mask = torch.ones_like(ids)
base = LlamaForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
tuned = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(MODEL, dtype=torch.float32), ADAPTER).eval()
with torch.no_grad():
    for name, model in (("base", base), ("adapter", tuned)):
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=160, do_sample=False, pad_token_id=0)
        print(f"{name}: {tok.decode(out[0][ids.shape[1]:], skip_special_tokens=True)}\n")
