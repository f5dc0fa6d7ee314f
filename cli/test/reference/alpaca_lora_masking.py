"""Golden examples from a Python reimplementation of alpaca-lora's data pipeline
(tloen/alpaca-lora finetune.py: tokenize + generate_and_tokenize_prompt, utils/prompter.py),
on 200 records of the Stanford Alpaca subset, with the Llama-2 tokenizer.json through
transformers' fast tokenizer (alpaca-lora's `tokenizer(prompt, truncation=True, max_length=...)`).

Run from this folder:  ../../../.venv/bin/python alpaca_lora_masking.py
Writes ../golden/alpaca_lora_masking.json.
"""
import json
import os
import random

import transformers
from transformers import PreTrainedTokenizerFast

from test_strings import ASSETS

here = os.path.dirname(os.path.abspath(__file__))
os.chdir(here)

# templates/alpaca.json and templates/alpaca_short.json of alpaca-lora
TEMPLATES = {
    "alpaca": {
        "prompt_input": "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
        "prompt_no_input": "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n",
    },
    "alpaca_short": {
        "prompt_input": "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
        "prompt_no_input": "### Instruction:\n{instruction}\n\n### Response:\n",
    },
}

tokenizer = PreTrainedTokenizerFast(
    tokenizer_file=f"{ASSETS}/llama2-tokenizer-json/tokenizer.json", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
)
tokenizer.pad_token_id = 0


def generate_prompt(template, instruction, input=None, label=None):  # Prompter.generate_prompt
    if input:
        res = template["prompt_input"].format(instruction=instruction, input=input)
    else:
        res = template["prompt_no_input"].format(instruction=instruction)
    if label:
        res = f"{res}{label}"
    return res


def make_pipeline(template, cutoff_len, train_on_inputs, add_eos_token=False):
    def tokenize(prompt, add_eos_token=True):
        result = tokenizer(prompt, truncation=True, max_length=cutoff_len, padding=False, return_tensors=None)
        if result["input_ids"][-1] != tokenizer.eos_token_id and len(result["input_ids"]) < cutoff_len and add_eos_token:
            result["input_ids"].append(tokenizer.eos_token_id)
            result["attention_mask"].append(1)
        result["labels"] = result["input_ids"].copy()
        return result

    def generate_and_tokenize_prompt(data_point):
        full_prompt = generate_prompt(template, data_point["instruction"], data_point["input"], data_point["output"])
        tokenized_full_prompt = tokenize(full_prompt)
        if not train_on_inputs:
            user_prompt = generate_prompt(template, data_point["instruction"], data_point["input"])
            tokenized_user_prompt = tokenize(user_prompt, add_eos_token=add_eos_token)
            user_prompt_len = len(tokenized_user_prompt["input_ids"])
            if add_eos_token:
                user_prompt_len -= 1
            tokenized_full_prompt["labels"] = [-100] * user_prompt_len + tokenized_full_prompt["labels"][user_prompt_len:]
        return tokenized_full_prompt

    return generate_and_tokenize_prompt


data = json.load(open(f"{ASSETS}/alpaca-stanford-5000/alpaca_5000.json", encoding="utf-8"))
data = [r for r in data if r["output"].strip() and r["instruction"].strip()]
rng = random.Random(7)
records = rng.sample(data, 200)
# alpaca-lora's defaults (cutoff 256, prompt masked), and the other branch on a short cutoff
configs = [
    {"template": "alpaca", "cutoff_len": 256, "train_on_inputs": False, "records": records},
    {"template": "alpaca_short", "cutoff_len": 64, "train_on_inputs": True, "records": records[:50]},
    {"template": "alpaca", "cutoff_len": 64, "train_on_inputs": False, "records": records[:50]},
]
out = []
for c in configs:
    fn = make_pipeline(TEMPLATES[c["template"]], c["cutoff_len"], c["train_on_inputs"])
    examples = [fn(r) for r in c["records"]]
    out.append({
        "template": c["template"], "cutoff_len": c["cutoff_len"], "train_on_inputs": c["train_on_inputs"],
        "records": [{"instruction": r["instruction"], "input": r["input"], "output": r["output"]} for r in c["records"]],
        "input_ids": [e["input_ids"] for e in examples],
        "labels": [e["labels"] for e in examples],
    })
    n_trunc = sum(1 for e in examples if len(e["input_ids"]) == c["cutoff_len"])
    print(f"{c['template']} cutoff {c['cutoff_len']} train_on_inputs {c['train_on_inputs']}: "
          f"{len(examples)} examples, {n_trunc} at the cutoff")
with open("../golden/alpaca_lora_masking.json", "w", encoding="utf-8") as f:
    json.dump({"source": f"transformers {transformers.__version__}, alpaca-lora generate_and_tokenize_prompt",
               "configs": out}, f, ensure_ascii=False)
