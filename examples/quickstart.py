"""A server and a client in one program: the shortest complete use of minimalt.

python examples/quickstart.py
"""

import minimalt


async def shout(conn: minimalt.Connection) -> None:
    """Answer each line in upper case until the client ends its side."""
    while line := await conn.readline():
        conn.write(line.upper())
        await conn.drain()


async def main() -> None:
    async with minimalt.serve(shout, service="shout") as server:
        print("server record:", server.record.to_text()[:48] + "...")
        # retry_safe: this request may go in the tunnel's very first packet (0-RTT).
        async with minimalt.connect(server.record, "shout", retry_safe=True) as conn:
            conn.write(b"hello, minimalt\n")
            print("answer:", (await conn.readline()).decode().strip())
            stats = conn.stats
            print(f"rtt {stats['min_rtt'] * 1e6:.0f} us, {stats['packets_sent']} packets sent")
            conn.write_eof()


if __name__ == "__main__":
    minimalt.run(main())
