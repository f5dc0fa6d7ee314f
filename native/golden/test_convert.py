"""The llama2.c conversion is checked, and the check can fail:

    python test_convert.py

1. stories260K.bin converts and its greedy generation matches expected_greedy.json;
2. without the RoPE row permutation the same check refuses the model;
3. a truncated or header-corrupted .bin is refused with a message naming the file and the sizes.
"""

import sys
import tempfile
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import convert_llama2c as conv  # noqa: E402

BIN = HERE / "assets" / "stories260K" / "stories260K.bin"
EXPECTED = HERE / "assets" / "stories260K" / "expected_greedy.json"


def refused(fn, want: str) -> bool:
    try:
        fn()
    except conv.ConversionError as e:
        ok = want in str(e)
        print(f"{'ok  ' if ok else 'FAIL'} refused: {e}")
        return ok
    print(f"FAIL accepted, wanted an error containing {want!r}")
    return False


def main() -> int:
    warnings.filterwarnings("ignore")
    results = []
    conv.check_greedy(conv.to_hf(BIN), EXPECTED)
    print("ok   converted stories260K generates the expected greedy tokens")
    results.append(True)

    permute = conv._permute_rows_for_rotate_half
    conv._permute_rows_for_rotate_half = lambda w, n_heads: w
    try:
        results.append(refused(lambda: conv.check_greedy(conv.to_hf(BIN), EXPECTED), "greedy tokens differ"))
    finally:
        conv._permute_rows_for_rotate_half = permute

    data = BIN.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        short = Path(tmp) / "short.bin"
        short.write_bytes(data[:-100])
        results.append(refused(lambda: conv.read_llama2c(short), f"{short}: 1056440 bytes, the header implies 1056540"))
        bad = Path(tmp) / "bad_header.bin"
        bad.write_bytes(data[:12] + (7).to_bytes(4, "little", signed=True) + data[16:])  # n_heads 7 does not divide dim 64
        results.append(refused(lambda: conv.read_llama2c(bad), "implausible header"))
        tiny = Path(tmp) / "tiny.bin"
        tiny.write_bytes(data[:10])
        results.append(refused(lambda: conv.read_llama2c(tiny), "shorter than the 28-byte header"))
    print(f"{sum(results)}/{len(results)} as expected")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
