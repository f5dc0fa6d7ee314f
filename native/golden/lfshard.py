"""Token shards (.lfs v1, docs/CONTRACTS.md §3): write and read, for the checks and the benchmark."""

import struct
import zlib
from pathlib import Path

MAGIC = b"LFSHARD1"
HEAD = struct.Struct("<8sIIQQ")  # magic, version, vocab_size, n_records, n_tokens


def write_shard(path: Path, records: list[tuple[list[int], list[int]]], vocab: int) -> None:
    """records: (token ids, loss mask) per record; mask 1 = the token is a training target."""
    offsets = [0]
    for toks, mask in records:
        if len(toks) != len(mask):
            raise ValueError(f"record {len(offsets) - 1}: {len(toks)} tokens but {len(mask)} mask values")
        offsets.append(offsets[-1] + len(toks))
    body = HEAD.pack(MAGIC, 1, vocab, len(records), offsets[-1])
    body += struct.pack(f"<{len(offsets)}Q", *offsets)
    body += struct.pack(f"<{offsets[-1]}I", *[t for toks, _ in records for t in toks])
    body += bytes(m for _, mask in records for m in mask)
    path.write_bytes(body + struct.pack("<I", zlib.crc32(body)))


def read_shard(path: Path) -> tuple[int, list[tuple[list[int], list[int]]]]:
    """Returns (vocab_size, records); raises ValueError naming the file and what is wrong."""
    data = path.read_bytes()
    if len(data) < HEAD.size + 12:
        raise ValueError(f"{path}: {len(data)} bytes, too short for a shard")
    magic, version, vocab, n_records, n_tokens = HEAD.unpack_from(data, 0)
    if magic != MAGIC or version != 1:
        raise ValueError(f"{path}: not an LFSHARD1 v1 file")
    expected = HEAD.size + 8 * (n_records + 1) + 5 * n_tokens + 4
    if len(data) != expected:
        raise ValueError(f"{path}: {len(data)} bytes, the header implies {expected}")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(data[:-4]) != crc:
        raise ValueError(f"{path}: CRC-32 mismatch")
    offsets = struct.unpack_from(f"<{n_records + 1}Q", data, HEAD.size)
    tok_at = HEAD.size + 8 * (n_records + 1)
    tokens = struct.unpack_from(f"<{n_tokens}I", data, tok_at)
    mask = data[tok_at + 4 * n_tokens: tok_at + 5 * n_tokens]
    return vocab, [(list(tokens[a:b]), list(mask[a:b])) for a, b in zip(offsets[:-1], offsets[1:])]
