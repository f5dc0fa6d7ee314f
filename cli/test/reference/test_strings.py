"""The strings the tokenizer goldens are computed on: real instruction data plus edge cases."""
import json
import random

ASSETS = "../../../../shared/assets"


def edge_cases():
    cases = [
        "", " ", "  ", "   ", "\n", "\n\n", "\t", " \t \n ", "a", " a", "a ", "  a  b   ",
        "Hello world", "Hello  world", "Hello\nworld", "Hello\r\nworld", "hello\tworld",
        "Once upon a time", "once upon a time, there was a little girl named Lily.",
        "<s>", "</s>", "<unk>", "a</s>b", "<s> hi </s>", "text with </s> inside",
        "\u2581", "\u2581\u2581x", "x\u2581y", "\u00e9t\u00e9", "e\u0301te\u0301", "na\u00efve caf\u00e9",
        "\u65e5\u672c\u8a9e\u30c6\u30ad\u30b9\u30c8", "\u4f60\u597d\uff0c\u4e16\u754c\uff01", "\ud55c\uad6d\uc5b4",
        "\u0645\u0631\u062d\u0628\u0627", "\u05e9\u05dc\u05d5\u05dd", "\u0928\u092e\u0938\u094d\u0924\u0947",
        "\U0001F917", "\U0001F600\U0001F600", "\U0001F468\u200D\U0001F469\u200D\U0001F467", "\u2028", "a\u2028b",
        "\u00a0", "a\u00a0b", "\u3000", "\u200b", "\ufeff", "\x00", "\x01\x02", "\x7f",
        "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; i++) { sum += a[i]; }",
        "$ ls -la | grep '.json'", "SELECT * FROM t WHERE id = 42;", "https://example.com/a?b=c&d=e",
        "3.14159265358979", "1,234,567.89", "2023-11-27T19:29:14Z", "$100.00", "100%",
        "ALL CAPS TEXT", "MiXeD cAsE", "don't won't can't", "\"quoted\" 'text'", "(parens) [brackets] {braces}",
        "### Instruction:\n", "### Response:\n", "### Input:\n", "...", "!!!", "???", "---", "***", "___",
        "    indented", "trailing   ", "\n\nleading newlines", "x" * 300, "ab" * 200, " " * 50, "\n" * 20,
        "The quick brown fox jumps over the lazy dog. " * 10,
    ]
    rng = random.Random(1234)
    alphabet = "abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789 .,;:!?'\"-\n\t\u00e9\u00fc\u00df\u4e2d\u6587\u2581\U0001F600"
    for _ in range(60):
        n = rng.randint(1, 40)
        cases.append("".join(rng.choice(alphabet) for _ in range(n)))
    return cases


def instruction_strings(n_en=330, n_zh=80):
    """Fields and whole alpaca-lora prompts from the real datasets, picked with a fixed seed."""
    rng = random.Random(42)
    out = []
    en = json.load(open(f"{ASSETS}/alpaca-stanford-5000/alpaca_5000.json", encoding="utf-8"))
    for r in rng.sample(en, n_en // 3):
        out.append(r["instruction"])
        out.append(r["output"])
        out.append(f"### Instruction:\n{r['instruction']}\n\n### Input:\n{r['input']}\n\n### Response:\n{r['output']}")
    zh = json.load(open(f"{ASSETS}/alpaca-llamafactory/alpaca_zh_demo.json", encoding="utf-8"))
    for r in rng.sample(zh, n_zh // 2):
        out.append(r["instruction"])
        out.append(r["output"])
    gsm = json.load(open(f"{ASSETS}/alpaca-gsm8k/gsm_8k_train.json", encoding="utf-8"))
    for r in rng.sample(gsm, 20):
        out.append(r["output"])
    return out


def all_strings():
    return edge_cases() + instruction_strings()
