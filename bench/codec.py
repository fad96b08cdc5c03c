"""Cost of the Temporal payload codec: encrypt and decrypt one payload, per payload size.

A post-call workflow moves ~20 payloads (inputs, results, markers) of 50-300 bytes each, so
the codec's cost per workflow is about 20 x (encode + decode) of a small payload. Runs
in-process, no services. ``python -m bench.codec [--n 20000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from temporalio.api.common.v1 import Payload

from bench.common import machine_info, table
from orchestration.codec import EncryptionCodec


def _payload(size: int) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=b"x" * size)


async def measure(n: int, size: int, codec: EncryptionCodec) -> tuple[float, float]:
    plain = [_payload(size)]
    start = time.perf_counter()
    for _ in range(n):
        sealed = await codec.encode(plain)
    encode_us = (time.perf_counter() - start) / n * 1e6
    start = time.perf_counter()
    for _ in range(n):
        await codec.decode(sealed)
    decode_us = (time.perf_counter() - start) / n * 1e6
    return encode_us, decode_us


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000, help="payloads per size")
    args = parser.parse_args()
    codec = EncryptionCodec([("k2", b"\x02" * 32), ("k1", b"\x01" * 32)])
    rows = []
    for size in (64, 256, 4096, 65536):
        enc, dec = await measure(args.n, size, codec)
        rows.append([size, f"{enc:.1f}", f"{dec:.1f}", f"{(enc + dec) * 20 / 1000:.2f}"])
    print(table(["payload bytes", "encode us", "decode us", "20 round trips ms"], rows))
    info = machine_info()
    print(f"\nmachine: {info}")


if __name__ == "__main__":
    asyncio.run(main())
