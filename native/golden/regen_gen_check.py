"""Regenerate the generation goldens into a temporary directory and compare them with the
committed ones (../tests/golden/gen-v1), like regen_check does for the training goldens: files,
tensors (floats within --tol relative to max |committed|, as regen_check; -inf at the same places), JSON exact except the
Python patch version and the fp64 score sums (within --tol relative). Exits 1 when stale.

    .venv/bin/python native/golden/regen_gen_check.py
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMITTED = HERE.parent / "tests" / "golden" / "gen-v1"


def compare_tensors(new: Path, old: Path, tol: float) -> list[str]:
    """regen_check's comparison, with -inf (tokens removed by top-k/top-p) required at the same places."""
    from safetensors.torch import load_file
    a, b = load_file(str(new)), load_file(str(old))
    problems = [f"{old}: tensor {k} differs in presence" for k in sorted(set(a) ^ set(b))]
    for k in sorted(set(a) & set(b)):
        x, y = a[k].double(), b[k].double()
        if x.shape != y.shape or not (x.isinf() == y.isinf()).all() or not (x[x.isinf()] == y[y.isinf()]).all():
            problems.append(f"{old}: {k} differs in shape or in where it is infinite")
            continue
        fin = ~y.isinf()
        scale = y[fin].abs().max().clamp_min(1e-30) if fin.any() else 1.0
        diff = float((x[fin] - y[fin]).abs().max() / scale) if fin.any() else 0.0
        if not diff <= tol:
            problems.append(f"{old}: {k} differs by {diff:.2e} (relative to max |committed|) > {tol:g}")
    return problems


def compare_gen_json(new: Path, old: Path, tol: float) -> list[str]:
    a, b = json.loads(new.read_text()), json.loads(old.read_text())
    problems = []
    for g in (a, b):
        g["versions"].pop("python", None)
    for variant in set(a["variants"]) | set(b["variants"]):
        sa = a["variants"].get(variant, {}).pop("loss_sum", [])
        sb = b["variants"].get(variant, {}).pop("loss_sum", [])
        if len(sa) != len(sb) or any(abs(x - y) > tol * max(1.0, abs(y)) for x, y in zip(sa, sb)):
            problems.append(f"{old}: {variant} loss_sum committed {sb}, regenerated {sa}")
    if a != b:
        changed = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        problems.append(f"{old}: field(s) {changed} differ")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tol", type=float, default=1e-6)
    a = ap.parse_args()
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(HERE / "make_gen_golden.py"), "--out", tmp], check=True,
                       stdout=subprocess.DEVNULL)
        for old in sorted(p for p in COMMITTED.iterdir() if p.is_dir()):
            new = Path(tmp) / old.name
            if not new.is_dir():
                problems.append(f"{old}: not produced any more")
                continue
            fo = {p.relative_to(old) for p in old.rglob("*") if p.is_file()}
            fn = {p.relative_to(new) for p in new.rglob("*") if p.is_file()}
            problems += [f"{old / f}: not produced any more" for f in sorted(fo - fn)]
            problems += [f"{old / f}: missing from the committed goldens" for f in sorted(fn - fo)]
            for f in sorted(fo & fn):
                if f.suffix == ".safetensors":
                    problems += compare_tensors(new / f, old / f, a.tol)
                elif f.name == "gen_golden.json":
                    problems += compare_gen_json(new / f, old / f, a.tol)
                elif (new / f).read_bytes() != (old / f).read_bytes():
                    problems.append(f"{old / f}: contents differ")
    for p in problems:
        print(p)
    print("generation goldens are stale" if problems else "generation goldens are up to date")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
