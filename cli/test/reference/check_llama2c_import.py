"""Checks a model directory made by `loraforge import llama2c` with Hugging Face transformers:
LlamaForCausalLM loads it, and greedy decoding from BOS gives the 64 tokens of
../shared/assets/stories260K/expected_greedy.json (computed there with an independent numpy
forward pass that matched llama2.c's run.c), and the first logits match. Generation ends on BOS,
as in llama2.c's run.c (generation_config.json's eos_token_id is 1): a BOS forced at step 6 ends
`generate` there.

Usage:  ../../../.venv/bin/python check_llama2c_import.py MODEL_DIR
"""
import json
import os
import sys

import torch
from transformers import AutoTokenizer, LlamaForCausalLM, LogitsProcessor, LogitsProcessorList

from test_strings import ASSETS

here = os.path.dirname(os.path.abspath(__file__))
model_dir = os.path.abspath(sys.argv[1])
os.chdir(here)
expected = json.load(open(f"{ASSETS}/stories260K/expected_greedy.json"))
model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float64).eval()
want = expected["greedy_token_ids_from_bos_64"]  # BOS + 64 generated tokens
ids = torch.tensor([[1]])
with torch.no_grad():
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=len(want) - 1,
                         do_sample=False, num_beams=1, pad_token_id=0)
got = out[0].tolist()
print("greedy tokens match:", got == want)


class ForceBos(LogitsProcessor):
    """Makes BOS the only choice once the sequence has `at` tokens."""

    def __init__(self, at):
        self.at = at

    def __call__(self, input_ids, scores):
        if input_ids.shape[1] == self.at:
            scores = torch.full_like(scores, -float("inf"))
            scores[:, 1] = 0
        return scores


with torch.no_grad():
    forced = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=20,
                            do_sample=False, num_beams=1, pad_token_id=0,
                            logits_processor=LogitsProcessorList([ForceBos(6)]))[0].tolist()
stops_on_bos = model.generation_config.eos_token_id == 1 and forced == want[:6] + [1]
print("generation stops on BOS:", stops_on_bos)
with torch.no_grad():
    logits = model(torch.tensor([want[:16]])).logits[0]
row0 = logits[0, :8].tolist()
err = max(abs(a - b) for a, b in zip(row0, expected["logits_first16_positions_of_greedy_seq_row0_first8"]))
print(f"logits row 0 max abs error: {err:.2e}")
tok = AutoTokenizer.from_pretrained(model_dir)
enc = tok("Once upon a time")["input_ids"]
print("tokenizer:", enc, enc == expected["encode_once_upon_a_time_with_bos"])
sys.exit(0 if got == want and stops_on_bos and err < 1e-4 and enc == expected["encode_once_upon_a_time_with_bos"] else 1)
