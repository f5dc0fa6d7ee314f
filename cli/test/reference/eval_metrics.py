"""Golden values of the evaluation metrics from their Python references:

- exact match and token F1: the official SQuAD v2.0 evaluation script (normalize_answer,
  compute_exact, compute_f1, reproduced below character for character);
- ROUGE-L: Google's rouge-score package, RougeScorer(["rougeL"]) with the default tokenizer and
  no stemmer (precision, recall, fmeasure).

The pairs (reference, prediction) come from the alpaca datasets in shared/assets: outputs
against themselves, other outputs, truncations, case/punctuation/whitespace variants, empty
strings, Chinese text and hand-written edge cases.

Run from this folder:  ../../../.venv/bin/python eval_metrics.py [--out FILE]
Writes ../golden/eval_metrics.json by default.
"""
import argparse
import collections
import json
import os
import random
import re
import string

from rouge_score import rouge_scorer

from test_strings import ASSETS

here = os.path.dirname(os.path.abspath(__file__))


# --- SQuAD v2.0 evaluate-v2.0.py -------------------------------------------------------------
def normalize_answer(s):
    """Lower text and remove punctuation, articles and extra whitespace."""

    def remove_articles(text):
        regex = re.compile(r"\b(a|an|the)\b", re.UNICODE)
        return re.sub(regex, " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def get_tokens(s):
    if not s:
        return []
    return normalize_answer(s).split()


def compute_exact(a_gold, a_pred):
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold, a_pred):
    gold_toks = get_tokens(a_gold)
    pred_toks = get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        # If either is no-answer, then F1 is 1 if they agree, 0 otherwise
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


# --- the pairs ---------------------------------------------------------------------------------
EDGE = [
    "", " ", "\n", "\t \n", "a", "the", "a an the", "The", "An apple", "the the the",
    "theory", "another", "anthem", "a-b", "the_cat", "the.cat", "The Cat.", "cat", "CAT!!!",
    "don't", "dont", "do n't", "'quoted'", "quoted", "42", "forty-two", "42.0", "4 2",
    "Hello,\u00a0world", "Hello world", "hello\u3000world", "hello\x1cworld", "hello\x85world",
    "hello\ufeffworld", "hello\u200bworld", "caf\u00e9", "cafe\u0301", "CAF\u00c9", "stra\u00dfe",
    "STRASSE", "\u0130stanbul", "istanbul", "\u212aelvin", "kelvin", "\u03a3\u0391\u03a3",
    "\u03c3\u03b1\u03c2", "\u00e0 la carte", "\u00e0la carte", "a\u0301 la", "\u0101 the",
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01", "\u4f60\u597d \u4e16\u754c", "\U0001F600 the \U0001F600",
    "the\u00e9", "\u00e9the", "_the_", "the_", "\u2160 the", "the\u2160", "\u00b2the", "the\u0301",
    "1 the 2", "A B C", "a b c", "\u2028the\u2029", "  the  quick   brown  ", "quick brown",
    "The quick brown fox jumps over the lazy dog.", "quick brown fox jumped over a lazy dog",
    "### Response:\nThe answer", "### Instruction:", "Yes", "yes.", "No", "no",
]


def variants(text, rng):
    out = [text, text.upper(), text.lower(), text.swapcase()]
    out.append(text.translate(str.maketrans("", "", string.punctuation)))
    out.append(re.sub(r"\s+", "  ", text))
    out.append("The " + text + " a")
    words = text.split()
    if words:
        k = rng.randint(0, len(words))
        out.append(" ".join(words[:k]))
        out.append(" ".join(words[k:]))
        shuffled = words[:]
        rng.shuffle(shuffled)
        out.append(" ".join(shuffled))
    cut = rng.randint(0, len(text))
    out.append(text[:cut])
    return out


def build_pairs():
    rng = random.Random(20261202)
    with open(os.path.join(here, ASSETS, "alpaca-stanford-5000", "alpaca_5000.json")) as f:
        stanford = json.load(f)
    with open(os.path.join(here, ASSETS, "alpaca-llamafactory", "alpaca_zh_demo.json")) as f:
        chinese = json.load(f)
    with open(os.path.join(here, ASSETS, "alpaca-gsm8k", "gsm_8k_train.json")) as f:
        gsm = json.load(f)

    def short(text):
        return text[:400]

    pairs = []
    for a in EDGE:
        for b in rng.sample(EDGE, 6):
            pairs.append((a, b))
    for rec in rng.sample(stanford, 40):
        ref = short(rec["output"])
        for v in variants(ref, rng):
            pairs.append((ref, v))
        other = short(rng.choice(stanford)["output"])
        pairs.append((ref, other))
        pairs.append((ref, short(rec["instruction"] + " " + rec["input"])))
        pairs.append((ref, ""))
        pairs.append(("", ref))
    for rec in rng.sample(gsm, 15):
        ref = short(rec["output"])
        pairs.append((ref, ref.split("\n")[-1]))
        pairs.append((ref, short(rng.choice(gsm)["output"])))
    for rec in rng.sample(chinese, 15):
        ref = short(rec["output"])
        pairs.append((ref, ref[: len(ref) // 2]))
        pairs.append((ref, short(rng.choice(chinese)["output"])))
        pairs.append((ref + " the end", "The end."))
    return pairs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(here, "..", "golden", "eval_metrics.json"))
    args = parser.parse_args()
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rows = []
    for ref, pred in build_pairs():
        r = scorer.score(ref, pred)["rougeL"]
        rows.append({
            "reference": ref,
            "prediction": pred,
            "exact_match": compute_exact(ref, pred),
            "f1": compute_f1(ref, pred),
            "rouge_l": {"precision": r.precision, "recall": r.recall, "fmeasure": r.fmeasure},
        })
    doc = {
        "generator": "cli/test/reference/eval_metrics.py",
        "reference": "SQuAD v2.0 evaluate script (exact, f1); rouge-score 0.1.2 RougeScorer(['rougeL'])",
        "pairs": rows,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(rows)} pairs -> {args.out}")


if __name__ == "__main__":
    main()
