"""A local S3-compatible server (moto) for the object-store tests, and a fault-injecting HTTP
proxy in front of it (503 SlowDown, connection resets in the middle of a PUT, expired
credentials), so writers are tested against what object stores really do."""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import struct
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: Credentials of the local server (moto accepts any); never real ones.
KEY, SECRET = "testing", "testing-secret-not-real"


@dataclass
class S3Server:
    endpoint: str

    def env(self, endpoint: str | None = None) -> dict[str, str]:
        """The environment a writer process needs for this server (credentials from the
        environment, never written anywhere)."""
        return {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": endpoint or self.endpoint, "AWS_ALLOW_HTTP": "true"}

    def bucket(self) -> str:
        """A new, empty bucket."""
        import boto3

        name = f"se-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                     region_name="us-east-1").create_bucket(Bucket=name)
        return name


@contextlib.contextmanager
def moto_server() -> Iterator[S3Server]:
    """A moto S3 server on a free localhost port (threads of this process)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


@dataclass
class Chaos:
    """What the proxy does to a request: ``rule(method, path, n)`` -> None (forward), ``"503"``
    (SlowDown), ``"reset"`` (read half the body, then reset the connection) or ``"expired"``
    (403 ExpiredToken). ``n`` counts the requests of that method seen so far (from 1)."""

    rule: Callable[[str, str, int], str | None] = lambda m, p, n: None
    counts: dict[str, int] = field(default_factory=dict)
    injected: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, method: str, path: str) -> str | None:
        with self.lock:
            n = self.counts[method] = self.counts.get(method, 0) + 1
            what = self.rule(method, path, n)
            if what:
                self.injected[what] = self.injected.get(what, 0) + 1
            return what

    @property
    def total(self) -> int:
        return sum(self.injected.values())


_SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
             b"<Message>Please reduce your request rate.</Message></Error>")
_EXPIRED = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ExpiredToken</Code>'
            b"<Message>The provided token has expired.</Message></Error>")


@contextlib.contextmanager
def fault_proxy(upstream: str, chaos: Chaos) -> Iterator[str]:
    """An HTTP proxy to ``upstream`` (the moto endpoint) applying ``chaos``; yields its endpoint."""
    up_host, up_port = upstream.removeprefix("http://").split(":")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            what = chaos.decide(self.command, self.path)
            if what == "reset":
                self.rfile.read(n // 2)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            body = self.rfile.read(n) if n else b""
            if what == "503":
                return self._reply(503, _SLOWDOWN)
            if what == "expired":
                return self._reply(403, _EXPIRED)
            conn = http.client.HTTPConnection(up_host, int(up_port), timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                length = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            finally:
                conn.close()

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
