"""The `generate` and `score` verbs, end to end, against the generation goldens (make_gen_golden.py).

Runs `loraforge-core generate --variants base,adapter --stream` (one process, one model load, the
adapter unmerged) on the golden prompts in one batch, so prompts of different lengths share a
padded batch, and requires exactly transformers' greedy tokens and stop reasons for both variants
(and `token` events that spell each sequence, in order, before its `sequence` event); a list of
stop tokens (any one ends a sequence; a finished sequence is reported at once, before the rest of
its batch goes on); then
`score` and requires each example's loss_sum within --tol (relative) of transformers'.
Exits 1 on any mismatch, naming the config, variant and prompt.

    python check_gen.py --core native/build/loraforge-core --golden native/tests/golden/gen-v1/stories260k
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(cmd: list[str]) -> list[dict]:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}{p.stderr}")
    return [json.loads(line) for line in p.stdout.splitlines()]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--core", required=True)
    ap.add_argument("--golden", type=Path, required=True)
    # score: a sum of up to 7 token losses, each from fp32 logits that differ from HF's by a few
    # ulp of their size (different summation orders in the matmuls and softmax); see test_generate.cpp
    ap.add_argument("--tol", type=float, default=1e-5)
    a = ap.parse_args()
    g = json.loads((a.golden / "gen_golden.json").read_text())
    model = HERE.parent / "tests" / "golden" / g["model"]
    adapter = a.golden / "adapter"
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        prompts = Path(tmp) / "prompts.jsonl"
        prompts.write_text("".join(json.dumps({"id": f"p{i}", "tokens": p}) + "\n" for i, p in enumerate(g["prompts"])))
        events = run([a.core, "generate", "--model", str(model), "--adapter", str(adapter), "--variants", "base,adapter",
                      "--prompts", str(prompts), "--max-new-tokens", str(g["settings"]["max_new_tokens"]),
                      "--batch-size", str(len(g["prompts"])), "--stream"])
        seqs = {(e["variant"], e["id"]): e for e in events if e["event"] == "sequence"}
        # --stream: one token event per generated token, in order, before its sequence event
        streamed: dict = {}
        for e in events:
            key = (e.get("variant"), e.get("id"))
            if e["event"] == "token":
                if key in streamed and streamed[key] is None:
                    problems.append(f"{key}: token event after its sequence event")
                got = streamed.setdefault(key, [])
                if got is not None:
                    if e["index"] != len(got):
                        problems.append(f"{key}: token event index {e['index']}, expected {len(got)}")
                    got.append(e["token"])
            elif e["event"] == "sequence":
                if streamed.get(key, []) != e["tokens"]:
                    problems.append(f"{key}: streamed tokens {streamed.get(key)} != sequence tokens {e['tokens']}")
                streamed[key] = None  # finished
        if [e["event"] for e in events][:1] != ["start"] or events[-1]["event"] != "done":
            problems.append("events do not start with `start` and end with `done`")
        for variant, want in g["variants"].items():
            for i, w in enumerate(want["sequences"]):
                got = seqs.get((variant, f"p{i}"))
                if got is None:
                    problems.append(f"{variant} p{i}: no sequence event")
                elif got["tokens"] != w["tokens"] or got["stop"] != w["stop"]:
                    problems.append(f"{variant} p{i}: tokens {got['tokens']} stop {got['stop']}, "
                                    f"transformers {w['tokens']} stop {w['stop']}")
        # the stop token: the prompt again, with a token of its base output as the only stop token
        sc = g["stop_case"]
        one = Path(tmp) / "stop.jsonl"
        one.write_text(json.dumps({"id": "stop", "tokens": g["prompts"][sc["prompt"]]}) + "\n")
        events = run([a.core, "generate", "--model", str(model), "--adapter", str(adapter), "--variants", "base,adapter",
                      "--prompts", str(one), "--max-new-tokens", str(g["settings"]["max_new_tokens"]),
                      "--stop-tokens", str(sc["eos_token_id"])])
        for e in (e for e in events if e["event"] == "sequence"):
            w = g["variants"][e["variant"]]["stop_case"]
            want_stop_token = sc["eos_token_id"] if w["stop"] == "stop_token" else None
            if e["tokens"] != w["tokens"] or e["stop"] != w["stop"] or e["stop_token"] != want_stop_token:
                problems.append(f"{e['variant']} stop case: tokens {e['tokens']} stop {e['stop']} {e['stop_token']}, "
                                f"transformers {w['tokens']} stop {w['stop']}")
        # a list of stop tokens, all prompts in one streamed batch: each sequence ends at the first
        # token of the list it chooses (here the stop case's id, listed second, behind an id that no
        # golden sequence contains), so it is its full greedy sequence cut there; and a sequence that
        # ends is reported then, before the others of its variant stream their next tokens
        stop_id = sc["eos_token_id"]
        vocab = json.loads((model / "config.json").read_text())["vocab_size"]
        seen_ids = {t for w in g["variants"].values() for s in w["sequences"] for t in s["tokens"]}
        unused = next(t for t in range(3, vocab) if t not in seen_ids and t != stop_id)
        expect = {}  # (variant, id) -> (tokens, stop, stop_token)
        for variant, want in g["variants"].items():
            for i, w in enumerate(want["sequences"]):
                t = w["tokens"]
                cut = t.index(stop_id) if stop_id in t else None
                expect[(variant, f"p{i}")] = (t[:cut], "stop_token", stop_id) if cut is not None else (t, "max_new_tokens", None)
        events = run([a.core, "generate", "--model", str(model), "--adapter", str(adapter), "--variants", "base,adapter",
                      "--prompts", str(prompts), "--max-new-tokens", str(g["settings"]["max_new_tokens"]),
                      "--batch-size", str(len(g["prompts"])), "--stream", "--stop-tokens", f"{unused},{stop_id}"])
        reported = set()
        ordered = 0  # (a sequence that ended, a later token of another sequence of its variant) pairs seen
        for e in events:
            key = (e.get("variant"), e.get("id"))
            if e["event"] == "sequence":
                got = (e["tokens"], e["stop"], e["stop_token"])
                if got != expect[key]:
                    problems.append(f"{key} --stop-tokens {unused},{stop_id}: got {got}, expected {expect[key]}")
                reported.add(key)
            elif e["event"] == "token":
                # token index k is chosen at decoding step k; a sequence that chose its stop token at
                # step n is reported at that step, so before any token of index > n
                for other, (toks, stop, _) in expect.items():
                    if other[0] == key[0] and other != key and stop == "stop_token" and e["index"] > len(toks):
                        ordered += 1
                        if other not in reported:
                            problems.append(f"{key} token {e['index']} streamed before {other}'s sequence event "
                                            f"(it chose the stop token at step {len(toks)})")
        if ordered == 0:
            problems.append("stop list: no sequence ended while another of its variant went on (nothing checked)")
        # greedy with the repetition penalty
        pc = g["penalty_case"]
        one.write_text(json.dumps({"id": "pen", "tokens": g["prompts"][pc["prompt"]]}) + "\n")
        events = run([a.core, "generate", "--model", str(model), "--adapter", str(adapter), "--variants", "base,adapter",
                      "--prompts", str(one), "--max-new-tokens", str(g["settings"]["max_new_tokens"]),
                      "--repetition-penalty", str(pc["repetition_penalty"])])
        for e in (e for e in events if e["event"] == "sequence"):
            w = g["variants"][e["variant"]]["penalty_case"]
            if e["tokens"] != w["tokens"] or e["stop"] != w["stop"]:
                problems.append(f"{e['variant']} repetition penalty: tokens {e['tokens']}, transformers {w['tokens']}")
        examples = Path(tmp) / "examples.jsonl"
        examples.write_text("".join(json.dumps({"id": f"e{i}", **ex}) + "\n" for i, ex in enumerate(g["score_examples"])))
        events = run([a.core, "score", "--model", str(model), "--adapter", str(adapter), "--variants", "base,adapter",
                      "--examples", str(examples), "--batch-size", "3"])
        scores = {(e["variant"], e["id"]): e for e in events if e["event"] == "score"}
        worst = 0.0
        for variant, want in g["variants"].items():
            for i, w in enumerate(want["loss_sum"]):
                got = scores[(variant, f"e{i}")]
                n = len(g["score_examples"][i]["target"])
                err = abs(got["loss_sum"] - w) / max(1.0, abs(w))
                worst = max(worst, err)
                if err > a.tol or got["target_tokens"] != n or abs(got["mean_loss"] - got["loss_sum"] / n) > 1e-12:
                    problems.append(f"{variant} e{i}: loss_sum {got['loss_sum']!r}, transformers {w!r} (rel err {err:.2e})")
    for p in problems:
        print(f"{g['config']}: {p}")
    n_seq = sum(len(v["sequences"]) for v in g["variants"].values())
    print(f"{g['config']}: {n_seq} greedy sequences, {2 * len(g['score_examples'])} scores "
          f"(worst rel err {worst:.2e}, tol {a.tol:.0e}): {'FAIL' if problems else 'ok'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
