"""``spectralearth serve`` and the Prefect server it needs: none there is one line (exit 2); one that
is still starting is waited for (issue 20, item 1)."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from prefect_helpers import BIN, DEPLOYMENTS, REPO, PrefectServer, deployments_named, free_port, stop_process, wait_for


def _one_line_error(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stdout + res.stderr
    return lines[0]


def test_serve_without_a_server_is_one_line_naming_the_url(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there
    env = PrefectServer(url=url, home=tmp_path, log=tmp_path / "log", data=tmp_path / "data").env()
    res = subprocess.run([str(BIN / "spectralearth"), "serve", "--wait", "0"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    line = _one_line_error(res)
    assert f"PREFECT_API_URL={url}" in line and "prefect server start" in line and "--wait" in line, line
    assert "Traceback" not in res.stderr and "httpx" not in res.stderr


class _Gate:
    """A localhost port standing for a Prefect server that is starting: until :meth:`open` it
    accepts each connection and closes it at once (no HTTP answer); after, it forwards every byte
    to ``upstream`` (the session's real server)."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.refused = 0
        self.first_refusal = threading.Event()
        self.is_open = threading.Event()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def open(self) -> None:
        self.is_open.set()

    def close(self) -> None:
        self.stopped = True
        self.sock.close()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if not self.is_open.is_set():
                self.refused += 1
                conn.close()
                self.first_refusal.set()
                continue
            up = socket.create_connection(self.upstream)
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@contextmanager
def _gate(server: PrefectServer) -> Iterator[_Gate]:
    parts = urlsplit(server.url)
    gate = _Gate((parts.hostname, parts.port))
    try:
        yield gate
    finally:
        gate.close()


def test_serve_waits_for_a_server_that_is_starting(prefect_server):
    with _gate(prefect_server) as gate:
        url = f"http://127.0.0.1:{gate.port}/api"
        log = prefect_server.home / "serve-wait.log"
        with open(log, "w") as fh:
            proc = subprocess.Popen([str(BIN / "spectralearth"), "serve", "--wait", "300"], cwd=REPO,
                                    env=prefect_server.env(PREFECT_API_URL=url), stdout=fh,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            # serve has asked and found no server; only now does the "server" come up
            wait_for(gate.first_refusal.is_set, 120, "`spectralearth serve` to probe the server", proc=proc, log=log)
            gate.open()
            wait_for(lambda: "being served" in log.read_text(), 180,
                     "`spectralearth serve` to serve once the server answers", interval=1, proc=proc, log=log)
        finally:
            stop_process(proc)
        assert gate.refused >= 1
        assert len(deployments_named(prefect_server, DEPLOYMENTS)) == len(DEPLOYMENTS)
        assert "Traceback" not in log.read_text()
