"""Golden ids for the stories260K tokenizer, from sentencepiece itself (tok512.model).

`loraforge import llama2c` builds a tokenizer.json for it; the TS test checks that it encodes every
string here exactly as sentencepiece does. Strings that contain "<s>", "</s>" or "<unk>" are left
out: sentencepiece's encode() treats them as text, while a tokenizer.json reads them as special
tokens (as Hugging Face's Llama tokenizers do).

Run from this folder:  ../../../.venv/bin/python tokenize_stories260k.py [IMPORTED_MODEL_DIR]
With a model directory made by `loraforge import llama2c`, it also checks that the Rust
`tokenizers` library reading that tokenizer.json agrees with sentencepiece.
"""
import json
import os
import sys

import sentencepiece as spm

from test_strings import ASSETS, all_strings

here = os.path.dirname(os.path.abspath(__file__))
os.chdir(here)
sp = spm.SentencePieceProcessor(model_file=f"{ASSETS}/stories260K/tok512.model")
strings = [s for s in all_strings() if not any(t in s for t in ("<s>", "</s>", "<unk>"))]
ids = [sp.encode(s) for s in strings]
with open("../golden/stories260k_sentencepiece.json", "w", encoding="utf-8") as f:
    json.dump({"source": f"sentencepiece {spm.__version__}, tok512.model", "strings": strings, "ids": ids}, f,
              ensure_ascii=False)
print(f"{len(strings)} strings, {sum(map(len, ids))} tokens")

if len(sys.argv) > 1:
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(sys.argv[1], "tokenizer.json"))
    bad = [(s, i, tok.encode(s, add_special_tokens=False).ids) for s, i in zip(strings, ids)
           if tok.encode(s, add_special_tokens=False).ids != i]
    print(f"Rust tokenizers on the imported tokenizer.json: {len(strings) - len(bad)}/{len(strings)} agree")
    for s, want, got in bad[:10]:
        print(repr(s[:60]), want[:12], got[:12])
    sys.exit(1 if bad else 0)
