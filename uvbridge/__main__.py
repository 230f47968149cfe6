"""``python -m minimalt.uvbridge --fd 3``: the process Node's ``require('minimalt')`` spawns.

Frames travel on ``--fd`` (a connected Unix stream socket), never on stdout: anything printed
goes to stderr, which carries logs only (level from ``--log`` or ``MINIMALT_BRIDGE_LOG``). The
process ends when the pipe closes, when the parent named by ``--parent-pid`` is gone, or on
SIGTERM (Linux also delivers SIGTERM when the parent dies); SIGINT is left to the parent.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from .host import DEFAULT_LINGER, PROTOCOL_VERSION, serve_fd


def _die_with_parent(parent_pid: int | None) -> bool:
    """Ask Linux for SIGTERM when the parent dies; False if it is already gone."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no libc symbol: the pipe suffices
            pass
    return not parent_pid or os.getppid() == parent_pid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minimalt.uvbridge", description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="the frame pipe (Unix socket)")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    parser.add_argument(
        "--linger",
        type=float,
        default=DEFAULT_LINGER,
        help="seconds open connections get to deliver after the pipe closes",
    )
    parser.add_argument(
        "--log",
        default=os.environ.get("MINIMALT_BRIDGE_LOG", "warning"),
        help="log level on stderr (debug, info, warning, error)",
    )
    parser.add_argument(
        "--version", action="version", version=f"minimalt.uvbridge protocol {PROTOCOL_VERSION}"
    )
    args = parser.parse_args(argv)

    # A stray print must never reach the parent's stdout: fd 1 becomes a copy of stderr.
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, str(args.log).upper(), logging.WARNING),
        format=f"minimalt.uvbridge[{os.getpid()}] %(levelname)s %(message)s",
    )
    if not _die_with_parent(args.parent_pid):
        return 0

    from .. import run

    run(serve_fd(args.fd, parent_pid=args.parent_pid, linger=args.linger))
    return 0


if __name__ == "__main__":
    sys.exit(main())
