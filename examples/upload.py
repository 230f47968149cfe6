"""Stream a file to a server that hashes it: backpressure with drain(), a checked transfer.

    python examples/upload.py [SIZE_MB]

The writer calls ``drain()`` after each block: it waits whenever more than the high-water mark
is written and not yet acknowledged, so memory stays bounded however fast the disk is and
however slow the receiver. The receiver's window only reopens as its application reads.
"""

import hashlib
import os
import sys
import time

import minimalt


async def sha256_service(conn: minimalt.Connection) -> None:
    digest = hashlib.sha256()
    while block := await conn.read(1 << 20):
        digest.update(block)
    conn.write(digest.hexdigest().encode())


async def main(size: int) -> None:
    async with minimalt.serve(sha256_service, service="sha256") as server:
        async with minimalt.connect(server.record, "sha256") as conn:
            block = os.urandom(1 << 20)
            local = hashlib.sha256()
            start = time.perf_counter()
            for _ in range(size):
                local.update(block)
                conn.write(block)
                await conn.drain()
            conn.write_eof()
            remote = (await conn.read()).decode()
            elapsed = time.perf_counter() - start
    assert remote == local.hexdigest(), "hash mismatch"
    print(f"{size} MB in {elapsed:.2f} s ({size * 1.048576 / elapsed:.1f} MB/s), sha256 match")


if __name__ == "__main__":
    minimalt.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
