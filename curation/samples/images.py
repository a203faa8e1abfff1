"""Generated sample images and a local HTTP server for them (tests, benchmarks, `make demo`).

The demo and the tests must download "LAION" images without leaving 127.0.0.1, and must
meet the failures a real crawl meets. URLs have the form `{base}/{kind}/{key}.{ext}`:

| kind       | answer                                                                  |
|------------|-------------------------------------------------------------------------|
| `img`      | a generated image, a pure function of (key, ext): same URL, same bytes  |
| `404`      | HTTP 404                                                                |
| `timeout`  | nothing for `stall_seconds`, then the connection is closed               |
| `text`     | HTTP 200, `Content-Type: image/jpeg`, but the body is HTML               |
| `redirect` | HTTP 302 to `{base}/img/{key}.{ext}`                                    |
| `huge`     | a real `huge_side` x `huge_side` image (exercises resizing, memory)     |
| `noai`     | an image sent with `X-Robots-Tag: noai` (an opt-out img2dataset honours) |

`ext` is `jpg`, `png` or `webp`; `key` is letters, digits, `_`, `-` or `.`. Stalled
requests end when the server closes, so a test never waits more than `stall_seconds`.
"""
from __future__ import annotations

import hashlib
import io
import re
import sys
import threading
from collections import Counter
from contextlib import contextmanager
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, Optional, Tuple

KINDS = ("img", "404", "timeout", "text", "redirect", "huge", "noai")
#: ext -> (Pillow format, Content-Type)
FORMATS = {"jpg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png"), "webp": ("WEBP", "image/webp")}
_PATH_RE = re.compile(r"\A/(?P<kind>[a-z0-9]+)/(?P<key>[A-Za-z0-9_.\-]+)\.(?P<ext>jpg|png|webp)\Z")
NOT_AN_IMAGE = b"<html><body>this page moved; not an image</body></html>\n"


def sample_url(base: str, kind: str, key: str, ext: str = "jpg") -> str:
    """The URL the server answers for (kind, key, ext)."""
    if kind not in KINDS:
        raise ValueError(f"unknown sample-image kind {kind!r}; known: {', '.join(KINDS)}")
    if ext not in FORMATS:
        raise ValueError(f"unknown image extension {ext!r}; known: {', '.join(FORMATS)}")
    return f"{base.rstrip('/')}/{kind}/{key}.{ext}"


def parse_sample_path(path: str) -> Optional[Tuple[str, str, str]]:
    """(kind, key, ext) of a request path, or None when the path is not a sample URL."""
    m = _PATH_RE.match(path.split("?", 1)[0])
    if m is None or m["kind"] not in KINDS:
        return None
    return m["kind"], m["key"], m["ext"]


def _key_bytes(key: str) -> bytes:
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()


def image_size(key: str) -> Tuple[int, int]:
    """(width, height) of the `img` image of `key`: 48..367 px, varied aspect ratios."""
    h = _key_bytes(key)
    return 48 + (h[0] | (h[1] & 1) << 8) % 320, 48 + (h[2] | (h[3] & 1) << 8) % 320


@lru_cache(maxsize=8192)
def generate_image(key: str, ext: str = "jpg") -> bytes:
    """Encoded bytes of the deterministic image of `key` (colour bands seeded by the key)."""
    from PIL import Image, ImageDraw

    h = _key_bytes(key)
    w, hgt = image_size(key)
    img = Image.new("RGB", (w, hgt), (h[4], h[5], h[6]))
    draw = ImageDraw.Draw(img)
    for i in range(3):
        x0, y0 = h[7 + i] * w // 256, h[10 + i] * hgt // 256
        draw.rectangle((x0, y0, x0 + w // 3, y0 + hgt // 3), fill=(h[13 + i % 3], h[i], h[4 + i]))
    return _encode(img, ext)


@lru_cache(maxsize=4)
def generate_huge_image(side: int, ext: str = "jpg") -> bytes:
    """A `side` x `side` grey gradient: few bytes on the wire, many pixels once decoded."""
    from PIL import Image

    img = Image.linear_gradient("L").resize((side, side))
    return _encode(img, ext)


def _encode(img, ext: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=FORMATS[ext][0])
    return buf.getvalue()


class SampleImageServer(ThreadingHTTPServer):
    """A threaded HTTP server on 127.0.0.1 answering sample URLs; counts requests per path.

    Use as a context manager: `with SampleImageServer() as srv: srv.base_url ...`.
    `port=0` picks a free port.
    """

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256

    def __init__(self, host: str = "127.0.0.1", port: int = 0, stall_seconds: float = 2.0,
                 huge_side: int = 4000):
        super().__init__((host, port), _Handler)
        self.stall_seconds = stall_seconds
        self.huge_side = huge_side
        self.hits: Counter = Counter()
        self._hits_lock = threading.Lock()
        self._closing = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def count(self, path: str) -> None:
        with self._hits_lock:
            self.hits[path] += 1

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return  # the client gave up (its timeout), as clients do
        super().handle_error(request, client_address)

    def stall(self) -> None:
        """Wait `stall_seconds`, or less when the server stops."""
        self._closing.wait(self.stall_seconds)

    def start(self) -> "SampleImageServer":
        self._thread = threading.Thread(target=self.serve_forever, name="sample-images", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()  # wakes stalled `timeout` requests
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> "SampleImageServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    server: SampleImageServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - silence per-request logging
        pass

    def do_GET(self):  # noqa: N802 - http.server's naming
        parsed = parse_sample_path(self.path)
        self.server.count(self.path)
        if parsed is None:
            return self._send(400, b"not a sample-image URL\n", "text/plain")
        kind, key, ext = parsed
        ctype = FORMATS[ext][1]
        if kind == "img":
            return self._send(200, generate_image(key, ext), ctype)
        if kind == "huge":
            return self._send(200, generate_huge_image(self.server.huge_side, ext), ctype)
        if kind == "noai":
            return self._send(200, generate_image(key, ext), ctype, {"X-Robots-Tag": "noai"})
        if kind == "404":
            return self._send(404, b"not found\n", "text/plain")
        if kind == "text":
            return self._send(200, NOT_AN_IMAGE, "image/jpeg")
        if kind == "redirect":
            return self._send(302, b"", "text/plain", {"Location": f"/img/{key}.{ext}"})
        # timeout: say nothing until the client gives up or the server stops
        self.server.stall()
        self.close_connection = True

    def _send(self, code: int, body: bytes, ctype: str, headers: Optional[dict] = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serve_sample_images(port: int = 0, stall_seconds: float = 2.0, huge_side: int = 4000) -> Iterator[str]:
    """Serve sample images on 127.0.0.1 while the block runs; yields the base URL."""
    with SampleImageServer(port=port, stall_seconds=stall_seconds, huge_side=huge_side) as srv:
        yield srv.base_url
