"""The ``minimalt`` command: keys, servers, a netcat-like client, record checks, the directory
(``directory``, ``lookup``), the demo and the benchmarks (``bench``, from a checkout).

Every command prints one clear ``minimalt: error: ...`` line on stderr and exits non-zero on bad
input (missing key file, malformed record, port in use, unreachable server); ``--help`` on each
command says what it takes.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import io
import json
import os
import signal
import sqlite3
import stat
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from .aio import (
    Connection,
    ConnectTimeoutError,
    Identity,
    IdentityError,
    MinimaLTError,
    RecordError,
    Server,
    connect,
    load_record,
    run,
    serve,
)
from .aio.client import DEFAULT_CONNECT_TIMEOUT, _as_name, _pin
from .aio.directory import DirectoryClient, serve_directory
from .directory.config import (
    NOT_CONFIGURED,
    DirectoryConfig,
    load_directory_config,
    parse_address,
    parse_key,
)
from .directory.errors import DirectoryConfigError, DirectoryError
from .directory.protocol import normalize_name
from .proto.config import EndpointConfig
from .proto.records import ServerRecord

PROG = "minimalt"
DEFAULT_IDENTITY = "~/.config/minimalt/identity.json"
EXIT_ERROR = 1
EXIT_USAGE = 2
CHUNK = 1 << 16


class CLIError(Exception):
    """A user-facing failure: printed as one line, exit code ``code``."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def _say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


# --- keygen ------------------------------------------------------------------------------------


def cmd_keygen(args: argparse.Namespace) -> int:
    path = Path(os.path.expanduser(args.out))
    identity = Identity.generate(args.name)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    try:
        identity.save(path, overwrite=args.force)
    except FileExistsError:
        raise CLIError(f"{path} already exists (use --force to overwrite it)") from None
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror}") from None
    print(identity.fingerprint)
    _say(f"wrote identity {args.name!r} to {path} (mode 0600); public key above")
    return 0


# --- record ------------------------------------------------------------------------------------


def _load_record_arg(value: str) -> ServerRecord:
    if value == "-":
        value = sys.stdin.read()
    if not value.strip().startswith("mlt1:") and not os.path.exists(value):
        raise CLIError(f"no record file {value!r} (and not a record text starting with mlt1:)")
    try:
        return load_record(value)
    except RecordError as exc:
        raise CLIError(f"malformed record: {exc}") from None


def _load_identity(path: str) -> Identity:
    """``Identity.load``, a missing or malformed file becoming the one error line."""
    try:
        return Identity.load(path)
    except IdentityError as exc:
        raise CLIError(str(exc)) from None


def _pin_arg(value: str | None) -> bytes | None:
    if value is None:
        return None
    if os.path.exists(value):  # an identity file: pin its public key
        return _load_identity(value).public
    try:
        return _pin(value)  # the check connect(identity=...) applies, with the CLI's message
    except ValueError:
        raise CLIError("--identity-key takes 64 hex digits or an identity file") from None


def cmd_record(args: argparse.Namespace) -> int:
    record = _load_record_arg(args.record)
    try:
        record.verify(time.time(), _pin_arg(args.identity_key))
        verdict = "valid"
    except RecordError as exc:
        verdict = f"INVALID: {exc}"
    _show_record(record, verdict, as_json=args.json)
    if verdict != "valid":
        raise CLIError(f"record is not usable: {verdict[9:]}")
    return 0


def _show_record(
    record: ServerRecord, verdict: str, *, as_json: bool, with_text: bool = False
) -> None:
    expires = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record.expires))
    left = record.expires - time.time()
    if as_json:
        print(
            json.dumps(
                {
                    "name": record.name,
                    "host": record.host,
                    "port": record.port,
                    "identity": record.identity.hex(),
                    "ephemeral": record.ephemeral.hex(),
                    "expires": record.expires,
                    "valid": verdict == "valid",
                    "verdict": verdict,
                    "text": record.to_text(),
                },
                indent=2,
            )
        )
    else:
        rows = [
            ("name", record.name or "(none)"),
            ("address", f"{record.host}:{record.port}"),
            ("identity", record.identity.hex()),
            ("ephemeral", record.ephemeral.hex()),
            ("expires", f"{expires} ({_duration(left)})"),
            ("signature", verdict),
        ]
        if with_text:
            rows.append(("record", record.to_text()))
        for key, value in rows:
            print(f"{key:<10} {value}")


def _duration(seconds: float) -> str:
    if seconds < 0:
        return f"expired {_duration(-seconds)[3:]} ago"
    if seconds < 120:
        return f"in {seconds:.0f} s"
    if seconds < 7200:
        return f"in {seconds / 60:.0f} min"
    return f"in {seconds / 3600:.1f} h"


# --- serve -------------------------------------------------------------------------------------


async def echo_handler(conn: Connection) -> None:
    """Echo every byte back; end our side when the client ends its side."""
    while data := await conn.read(CHUNK):
        conn.write(data)
        await conn.drain()


async def tunnel_info_handler(conn: Connection) -> None:
    """Read one request line, answer the server's view of the tunnel as one JSON line.

    ``packets_received`` is how many packets the server had from this client when the request
    was readable: 1 means the request rode in the tunnel's first packet (0-RTT)."""
    request = await conn.readline()
    stats = conn.stats
    info = {
        "request": request.decode(errors="replace").strip(),
        "packets_received": stats["packets_received"],
        "early_data_accepted": conn.get_extra_info("early_data_accepted"),
        "client": list(conn.peer)[:2],
    }
    conn.write(json.dumps(info).encode() + b"\n")


def forward_handler(host: str, port: int) -> Any:
    """A handler piping each connection to a new TCP connection to ``host``:``port``."""

    async def forward(conn: Connection) -> None:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            _say(f"forward to {host}:{port} failed: {exc.strerror or exc}")
            conn.abort()
            return

        async def up() -> None:  # minimalt -> TCP
            while data := await conn.read(CHUNK):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        async def down() -> None:  # TCP -> minimalt
            while data := await reader.read(CHUNK):
                conn.write(data)
                await conn.drain()
            conn.write_eof()

        tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    return forward


def _parse_hostport(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CLIError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _write_record_file(path: str, record: ServerRecord) -> None:
    """Replace the file atomically, so a reader never sees half a record."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(record.to_text() + "\n")
    os.replace(tmp, target)


def _listen_error(exc: OSError, args: argparse.Namespace) -> CLIError:
    """The one-line error for a server that could not bind its UDP socket."""
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc  # uvloop wraps it
    reason = (
        "address already in use"
        if cause.errno == errno.EADDRINUSE
        else (cause.strerror or str(cause))
    )
    return CLIError(f"cannot listen on UDP {args.host}:{args.port}: {reason}")


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (undo with ``_forget_signals``)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    return stop


def _forget_signals() -> None:
    loop = asyncio.get_running_loop()
    for signum in _STOP_SIGNALS:
        loop.remove_signal_handler(signum)


def _server_identity(args: argparse.Namespace, name: str, throwaway_note: str) -> Identity:
    """The identity file given with -i/--identity, else a new throw-away identity called
    ``name``, announced with ``throwaway_note`` (unless --quiet)."""
    if args.identity is not None:
        return _load_identity(os.path.expanduser(args.identity))
    identity = Identity.generate(name)
    if not args.quiet:
        _say(throwaway_note)
    return identity


async def _serve_main(args: argparse.Namespace) -> int:
    identity = _server_identity(
        args,
        args.name,
        "no --identity given: using a throw-away identity (see `minimalt keygen`)",
    )
    if args.forward:
        fhost, fport = _parse_hostport(args.forward)
        handler = forward_handler(fhost, fport)
        kind = f"forwarding to TCP {fhost}:{fport}"
    else:
        handler = echo_handler
        kind = "echo"
    services = {name: handler for name in (args.service or ["echo"])}
    if args.tunnel_info:
        services["tunnel-info"] = tunnel_info_handler

    def publish(record: ServerRecord) -> None:
        if args.record_file:
            _write_record_file(args.record_file, record)
        if not args.no_print_record:
            print(record.to_text(), flush=True)

    config = EndpointConfig(idle_timeout=args.idle_timeout)
    try:
        server: Server = await serve(
            services=services,
            host=args.host,
            port=args.port,
            identity=identity,
            config=config,
            advertise=args.advertise,
            on_record=publish,
            rotation_interval=args.rotate,
            directory=_directory_config_arg(args) if args.register else None,
        )
    except DirectoryError as exc:
        raise CLIError(f"cannot register {identity.name!r} with the directory: {exc}") from None
    except OSError as exc:
        raise _listen_error(exc, args) from None
    stop = _stop_on_signals()
    try:
        publish(server.record)
        if not args.quiet:
            host, port = server.address
            _say(
                f"serving {', '.join(sorted(services))} ({kind}) on UDP {host}:{port}, "
                f"identity {identity.fingerprint[:16]}..."
            )
        await stop.wait()
        if not args.quiet:
            tunnels = len(server.tunnels)
            _say(f"shutting down: closing {tunnels} tunnel{'s' if tunnels != 1 else ''}")
    finally:
        _forget_signals()
        await server.aclose()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    return run(_serve_main(args))


# --- connect -----------------------------------------------------------------------------------


async def _stdin_chunks() -> Any:
    """Yield stdin in chunks without blocking the loop (pipes, ttys and sockets natively,
    regular files through a thread since they cannot be polled)."""
    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()
    mode = os.fstat(fd).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd):
        reader = asyncio.StreamReader(limit=CHUNK)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(fd), "rb", 0)
        )
        try:
            while data := await reader.read(CHUNK):
                yield data
        finally:
            transport.close()
            os.set_blocking(fd, True)  # the pipe transport made the shared description non-blocking
    else:
        stream = cast(io.BufferedReader, sys.stdin.buffer)
        while data := await loop.run_in_executor(None, stream.read1, CHUNK):
            yield data


async def _connect_main(args: argparse.Namespace) -> int:
    # A server name (no mlt1:, no such file, a valid name) is resolved through the directory.
    record = args.record if _as_name(args.record) else _load_record_arg(args.record)
    try:
        conn = await connect(
            record,
            args.service,
            retry_safe=args.retry_safe,
            connect_timeout=args.timeout,
            identity=_pin_arg(args.identity_key),
        )
    except RecordError as exc:
        raise CLIError(f"unusable record: {exc}") from None
    out = sys.stdout.buffer

    async def pump_stdin() -> None:
        chunks = _stdin_chunks()
        try:
            async for data in chunks:
                conn.write(data)
                await conn.drain()
        finally:
            await chunks.aclose()
        conn.write_eof()

    sender = asyncio.ensure_future(pump_stdin())
    try:
        while True:
            reading = asyncio.ensure_future(conn.read(CHUNK))
            await asyncio.wait([reading, sender], return_when=asyncio.FIRST_COMPLETED)
            if sender.done() and sender.exception() is not None and not reading.done():
                reading.cancel()
                sender.result()  # raises why the upload failed
            if not reading.done():
                await reading
            data = reading.result()
            if not data:
                break
            out.write(data)
            out.flush()
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    conn.close()
    await conn.wait_closed()
    return 0


def cmd_connect(args: argparse.Namespace) -> int:
    return run(_connect_main(args))


# --- directory and lookup ---------------------------------------------------------------------


def _directory_key_arg(value: str) -> bytes:
    """A directory key: hex, base64(url), or an identity file (its public key)."""
    if os.path.exists(value):
        return _load_identity(value).public
    return parse_key(value)


def _directory_config_arg(args: argparse.Namespace) -> DirectoryConfig:
    """The directory named by --directory/--directory-key, else the configured one."""
    address, key = getattr(args, "directory", None), getattr(args, "directory_key", None)
    try:
        if address or key:
            if not (address and key):
                raise CLIError("--directory and --directory-key go together")
            host, port = parse_address(address)
            return DirectoryConfig(host, port, _directory_key_arg(key))
        config = load_directory_config()
    except DirectoryConfigError as exc:
        raise CLIError(str(exc)) from None
    if config is None:
        raise CLIError(NOT_CONFIGURED + " (or pass --directory and --directory-key)")
    return config


def _add_directory_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--directory",
        metavar="HOST:PORT",
        help="directory address (default: $MINIMALT_DIRECTORY or ~/.config/minimalt/client.json)",
    )
    p.add_argument(
        "--directory-key",
        metavar="KEY|FILE",
        help="the directory's public key: hex, base64url, or its identity file",
    )


async def _directory_main(args: argparse.Namespace) -> int:
    identity = _server_identity(
        args,
        "directory",
        "no --identity given: a throw-away key (clients must be given it again)",
    )
    bindings = {}
    for binding in args.bind or []:
        name, sep, key = binding.partition("=")
        if not sep or not name:
            raise CLIError(f"--bind takes NAME=KEY, got {binding!r}")
        try:
            bindings[normalize_name(name)] = _directory_key_arg(key)
        except (ValueError, DirectoryConfigError) as exc:
            raise CLIError(f"--bind {binding!r}: {exc}") from None
    store = args.store if args.store == ":memory:" else os.path.expanduser(args.store)
    try:
        directory = await serve_directory(
            host=args.host,
            port=args.port,
            identity=identity,
            store=store,
            bindings=bindings,
            advertise=args.advertise,
            config=EndpointConfig(idle_timeout=args.idle_timeout),
        )
    except sqlite3.Error as exc:
        raise CLIError(f"cannot open the directory store {store!r}: {exc}") from None
    except OSError as exc:
        raise _listen_error(exc, args) from None
    stop = _stop_on_signals()
    try:
        config = directory.client_config
        for variable, value in config.to_env().items():
            print(f"{variable}={value}", flush=True)
        if args.write_client_config is not None:
            written = config.save(args.write_client_config or None)
            if not args.quiet:
                _say(f"wrote the client configuration to {written}")
        if not args.quiet:
            _say(
                f"directory on UDP {config.host}:{config.port}, key {identity.fingerprint[:16]}"
                f"..., store {store}, {len(directory.store.names())} names; clients use the "
                "two variables above"
            )
        await stop.wait()
    finally:
        _forget_signals()
        await directory.aclose()
    return 0


def cmd_directory(args: argparse.Namespace) -> int:
    return run(_directory_main(args))


async def _lookup_main(args: argparse.Namespace) -> int:
    config = _directory_config_arg(args)
    try:
        normalize_name(args.name)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    async with DirectoryClient.from_config(config, timeout=args.timeout) as directory:
        try:
            record = await directory.lookup(args.name)
        except RecordError as exc:
            raise CLIError(f"the directory answered with an unusable record: {exc}") from None
    _show_record(record, "valid", as_json=args.json, with_text=True)
    return 0


def cmd_lookup(args: argparse.Namespace) -> int:
    return run(_lookup_main(args))


# --- demo --------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from .aio.demo import main as demo_main

    return demo_main(size_mb=args.size, rounds=args.rounds)


def cmd_bench(args: argparse.Namespace) -> int:
    # The benchmarks and their peers (aioquic, TLS) live in the source tree, not the package.
    script = Path(__file__).resolve().parent.parent / "bench" / "runtime_bench.py"
    if not script.is_file():
        raise CLIError(
            "the benchmarks ship with the source tree (bench/): run `minimalt bench` from an "
            "editable install of a checkout, or `make bench` there"
        )
    import subprocess

    argv = ["--quick"] if args.quick else []
    for option in ("runs", "only", "transports", "idle_tunnels", "json", "profile"):
        value = getattr(args, option)
        if value is not None:
            argv += ["--" + option.replace("_", "-"), str(value)]
    if args.native:
        argv.append("--native")
    return subprocess.call([sys.executable, str(script), *argv])


# --- options shared by several commands --------------------------------------------------------
# Each is defined once, so that the commands taking it cannot drift apart in flags, defaults or
# help texts.


def _add_server_arguments(p: argparse.ArgumentParser) -> None:
    """The identity and UDP address of a command that runs a server (serve, directory)."""
    p.add_argument("-i", "--identity", help="identity file (default: a throw-away identity)")
    p.add_argument("--host", default="127.0.0.1", help="UDP address to bind (default 127.0.0.1)")
    p.add_argument("-p", "--port", type=int, default=0, help="UDP port (default: any free port)")


def _add_idle_timeout_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="close tunnels silent for S seconds (default 30)",
    )


def _add_quiet_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")


def _add_timeout_argument(p: argparse.ArgumentParser, *, waiting_for: str) -> None:
    """-t/--timeout for a command that waits for an answer from ``waiting_for``."""
    p.add_argument(
        "-t",
        "--timeout",
        type=float,
        default=DEFAULT_CONNECT_TIMEOUT,
        metavar="S",
        help=f"give up if {waiting_for} does not answer (default {DEFAULT_CONNECT_TIMEOUT:g} s)",
    )


def _add_identity_key_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--identity-key", metavar="HEX|FILE", help="require this server identity")


def _add_json_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")


# --- entry point -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="MinimaLT: minimal-latency encrypted tunnels over UDP (0-RTT, NaCl).",
        epilog="Try `minimalt demo`, or `minimalt COMMAND --help`.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "keygen",
        help="create a server identity file (mode 0600)",
        description="Create a long-term Ed25519 server identity.",
    )
    p.add_argument(
        "-o",
        "--out",
        default=DEFAULT_IDENTITY,
        help=f"identity file to write (default: {DEFAULT_IDENTITY})",
    )
    p.add_argument("-n", "--name", default="minimalt", help="server name put in its records")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser(
        "serve",
        help="run a server (echo, or forward to a TCP port)",
        description="Serve services over MinimaLT. Prints the signed record clients need "
        "(one line, mlt1:...) on stdout, again after every key rotation.",
    )
    _add_server_arguments(p)
    p.add_argument(
        "-s",
        "--service",
        action="append",
        help="service name to accept (repeatable; default: echo)",
    )
    p.add_argument(
        "--forward",
        metavar="HOST:PORT",
        help="pipe each connection to a new TCP connection to HOST:PORT",
    )
    p.add_argument(
        "--tunnel-info",
        action="store_true",
        help="also serve 'tunnel-info': answers a request line with the server's view of the "
        "tunnel as JSON (e.g. how many packets carried the request)",
    )
    p.add_argument(
        "-r",
        "--record-file",
        metavar="PATH",
        help="also write the record to PATH (replaced atomically on rotation)",
    )
    p.add_argument("--no-print-record", action="store_true", help="do not print the record")
    p.add_argument("--advertise", metavar="HOST", help="host to put in the record")
    p.add_argument("-n", "--name", default="minimalt", help="name for a throw-away identity")
    _add_idle_timeout_argument(p)
    p.add_argument(
        "--register",
        action="store_true",
        help="register the record (under the identity's name) with the directory, again after "
        "every key rotation",
    )
    _add_directory_arguments(p)
    p.add_argument(
        "--rotate",
        type=float,
        metavar="S",
        help="rotate the ephemeral key every S seconds (default 1800)",
    )
    _add_quiet_argument(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "connect",
        help="netcat-like client: stdin to a service, the service to stdout",
        description="Open a connection and copy stdin to it and it to stdout. At end of "
        "stdin the connection is half-closed; the command ends when the server ends its side.",
    )
    p.add_argument(
        "record",
        help="server name (resolved through the configured directory), record file, record "
        "text (mlt1:...), or - for stdin",
    )
    p.add_argument("-s", "--service", default="echo", help="service to connect to (default echo)")
    p.add_argument(
        "--retry-safe",
        action="store_true",
        help="send the first data in the 0-RTT first flight (it may be replayed)",
    )
    _add_timeout_argument(p, waiting_for="the server")
    _add_identity_key_argument(p)
    p.set_defaults(func=cmd_connect)

    p = sub.add_parser(
        "record",
        help="print and verify a server record",
        description="Print a record's fields and check signature and expiry.",
    )
    p.add_argument("record", help="record file, record text (mlt1:...), or - for stdin")
    _add_identity_key_argument(p)
    _add_json_argument(p)
    p.set_defaults(func=cmd_record)

    p = sub.add_parser(
        "directory",
        help="run a directory service (names -> server records)",
        description="Run a MinimaLT directory: servers register their signed records under "
        "their names, clients look names up. Prints the two environment variables clients "
        "need (MINIMALT_DIRECTORY, MINIMALT_DIRECTORY_KEY) on stdout.",
    )
    _add_server_arguments(p)
    p.add_argument(
        "--store",
        default="~/.config/minimalt/directory.sqlite3",
        metavar="PATH",
        help="SQLite file of names (default ~/.config/minimalt/directory.sqlite3; "
        ":memory: for none)",
    )
    p.add_argument(
        "--bind",
        action="append",
        metavar="NAME=KEY",
        help="reserve NAME for the identity KEY (hex, base64url or identity file); repeatable",
    )
    p.add_argument("--advertise", metavar="HOST", help="host to put in the directory's record")
    p.add_argument(
        "--write-client-config",
        nargs="?",
        const="",
        metavar="PATH",
        help="also write the client configuration (default ~/.config/minimalt/client.json)",
    )
    _add_idle_timeout_argument(p)
    _add_quiet_argument(p)
    p.set_defaults(func=cmd_directory)

    p = sub.add_parser(
        "lookup",
        help="look a server name up in the directory and print its record",
        description="Ask the directory for NAME's current record, check it (signature, "
        "expiry, name) and print it. Exit code 1 and one error line if there is none.",
    )
    p.add_argument("name", help="server name")
    _add_directory_arguments(p)
    _add_timeout_argument(p, waiting_for="the directory")
    _add_json_argument(p)
    p.set_defaults(func=cmd_lookup)

    p = sub.add_parser(
        "demo",
        help="run a server and clients on loopback: 0-RTT, a transfer, stats",
        description="Start `minimalt serve` as a separate process and show a 0-RTT request "
        "(beside TCP and TLS 1.3), a checked transfer and a clean shutdown.",
    )
    p.add_argument("--size", type=int, default=20, metavar="MB", help="transfer size (default 20)")
    p.add_argument("--rounds", type=int, default=20, help="fresh connections timed per transport")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "bench",
        help="measure speed and memory beside aioquic, TLS 1.3 and TCP (bench/runtime_bench.py)",
        description="Run bench/runtime_bench.py: bulk goodput, fresh tunnels per second, server "
        "CPU per tunnel and memory per idle tunnel, beside aioquic, TLS 1.3 and TCP, with "
        "servers and clients in separate processes on loopback; prints a markdown table with "
        "ratios and the targets. See docs/benchmarks.md.",
    )
    p.add_argument("--quick", action="store_true", help="smaller sizes and counts (a minute)")
    p.add_argument("--runs", type=int, help="runs per figure, the median is reported (default 5)")
    p.add_argument("--only", help="sections: a bulk, b fresh tunnels, c server CPU, d memory")
    p.add_argument("--transports", help="comma-separated, default minimalt,aioquic,tls13,tcp")
    p.add_argument("--idle-tunnels", type=int, help="idle tunnels held for (d), default 10000")
    p.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    p.add_argument("--profile", metavar="DIR", help="then profile (py-spy, tracemalloc) to DIR")
    p.add_argument("--native", action="store_true", help="with --profile: py-spy --native")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CLIError as exc:
        _say(f"error: {exc}")
        return exc.code
    except ConnectTimeoutError as exc:
        _say(f"error: {exc}")
        return EXIT_ERROR
    except (MinimaLTError, RecordError, IdentityError) as exc:
        _say(f"error: {exc}")
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_ERROR
    except OSError as exc:
        _say(f"error: {exc.strerror or exc}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
