"""Content-Encoding decoding with bounded output, so a compression bomb is cut at `max_bytes`.

httpx's decoders inflate each network chunk whole: a 48 KB brotli body became 256 MB in
one call, before the size check could see any of it. These decoders hand out about
`STEP` bytes at a time, so the fetcher stops reading a hostile body at its limit with
little more than `max_bytes` in memory. Encodings as httpx reads them: gzip (x-gzip),
deflate (zlib-wrapped or raw), br, several in a row; identity and unknown ones pass through.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Protocol

import brotli
import httpx

__all__ = ["STEP", "BoundedDecoder"]

STEP = 64 * 1024  # decoded bytes handed out at once (brotli's buffer may overshoot it by half)


class _Stage(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...
    def finish(self) -> Iterator[bytes]: ...


class _Zlib:
    """gzip or deflate; a deflate body may come with or without its zlib header (servers differ)."""

    def __init__(self, wbits: int | None) -> None:
        # wbits None: deflate, whose form the first two bytes tell (kept in _head until they came).
        self._d: zlib._Decompress | None = None if wbits is None else zlib.decompressobj(wbits)
        self._head = b""

    def _start(self, data: bytes) -> bytes:
        data = self._head + data
        if len(data) < 2:
            self._head = data
            return b""
        zlib_header = data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
        self._d = zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)
        return data

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._d is None:
            data = self._start(data)
            if self._d is None:
                return
        # Bytes after the end of the stream (a newline, junk, a second gzip member) are ignored,
        # as httpx ignores them; zlib keeps reporting them as unconsumed, so stop at the end.
        while not self._d.eof:
            try:
                out = self._d.decompress(data, STEP)
            except zlib.error as exc:
                raise httpx.DecodingError(str(exc)) from exc
            data = self._d.unconsumed_tail
            if out:
                yield out
            if not data and len(out) < STEP:
                return

    def finish(self) -> Iterator[bytes]:
        if self._d is not None:  # (a one-byte deflate body never started one: empty, as for httpx)
            try:
                out = self._d.flush()
            except zlib.error as exc:  # pragma: no cover - flush after a complete feed does not fail
                raise httpx.DecodingError(str(exc)) from exc
            if out:
                yield out


class _Brotli:
    def __init__(self) -> None:
        self._d = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            # The decoder may keep output back (the limit was reached) even while it would
            # take more input, so drain it until it has nothing more to give.
            out = self._d.process(data, output_buffer_limit=STEP)
            while out:
                yield out
                out = self._d.process(b"", output_buffer_limit=STEP)
        except brotli.error as exc:
            raise httpx.DecodingError(str(exc)) from exc

    def finish(self) -> Iterator[bytes]:
        return iter(())


def _stage(encoding: str) -> _Stage | None:
    if encoding in ("gzip", "x-gzip"):
        return _Zlib(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return _Zlib(None)
    if encoding == "br":
        return _Brotli()
    return None  # identity, or an encoding httpx would not decode either


class BoundedDecoder:
    """Decodes a body given in raw chunks, in pieces of about STEP bytes (never twice that)."""

    def __init__(self, content_encoding: str | None) -> None:
        names = [value.strip().lower() for value in (content_encoding or "").split(",")]
        # Listed in the order they were applied, so undone in reverse.
        self._stages = [stage for name in reversed(names) if (stage := _stage(name)) is not None]

    def _through(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self._stages):
            if data:
                yield data
            return
        for piece in self._stages[index].feed(data):
            yield from self._through(index + 1, piece)

    def feed(self, raw: bytes) -> Iterator[bytes]:
        if not self._stages:  # identity: split big reads so the caller's limit still applies per step
            if len(raw) <= STEP:
                yield raw
                return
            for start in range(0, len(raw), STEP):
                yield raw[start : start + STEP]
            return
        yield from self._through(0, raw)

    def finish(self) -> Iterator[bytes]:
        for index, stage in enumerate(self._stages):
            for piece in stage.finish():
                yield from self._through(index + 1, piece)
