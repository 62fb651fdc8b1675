"""A remote file read by HTTP byte ranges, for readers that need a Python file object (h5py).

:func:`open_http` opens an http(s) href with the read-time credentials of
:mod:`spectralearth_data.credentials`: the href signed for its ``auth``, and for Earthdata the
log-ins of :func:`~spectralearth_data.credentials.earthdata_logins` tried in order (a bearer
token; or a login/password sent only to the login host the data server redirects to, whose
cookie then opens the file). The first log-in the server accepts is used for every range of the
file; when none is accepted the error names what was tried and what to set. Nothing of a
credential reaches an error message.
"""

from __future__ import annotations

import contextlib
import io
import re
import threading
from collections import OrderedDict

from ...credentials import (
    EARTHDATA_HOWTO,
    EarthdataLogin,
    earthdata_session,
    install_log_redaction,
    read_logins,
    redact,
    redact_url,
    sign_href,
)
from ...errors import InputDataError

#: Bytes per range request; h5py reads many small pieces, so they are served from blocks.
BLOCK_SIZE = 4 * 2**20
#: Blocks kept per open file (least recently used dropped).
MAX_BLOCKS = 32
#: Seconds before a connection or a read gives up.
TIMEOUT_S = 60

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class LoginRefused(InputDataError):
    """The server refused the read (401/403) with the credentials given."""


class HttpRangeFile(io.RawIOBase):
    """A read-only, seekable file over HTTP ranges of ``url`` through ``session`` (a
    ``requests.Session`` that carries the credentials), with an LRU cache of blocks."""

    def __init__(self, url: str, session, shown: str, block_size: int = BLOCK_SIZE, max_blocks: int = MAX_BLOCKS):
        super().__init__()
        self._url, self._session, self._shown = url, session, shown
        self._block, self._max = block_size, max_blocks
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._pos = 0
        first, size = self._get(0, block_size - 1, first=True)
        self.size = size
        self._blocks[0] = first

    # -- HTTP ------------------------------------------------------------------------------------

    def _get(self, start: int, end: int, first: bool = False) -> tuple[bytes, int]:
        import requests

        try:
            r = self._session.get(self._url, headers={"Range": f"bytes={start}-{end}"}, timeout=TIMEOUT_S)
        except requests.RequestException as e:
            raise InputDataError(f"{self._shown}: {type(e).__name__} ({redact(str(e))})") from None
        with r:
            if r.status_code in (401, 403):
                raise LoginRefused(f"{self._shown}: HTTP {r.status_code} from {redact_url(r.url)}")
            if r.status_code == 206:
                m = _CONTENT_RANGE.match(r.headers.get("Content-Range", ""))
                size = int(m.group(3)) if m and m.group(3) != "*" else -1
                return r.content, size
            if r.status_code == 200:  # a server without ranges: the whole file
                body = r.content
                if not first:
                    return body[start : end + 1], len(body)
                self._whole = body
                return body[:end + 1], len(body)
            raise InputDataError(f"{self._shown}: HTTP {r.status_code} from {redact_url(r.url)}")

    def _block_at(self, n: int) -> bytes:
        with self._lock:
            data = self._blocks.get(n)
            if data is not None:
                self._blocks.move_to_end(n)
                return data
        whole = getattr(self, "_whole", None)
        if whole is not None:
            data = whole[n * self._block : (n + 1) * self._block]
        else:
            data, _ = self._get(n * self._block, min((n + 1) * self._block, self.size) - 1)
        with self._lock:
            self._blocks[n] = data
            while len(self._blocks) > self._max:
                self._blocks.popitem(last=False)
        return data

    # -- file protocol -----------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buf) -> int:
        view = memoryview(buf).cast("B")
        want = min(len(view), max(0, self.size - self._pos))
        done = 0
        while done < want:
            n, off = divmod(self._pos + done, self._block)
            block = self._block_at(n)
            piece = block[off : off + want - done]
            if not piece:
                break
            view[done : done + len(piece)] = piece
            done += len(piece)
        self._pos += done
        return done

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, self.size - self._pos)
        buf = bytearray(size)
        got = self.readinto(buf)
        return bytes(buf[:got])

    def close(self) -> None:
        self._blocks.clear()
        self._whole = None
        with contextlib.suppress(Exception):
            self._session.close()
        super().close()


def open_http(href: str, source: str | None = None, login_host: str | None = None) -> HttpRangeFile:
    """``href`` (http/https) opened for random reads with its read-time credentials.

    The log-ins of the href's ``auth`` are tried in order and the first one the server accepts
    is used; a read that needs none is made as it is. Raises :class:`LoginRefused` naming what
    was tried and what to set when the server refuses them all, :class:`InputDataError` for any
    other failure (the href shown without its query).
    """
    url = sign_href(source, href)
    shown = redact_url(href)
    if _auth(source, href) == "dlr":  # a DLR login (Basic, or the sign-on's cookies) as headers
        from ...credentials import dlr_access, plain_session

        session = plain_session()
        session.headers.update(dlr_access(href).headers)
        try:
            return HttpRangeFile(url, session, shown)
        except Exception:
            session.close()
            raise
    logins: list[EarthdataLogin | None] = list(read_logins(source, href))
    if logins:
        install_log_redaction()  # urllib3 logs the request lines of the login redirects
    earthdata = bool(logins) or _needs_earthdata(source, href)
    if not logins:
        logins = [None]
    refused: list[str] = []
    for login in logins:
        session = earthdata_session(login, login_host)
        try:
            return HttpRangeFile(url, session, shown)
        except LoginRefused as e:
            session.close()
            refused.append(f"{login.name if login else 'no login'}: {str(e).split(': ', 1)[1]}")
        except Exception:
            session.close()
            raise
    what = "; ".join(refused)
    if earthdata:
        raise LoginRefused(f"{shown}: Earthdata Login refused ({what}); {EARTHDATA_HOWTO}")
    raise LoginRefused(f"{shown}: access refused ({what})")


def _auth(source: str | None, href: str) -> str:
    from ...credentials import auth_for

    return auth_for(source, href)


def _needs_earthdata(source: str | None, href: str) -> bool:
    return _auth(source, href) == "earthdata"
