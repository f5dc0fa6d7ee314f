"""The CPU kernels torch runs when the goldens are made and when they are checked.

torch picks its kernels from the CPU it runs on: ATen's vectorized ops (softmax, exp, reductions)
come in DEFAULT/AVX2/AVX512 builds chosen at start-up, and MKL's sgemm takes a code path per CPU
vendor and vector width. Different kernels round sums differently, so goldens made on an AMD EPYC
(ATen AVX512) regenerate on an Intel Xeon 1e-6..8e-6 apart. `pin()` fixes the choice before torch
is imported, so every x86-64-v3 machine (AVX2 + FMA: what the core requires too) runs the same
kernels, single-threaded:

    ATEN_CPU_CAPABILITY=avx2      ATen's AVX2 kernels (torch.backends.cpu.get_cpu_capability())
    MKL_CBWR=COMPATIBLE,STRICT    MKL's conditional numerical reproducibility, SSE2 branch: the one
                                  branch MKL honours on non-Intel CPUs too (on the AMD EPYC here
                                  the AVX2/AVX512/SSE4_2 branches give the bits of MKL's own AMD
                                  path, COMPATIBLE changes them, so it is the branch in force)
    ONEDNN_MAX_CPU_ISA=AVX2       oneDNN's JIT capped at AVX2 (torch.backends.mkldnn is also off)
    *_NUM_THREADS=1               one summation order

`LORAFORGE_GOLDEN_DISPATCH` selects another set for measuring what the pin removes
(isa_diffs.py): `native` (the libraries choose, as before the pin), `avx512`, `avx2-mkl-auto`,
`default` (ATen's scalar kernels).
"""

import os
import sys

_THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
_ALL_KEYS = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA",
             "MKL_ENABLE_INSTRUCTIONS", "MKL_DEBUG_CPU_TYPE")

SETTINGS: dict[str, dict[str, str]] = {
    "pinned": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE,STRICT", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    # what the libraries pick on their own (the goldens before the pin were made this way)
    "native": {},
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512", "MKL_CBWR": "AVX512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "avx2-mkl-auto": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "default": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE,STRICT", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}
# what get_cpu_capability() must report for each setting (None: whatever the CPU gives)
EXPECTED_CAPABILITY = {"pinned": "AVX2", "native": None, "avx512": "AVX512", "avx2-mkl-auto": "AVX2",
                       "default": "DEFAULT"}


def selected() -> str:
    name = os.environ.get("LORAFORGE_GOLDEN_DISPATCH", "pinned") or "pinned"
    if name not in SETTINGS:
        raise SystemExit(f"error: LORAFORGE_GOLDEN_DISPATCH={name!r}: expected one of {', '.join(SETTINGS)}")
    return name


def pin() -> str:
    """Set the dispatch environment; must run before torch is imported. Returns the setting's name."""
    if "torch" in sys.modules:
        raise RuntimeError("dispatch.pin() must run before torch is imported: the kernels are chosen at load")
    name = selected()
    for k in _ALL_KEYS:  # a value inherited from the caller's environment must not leak in
        os.environ.pop(k, None)
    os.environ.update(SETTINGS[name])
    os.environ.update(_THREADS)
    return name


def check(name: str) -> dict[str, str]:
    """After `import torch`: the dispatch really is the pinned one. Returns it for golden.json."""
    import torch

    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False
    cap = torch.backends.cpu.get_cpu_capability()
    want = EXPECTED_CAPABILITY[name]
    if want and cap != want:
        raise SystemExit(f"error: dispatch {name!r} asks ATen for {want} kernels but torch runs {cap} "
                         f"(CPU without them, or ATEN_CPU_CAPABILITY not honoured by torch {torch.__version__})")
    return {"aten": cap, "mkl_cbwr": os.environ.get("MKL_CBWR", "(auto)"), "threads": str(torch.get_num_threads())}


# golden.safetensors key group -> tolerance. Largest differences measured between ATen AVX2/AVX512
# and MKL's automatic/COMPATIBLE sgemm (README.md): logits 9.1e-7, loss 1.6e-7, gradients 2.6e-6,
# step losses 1.7e-7, grad norms 1.9e-7, LoRA weights after 10 AdamW steps 8.5e-5 (Adam divides
# each gradient by its own running RMS, so a last-bit change in a small gradient moves an update
# by a visible fraction). Each bound is 4x that, rounded up to one digit: the kernels measured are
# three of the sets an x86 can run (Intel's AVX-512 sgemm cannot run on the AMD CPU measured), and
# two more bits cover another set's rounding while staying far below a real change (a different
# random stream moves the logits 1.2e-4 and the trained weights 8.3e-4). With the pin honoured the
# regeneration is bit for bit; these matter only where it is not. Every group not listed here
# (integers, inits and model weights drawn from torch's generator, learning rates) must match
# exactly.
TOLERANCES = {
    "fwd.logits": 4e-6,
    "fwd.loss": 7e-7,
    "grad.*": 2e-5,
    "train.step_losses": 7e-7,
    "train.grad_norms": 8e-7,
    "train.final.*": 4e-4,
}


def group_of(key: str) -> str:
    for prefix in ("train.final.", "train.init.", "grad.", "init."):
        if key.startswith(prefix):
            return prefix + "*"
    return key
