"""Send a message to an echo service and print the answer, with the errors a client meets.

python examples/client.py record.txt "hello"
"""

import argparse
import sys

import minimalt


async def main(args: argparse.Namespace) -> int:
    try:
        async with minimalt.connect(args.record, "echo", connect_timeout=args.timeout) as conn:
            conn.write(args.message.encode())
            conn.write_eof()  # half-close: the server sees end of stream, we keep reading
            print((await conn.read()).decode())
    except minimalt.RecordError as exc:
        print(f"bad record: {exc}", file=sys.stderr)
    except TimeoutError as exc:  # minimalt.ConnectTimeoutError
        print(f"server unreachable: {exc}", file=sys.stderr)
    except minimalt.ConnectionRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
    except minimalt.MinimaLTError as exc:  # TunnelClosedError, ConnectionReset, ...
        print(f"failed: {exc}", file=sys.stderr)
    else:
        return 0
    return 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record", help="record file or text (mlt1:...)")
    parser.add_argument("message")
    parser.add_argument("--timeout", type=float, default=5.0)
    sys.exit(minimalt.run(main(parser.parse_args())))
