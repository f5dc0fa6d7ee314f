"""The reference side of bench/prepare.ts: alpaca-lora's data preparation as it runs in
finetune.py -- datasets.load_dataset("json") then .map(generate_and_tokenize_prompt) -- with the
Hugging Face fast tokenizer (Rust `tokenizers`) on the same tokenizer.json.

Prints one JSON line: seconds per phase and a sha256 over all input_ids and labels, so the
TypeScript side can show the two produced the same examples.
usage: python prepare_reference.py DATASET TOKENIZER_JSON CUTOFF
"""
import hashlib
import json
import sys
import time

t0 = time.perf_counter()
import datasets  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

datasets.disable_caching()
datasets.disable_progress_bars()
t_import = time.perf_counter() - t0

dataset_path, tokenizer_json, cutoff_len = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
tokenizer = PreTrainedTokenizerFast(tokenizer_file=tokenizer_json, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
tokenizer.pad_token_id = 0
t_tokenizer = time.perf_counter() - t0

PROMPT_INPUT = "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
PROMPT_NO_INPUT = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"


def generate_prompt(instruction, input=None, label=None):
    res = PROMPT_INPUT.format(instruction=instruction, input=input) if input else PROMPT_NO_INPUT.format(instruction=instruction)
    return f"{res}{label}" if label else res


def tokenize(prompt, add_eos_token=True):
    result = tokenizer(prompt, truncation=True, max_length=cutoff_len, padding=False, return_tensors=None)
    if result["input_ids"][-1] != tokenizer.eos_token_id and len(result["input_ids"]) < cutoff_len and add_eos_token:
        result["input_ids"].append(tokenizer.eos_token_id)
        result["attention_mask"].append(1)
    result["labels"] = result["input_ids"].copy()
    return result


def generate_and_tokenize_prompt(data_point):
    tokenized_full_prompt = tokenize(generate_prompt(data_point["instruction"], data_point["input"], data_point["output"]))
    user_prompt_len = len(tokenize(generate_prompt(data_point["instruction"], data_point["input"]), add_eos_token=False)["input_ids"])
    tokenized_full_prompt["labels"] = [-100] * user_prompt_len + tokenized_full_prompt["labels"][user_prompt_len:]
    return tokenized_full_prompt


t0 = time.perf_counter()
data = datasets.load_dataset("json", data_files=dataset_path)["train"]
data = data.filter(lambda r: bool(r["output"].strip()) and bool(r["instruction"].strip()))
t_load = time.perf_counter() - t0
t0 = time.perf_counter()
c0 = time.process_time()
mapped = data.map(generate_and_tokenize_prompt)
t_map = time.perf_counter() - t0
cpu_map = time.process_time() - c0

h = hashlib.sha256()
for ids, labels in zip(mapped["input_ids"], mapped["labels"]):
    h.update(json.dumps([ids, [0 if l == -100 else 1 for l in labels]], separators=(",", ":")).encode())
print(json.dumps({"import_s": t_import, "tokenizer_s": t_tokenizer, "load_s": t_load, "map_s": t_map, "map_cpu_s": cpu_map,
                  "records": len(mapped), "tokens": sum(len(x) for x in mapped["input_ids"]), "sha256": h.hexdigest()}))
