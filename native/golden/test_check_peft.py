"""check_peft.py must fail when it should: each broken adapter or a core whose logits are off by
1e-4 is refused with the expected message. Also checks the good case passes.

    python test_check_peft.py --core native/build/loraforge-core

A core adapter is trained once (stories260k golden, 10 steps), then copied and broken one way
per case. The "off logits" case runs the real core through a wrapper that scales the logits it
wrote by (1 + 1e-4): the checker, not the core, is under test there.
"""

import argparse
import json
import shutil
import stat
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

HERE = Path(__file__).resolve().parent
GOLDEN = HERE.parent / "tests" / "golden" / "v1" / "stories260k"
sys.path.insert(0, str(HERE))

import check_peft  # noqa: E402


def edit_config(d: Path, **changes):
    p = d / "adapter_config.json"
    cfg = json.loads(p.read_text())
    cfg.update(changes)
    p.write_text(json.dumps(cfg))


def edit_tensors(d: Path, fn):
    p = d / "adapter_model.safetensors"
    save_file(fn(load_file(str(p))), str(p))


def rename_first(t):
    k = sorted(t)[0]
    return {**{x: v for x, v in t.items() if x != k}, k.replace(".weight", ".default.weight"): t[k]}


def transpose_first_b(t):
    k = next(x for x in sorted(t) if "lora_B" in x)
    return {**t, k: t[k].t().contiguous()}


def to_f16(t):
    k = sorted(t)[0]
    return {**t, k: t[k].half()}


def drop_last(t):
    k = sorted(t)[-1]
    return {x: v for x, v in t.items() if x != k}


CASES = [
    ("fan_in_fan_out true", lambda d: edit_config(d, fan_in_fan_out=True), "field fan_in_fan_out"),
    ("task_type missing", lambda d: edit_config(d, task_type=None), "field task_type"),
    ("a key renamed", lambda d: edit_tensors(d, rename_first), "keys differ from PEFT's"),
    ("a tensor missing", lambda d: edit_tensors(d, drop_last), "keys differ from PEFT's"),
    ("B transposed", lambda d: edit_tensors(d, transpose_first_b), "PEFT expects"),
    ("F16 tensor", lambda d: edit_tensors(d, to_f16), "contract 4 wants F32"),
    ("no config", lambda d: (d / "adapter_config.json").unlink(), "adapter_config.json: missing"),
]


def perturbing_core(real_core: Path, dest: Path) -> Path:
    """A wrapper that runs the real core, then scales the logits it wrote by (1 + 1e-4)."""
    script = dest / "core-off-by-1e-4"
    script.write_text(
        f"#!/bin/sh\n{real_core} \"$@\" || exit $?\n"
        f"exec {sys.executable} -c 'import sys; from safetensors.torch import load_file, save_file; "
        f"p = sys.argv[sys.argv.index(\"--out\") + 1]; t = load_file(p); t[\"logits\"] *= 1.0001; save_file(t, p)' \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--core", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "train").mkdir()
        good = check_peft.train_with_core(args.core.resolve(), GOLDEN, tmp / "train")
        model = GOLDEN / "model"

        def expect(name, adapter, core, want):
            nonlocal failures
            try:
                check_peft.check(core, model, adapter, None, 1e-5)
                got = None
            except check_peft.Mismatch as e:
                got = str(e)
            ok = (got is None) if want is None else (got is not None and want in got)
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {name}: {'passed' if got is None else got[:160]}")

        expect("the core's adapter", good, args.core, None)
        for name, breaker, want in CASES:
            d = tmp / name.replace(" ", "_")
            shutil.copytree(good, d)
            breaker(d)
            expect(name, d, args.core, want)
        expect("logits off by 1e-4", good, perturbing_core(args.core.resolve(), tmp), "> tolerance")
    print(f"{len(CASES) + 2 - failures}/{len(CASES) + 2} cases as expected")
    return 1 if failures else 0


if __name__ == "__main__":
    warnings.filterwarnings("ignore", category=UserWarning)  # PEFT's notes about renamed base paths
    sys.exit(main())
