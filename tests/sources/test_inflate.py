"""Bounded Content-Encoding decoding: the same bytes as httpx's decoders, in steps a size limit can stop."""

from __future__ import annotations

import gzip
import random
import tracemalloc
import zlib
from collections.abc import Callable, Iterator

import brotli
import httpx
import pytest

from tradewatch.sources._inflate import STEP, BoundedDecoder


def _deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
}


def _chunks(data: bytes, rng: random.Random) -> Iterator[bytes]:
    start = 0
    while start < len(data):
        size = rng.choice([1, 7, 512, 4096, 70_000])
        yield data[start : start + size]
        start += size


def _decode(encoding: str | None, body: bytes, rng: random.Random) -> list[bytes]:
    decoder = BoundedDecoder(encoding)
    pieces = [piece for chunk in _chunks(body, rng) for piece in decoder.feed(chunk)]
    return pieces + list(decoder.finish())


def _with_httpx(encoding: str | None, body: bytes) -> bytes:
    headers = {"Content-Encoding": encoding} if encoding else {}
    return httpx.Response(200, headers=headers, content=body).content


@pytest.mark.parametrize(
    "encoding", ["gzip", "x-gzip", "deflate", "br", "gzip, br", "br, gzip", "identity", "zstd-unknown", None]
)
def test_same_bytes_as_httpx_in_bounded_pieces(encoding: str | None) -> None:
    """Whatever the chunking, the decoded body equals httpx's, in pieces of at most twice STEP."""
    rng = random.Random(encoding)
    for size in (0, 1, 1000, 300_000):
        plain = bytes(rng.getrandbits(8) for _ in range(size // 3)) + "tariff 关税 ".encode() * (size // 30)
        body = plain
        for name in [n.strip() for n in (encoding or "").split(",")]:
            body = ENCODERS[name](body) if name in ENCODERS else body
        pieces = _decode(encoding, body, rng)
        assert b"".join(pieces) == plain
        if encoding != "x-gzip":  # httpx leaves x-gzip (gzip's old name) undecoded
            assert plain == _with_httpx(encoding, body)
        assert all(0 < len(piece) <= 2 * STEP for piece in pieces)


def test_raw_deflate_without_zlib_header_is_read() -> None:
    """Some servers send `deflate` as a bare deflate stream; both forms decode."""
    plain = b"export control announcement " * 500
    assert b"".join(_decode("deflate", _deflate_raw(plain), random.Random(1))) == plain


@pytest.mark.parametrize(
    ("encoding", "bomb"),
    [
        ("gzip", lambda: gzip.compress(b"\0" * (64 << 20), 1)),
        ("br", lambda: brotli.compress(b"\0" * (64 << 20), quality=5)),
    ],
)
def test_a_bomb_is_decoded_lazily(encoding: str, bomb: Callable[[], bytes]) -> None:
    """Reading the first megabyte of a 64 MB bomb holds about a megabyte, not the whole inflation."""
    body = bomb()
    tracemalloc.start()
    try:
        decoder = BoundedDecoder(encoding)
        taken = 0
        for piece in decoder.feed(body):
            taken += len(piece)
            if taken > 1 << 20:
                break
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert taken > 1 << 20
    assert peak < 4 << 20, f"peak {peak} bytes while reading 1 MB"


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_garbage_is_a_decoding_error(encoding: str) -> None:
    """A body that is not what its Content-Encoding says fails as httpx's DecodingError."""
    with pytest.raises(httpx.DecodingError):
        _decode(encoding, b"\x1f\x8b not really compressed at all" * 10, random.Random(2))


@pytest.mark.parametrize(
    "after",
    [b"\n", b"trailing junk " * 700, gzip.compress(b"second member")],
    ids=["newline", "junk", "second-gzip-member"],
)
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.timeout(10)
def test_bytes_after_the_stream_are_ignored_as_httpx_does(encoding: str, after: bytes) -> None:
    """More than one step of body, then more bytes: decoding ends with the stream (it once looped forever)."""
    body = ENCODERS[encoding](b"a" * 70_000) + after
    expected = _with_httpx(encoding, body)
    assert expected == b"a" * 70_000
    for rng in (random.Random(3), None):  # random chunks, then the whole body in one chunk
        if rng is None:
            decoder = BoundedDecoder(encoding)
            pieces = [*decoder.feed(body), *decoder.finish()]
        else:
            pieces = _decode(encoding, body, rng)
        assert b"".join(pieces) == expected


@pytest.mark.parametrize("body", [b"x", b"\x00", b"\x03"])
def test_a_one_byte_deflate_body_is_empty_as_for_httpx(body: bytes) -> None:
    assert b"".join(_decode("deflate", body, random.Random(4))) == _with_httpx("deflate", body) == b""
