"""Golden token ids for the Llama-2 tokenizer.json, computed with the Rust `tokenizers` library.

Run from this folder:  ../../../.venv/bin/python tokenize_llama2.py
Writes ../golden/llama2_tokenizer.json: {strings, ids} where ids include the BOS that
`tokenizer(text)` adds (the post-processor of this tokenizer.json).
"""
import json
import os

import tokenizers
from tokenizers import Tokenizer

from test_strings import ASSETS, all_strings

here = os.path.dirname(os.path.abspath(__file__))
os.chdir(here)
tok = Tokenizer.from_file(f"{ASSETS}/llama2-tokenizer-json/tokenizer.json")
strings = all_strings()
ids = [tok.encode(s, add_special_tokens=True).ids for s in strings]
with open("../golden/llama2_tokenizer.json", "w", encoding="utf-8") as f:
    json.dump({"source": f"tokenizers {tokenizers.__version__}, {ASSETS}/llama2-tokenizer-json/tokenizer.json",
               "strings": strings, "ids": ids}, f, ensure_ascii=False)
print(f"{len(strings)} strings, {sum(map(len, ids))} tokens")
