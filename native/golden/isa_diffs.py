#!/usr/bin/env python3
"""Measure how far the goldens move when torch runs other CPU kernels: the numbers behind
regen_check's tolerances (README.md, "Determinism").

Makes every config once per dispatch setting of dispatch.py (pinned, native, avx512, ...) and
prints, per tensor group, the largest difference (max |x - ref| / max |ref|, over all configs)
of each setting against the reference (default: the committed goldens), as a Markdown table.

    .venv/bin/python native/golden/isa_diffs.py [--settings pinned,native,avx512] [--ref DIR] [--work DIR]
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import dispatch

HERE = Path(__file__).resolve().parent
COMMITTED = HERE.parent / "tests" / "golden" / "v1"


def diffs(new: Path, ref: Path) -> dict[str, float]:
    import torch
    from safetensors import safe_open

    out: dict[str, float] = {}
    for cfg in sorted(p.name for p in ref.iterdir() if p.is_dir()):
        files = [Path(cfg) / "golden.safetensors"] + sorted(
            p.relative_to(ref) for p in (ref / cfg / "model").glob("*.safetensors"))
        for f in files:
            with safe_open(str(new / f), "pt") as fn, safe_open(str(ref / f), "pt") as fr:
                for k in fr.keys():
                    a, b = fn.get_tensor(k), fr.get_tensor(k)
                    g = dispatch.group_of(k) if f.name == "golden.safetensors" else "model weights"
                    if a.is_floating_point():
                        d = float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30))
                    else:
                        d = 0.0 if torch.equal(a, b) else float("inf")
                    out[g] = max(out.get(g, 0.0), d)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settings", default=",".join(dispatch.SETTINGS))
    ap.add_argument("--ref", type=Path, default=COMMITTED, help="reference goldens (default %(default)s)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/lf-isa-diffs"), help="where each setting's goldens go")
    ap.add_argument("--reuse", action="store_true", help="compare goldens already in --work, do not regenerate")
    args = ap.parse_args()
    settings = [s for s in args.settings.split(",") if s]
    bad = [s for s in settings if s not in dispatch.SETTINGS]
    if bad:
        print(f"error: unknown setting(s) {bad}; known: {list(dispatch.SETTINGS)}", file=sys.stderr)
        return 2
    configs = ",".join(sorted(p.name for p in args.ref.iterdir() if p.is_dir()))
    table: dict[str, dict[str, float]] = {}
    for s in settings:
        out = args.work / s
        if not args.reuse:
            env = {**os.environ, "LORAFORGE_GOLDEN_DISPATCH": s}
            r = subprocess.run([sys.executable, str(HERE / "make_golden.py"), "--out", str(out), "--configs", configs],
                               env=env, stdout=subprocess.DEVNULL)
            if r.returncode != 0:
                print(f"error: make_golden.py with dispatch {s} failed (exit {r.returncode})", file=sys.stderr)
                return 1
        table[s] = diffs(out, args.ref)
    groups = sorted({g for d in table.values() for g in d})
    print(f"max |x - ref| / max |ref| against {args.ref}, over {configs}\n")
    print("| tensor group | " + " | ".join(settings) + " |")
    print("| --- |" + " --- |" * len(settings))
    for g in groups:
        print(f"| `{g}` | " + " | ".join(f"{table[s].get(g, 0.0):.1e}" if table[s].get(g) else "0" for s in settings) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
