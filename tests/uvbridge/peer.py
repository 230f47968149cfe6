"""A test stand-in for Node: spawns ``python -m minimalt.uvbridge`` on a socketpair and speaks
its frames (docs/bridge.md) with asyncio, so the host is tested without Node."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from typing import Any

from minimalt.uvbridge.codec import FrameDecoder, encode, encode_data


class BridgePeer:
    """The parent side of one bridge child: frames out, frames in (as a queue per handle)."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.proc = proc
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder()
        self.frames: list[dict[str, Any]] = []
        self.next_id = 1
        self.next_handle = 1
        self.hello: dict[str, Any] = {}

    @classmethod
    async def spawn(cls, *extra: str, hello: bool = True, window: int | None = None) -> BridgePeer:
        ours, theirs = socket.socketpair()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "minimalt.uvbridge",
                "--fd",
                str(theirs.fileno()),
                "--parent-pid",
                str(os.getpid()),
                *extra,
            ],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        peer = cls(proc, reader, writer)
        if hello:
            frame: dict[str, Any] = {"t": "hello", "v": [1], "agent": "pytest"}
            if window is not None:
                frame["window"] = window
            peer.send(frame)
            peer.hello = await peer.next_frame()
            assert peer.hello["t"] == "hello", peer.hello
        return peer

    def send(self, frame: dict[str, Any]) -> None:
        self.writer.write(encode(frame))

    def send_data(self, h: int, data: bytes, kind: str = "data") -> None:
        head, payload = encode_data(kind, h, data)
        self.writer.write(head + bytes(payload))

    async def next_frame(self, timeout: float = 10.0) -> dict[str, Any]:
        while not self.frames:
            chunk = await asyncio.wait_for(self.reader.read(1 << 16), timeout)
            if not chunk:
                raise EOFError("bridge closed the pipe")
            self.frames.extend(self.decoder.feed(chunk))
        return self.frames.pop(0)

    async def expect(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next frame, which must be of type ``kind``."""
        frame = await self.next_frame(timeout)
        assert frame["t"] == kind, f"expected {kind!r}, got {frame!r}"
        return frame

    def handle(self) -> int:
        h = self.next_handle
        self.next_handle += 2
        return h

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Send a request and return its reply, collecting any other frame on the way."""
        rid = self.next_id
        self.next_id += 1
        self.send({**frame, "id": rid})
        others = []
        while True:
            reply = await self.next_frame()
            if reply.get("id") == rid and reply["t"] in ("ok", "err"):
                self.frames[:0] = others
                return reply
            others.append(reply)

    async def close(self, timeout: float = 10.0) -> int:
        """Close the pipe and wait for the child to exit; its exit status."""
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(None, self.proc.wait), timeout)
        except TimeoutError:
            self.proc.kill()
            self.proc.wait()
            raise
