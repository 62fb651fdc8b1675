"""Where a release lives: a local folder or an object-store prefix, behind one small interface.

A :class:`Location` is made from a path or a URL (``s3://bucket/prefix``, ``gs://``, ``az://``,
``abfs://``, ``file://`` or a plain path) by :func:`open_location`. Every byte the release package
writes or reads that is not a Zarr chunk goes through it (index parts, version records, manifests),
and :meth:`Location.zarr_store` gives Zarr a store on the same place, so one code path serves both.

The operations are the ones object stores guarantee (obstore, the ``object_store`` crate):

* :meth:`~Location.put` writes one whole object; readers never see a partial one (local files are
  written to a temporary name and renamed by obstore);
* ``put(..., exclusive=True)`` is a *conditional create* (S3 ``If-None-Match: *``, GCS/Azure
  preconditions, ``O_EXCL`` semantics locally): it raises :class:`ObjectExists` when the key is
  there already, which is what leases and write-once commit objects rely on;
* :meth:`~Location.list` lists keys under a prefix (no folders on object stores).

Credentials come from the environment as each provider's SDK reads them (``AWS_*`` including
``AWS_ENDPOINT_URL`` and ``AWS_ALLOW_HTTP`` for S3-compatible servers, ``GOOGLE_*``,
``AZURE_*``) or from ``options``; they are never part of :attr:`Location.url` (which is safe to
print and store) and never written anywhere by this module.
"""

from __future__ import annotations

import builtins

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ReleaseError

#: URL schemes served by obstore's object stores.
REMOTE_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "azure", "abfs", "abfss", "adl")


#: Retries of a conditional create that failed in transit (connection reset, 5xx); see
#: :meth:`Location.put`. Other requests are retried by obstore (``retry_config`` below).
CREATE_RETRIES = 6


def _transient(e: Exception) -> bool:
    """A failure worth retrying: not a refusal (credentials, permissions, a missing bucket)."""
    name = type(e).__name__
    if name in ("PermissionDeniedError", "UnauthenticatedError", "NotFoundError", "NotSupportedError",
                "InvalidPathError", "UnknownConfigurationKeyError"):
        return False
    import re

    text = str(e)
    if re.search(r"(?<![\d:.])40[13](?!\d)", text):  # an HTTP status, not a port number
        return False
    return not any(m in text for m in ("Forbidden", "ExpiredToken", "AccessDenied", "InvalidAccessKeyId",
                                       "SignatureDoesNotMatch", "NoSuchBucket"))


class ObjectExists(ReleaseError):
    """A conditional create found the object already there."""


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object: its key relative to the location, size in bytes and entity tag."""

    key: str
    size: int
    etag: str | None


def is_remote(path_or_url: str | Path) -> bool:
    """True for an object-store URL (``s3://`` etc.), False for a local path or ``file://``."""
    if isinstance(path_or_url, Path):
        return False
    scheme = urlsplit(str(path_or_url)).scheme.lower()
    return scheme in REMOTE_SCHEMES


def safe_url(url: str) -> str:
    """``url`` without user info, query string or fragment (where credentials hide)."""
    parts = urlsplit(url)
    if not parts.scheme or len(parts.scheme) == 1:  # a local path (or a Windows drive)
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


class Location:
    """A release's root: a local folder (:attr:`local` set) or an object-store prefix.

    Keys are ``/``-separated paths relative to the root (``"index/patches/part-s2-000000.parquet"``).
    """

    def __init__(self, url: str, store: Any, local: Path | None, options: Mapping[str, Any] | None = None):
        self.url = url
        self.local = local
        self._store = store
        self._options = dict(options or {})

    def __repr__(self) -> str:
        return f"Location({self.url!r})"

    def __str__(self) -> str:
        return self.url

    @property
    def is_remote(self) -> bool:
        return self.local is None

    @property
    def obstore(self):
        """The obstore store rooted at this location (for obstore's own API)."""
        return self._store

    def child(self, key: str) -> str:
        """The URL (or local path) of ``key``."""
        if self.local is not None:
            return str(self.local / key)
        return f"{self.url.rstrip('/')}/{key.lstrip('/')}"

    def zarr_store(self, read_only: bool = False):
        """A Zarr v3 store on this location: :class:`zarr.storage.LocalStore` for a folder (Zarr's
        fastest path), :class:`zarr.storage.ObjectStore` over the same obstore store otherwise."""
        import zarr.storage

        if self.local is not None:
            return zarr.storage.LocalStore(self.local, read_only=read_only)
        return _retrying_zarr_store()(self._store, read_only=read_only)

    # -- objects ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        """The bytes of ``key``; :class:`FileNotFoundError` when it is absent."""
        import obstore

        try:
            return bytes(obstore.get(self._store, key).bytes())
        except FileNotFoundError:
            raise
        except Exception as e:  # obstore's NotFoundError subclasses FileNotFoundError; others pass
            raise _translate(e, self, key) from e

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``start`` (inclusive) to ``end`` (exclusive) of ``key``."""
        import obstore

        try:
            return bytes(obstore.get_range(self._store, key, start=start, end=end))
        except FileNotFoundError:
            raise
        except Exception as e:
            raise _translate(e, self, key) from e

    def put(self, key: str, data: bytes, *, exclusive: bool = False) -> None:
        """Write ``key`` whole. ``exclusive``: create only, raising :class:`ObjectExists` when the
        key exists with other bytes (a conditional create; never overwrites).

        obstore retries failed overwrites itself, but not a conditional create that failed in
        transit (not idempotent: the first attempt may have landed). Those are retried here
        (:data:`CREATE_RETRIES`, with backoff): a retry that finds the key holding exactly ``data``
        is the first attempt having landed, so the create succeeded once."""
        import time

        import obstore

        attempt = 0
        while True:
            try:
                obstore.put(self._store, key, data, mode="create" if exclusive else "overwrite")
                return
            except Exception as e:
                if type(e).__name__ in ("AlreadyExistsError", "PreconditionError") or isinstance(e, FileExistsError):
                    if attempt and self._holds(key, data):
                        return
                    raise ObjectExists(f"{self.child(key)} exists already") from e
                if not exclusive or attempt >= CREATE_RETRIES or not _transient(e):
                    raise _translate(e, self, key) from e
            attempt += 1
            time.sleep(min(5.0, 0.1 * 2**attempt))

    def _holds(self, key: str, data: bytes) -> bool:
        try:
            return self.get(key) == data
        except FileNotFoundError:
            return False

    def exists(self, key: str) -> bool:
        import obstore

        try:
            obstore.head(self._store, key)
        except FileNotFoundError:
            return False
        except Exception as e:
            raise _translate(e, self, key) from e
        return True

    def head(self, key: str) -> ObjectInfo:
        """Size and entity tag of ``key``; :class:`FileNotFoundError` when absent."""
        import obstore

        try:
            meta = obstore.head(self._store, key)
        except FileNotFoundError:
            raise
        except Exception as e:
            raise _translate(e, self, key) from e
        return ObjectInfo(key=str(meta["path"]), size=int(meta["size"]), etag=meta.get("e_tag"))

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object under ``prefix`` (recursively), sorted by key."""
        import obstore

        out: list[ObjectInfo] = []
        try:
            for batch in obstore.list(self._store, prefix=prefix or None):
                for meta in batch:
                    out.append(ObjectInfo(key=str(meta["path"]), size=int(meta["size"]), etag=meta.get("e_tag")))
        except FileNotFoundError:
            return []
        except Exception as e:
            raise _translate(e, self, prefix) from e
        return sorted(out, key=lambda o: o.key)

    def list_dirs(self, prefix: str = "") -> builtins.list[str]:  # ``list`` is a method of this class
        """Names of the "folders" directly under ``prefix`` (a ``/``-terminated key prefix or
        ``""``): one delimiter listing, so a release's chunks are never listed to find its groups."""
        import obstore

        try:
            res = obstore.list_with_delimiter(self._store, prefix=prefix or None)
        except FileNotFoundError:
            return []
        except Exception as e:
            raise _translate(e, self, prefix) from e
        return sorted(str(p).rstrip("/").rsplit("/", 1)[-1] for p in res["common_prefixes"])

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when it is absent)."""
        import obstore

        try:
            obstore.delete(self._store, key)
        except FileNotFoundError:
            return
        except Exception as e:
            raise _translate(e, self, key) from e


@functools.cache
def _retrying_zarr_store():
    """zarr's ObjectStore whose writes are retried on transient failures (as :meth:`Location.put`):
    obstore does not retry a conditional create, nor every write that failed in transit."""
    import asyncio

    import obstore as obs
    import zarr.storage

    class RetryingObjectStore(zarr.storage.ObjectStore):
        async def _put(self, key: str, value, mode: str) -> None:
            self._check_writable()
            buf = value.as_buffer_like()
            attempt = 0
            while True:
                try:
                    await obs.put_async(self.store, key, buf, mode=mode)  # type: ignore[arg-type]
                    return
                except obs.exceptions.AlreadyExistsError:
                    if mode == "create":
                        return  # set_if_not_exists: there already (perhaps our own landed attempt)
                    raise
                except Exception as e:
                    if attempt >= CREATE_RETRIES or not _transient(e):
                        raise
                attempt += 1
                await asyncio.sleep(min(5.0, 0.1 * 2**attempt))

        async def set(self, key: str, value) -> None:
            await self._put(key, value, "overwrite")

        async def set_if_not_exists(self, key: str, value) -> None:
            await self._put(key, value, "create")

    return RetryingObjectStore


def open_location(path_or_url: str | Path | Location, options: Mapping[str, Any] | None = None,
                  create: bool = True) -> Location:
    """The :class:`Location` of a local path or an object-store URL.

    ``options`` are obstore configuration keys for remote stores (e.g. ``{"endpoint":
    "http://127.0.0.1:9000", "allow_http": "true"}``); anything not given is read from the
    environment. ``create`` makes a missing local folder (remote prefixes need no creating).
    """
    if isinstance(path_or_url, Location):
        return path_or_url
    text = str(path_or_url)
    if text.startswith("file://"):
        text = urlsplit(text).path
    if not is_remote(text):
        from obstore.store import LocalStore

        folder = Path(text).expanduser().absolute()
        if create:
            from ..lock import ensure_release_folder

            ensure_release_folder(folder)
        elif not folder.is_dir():
            raise ReleaseError(f"{folder}: no such folder")
        return Location(str(folder), LocalStore(prefix=folder, mkdir=True), folder)
    return _remote(text, dict(options or {}))


def _remote(url: str, options: dict) -> Location:
    from obstore.store import from_url

    client_options = dict(options.pop("client_options", {}) or {})
    if str(options.get("allow_http", "")).lower() in ("1", "true", "yes"):
        options.pop("allow_http")
        client_options["allow_http"] = True
    retry = options.pop("retry_config", None) or {
        "max_retries": 10, "retry_timeout": timedelta(seconds=180),
        "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=15), "base": 2.0},
    }
    try:
        store = from_url(url.rstrip("/"), config=options or None,  # type: ignore[arg-type]
                         client_options=client_options or None, retry_config=retry)  # type: ignore[arg-type]
    except Exception as e:
        raise ReleaseError(f"{safe_url(url)}: cannot open this location ({_first_line(e)}); "
                           "check the URL and the credentials in the environment") from None
    return Location(safe_url(url).rstrip("/"), store, None, options)


def _first_line(e: BaseException) -> str:
    from ..credentials import redact

    text = redact(str(e)).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


def _translate(e: Exception, loc: Location, key: str) -> Exception:
    """An obstore failure as one :class:`ReleaseError` line naming the object (no secrets); a
    refusal by the server (403/401: expired or wrong credentials) says what to check."""
    import re

    from ..credentials import redact

    text = redact(str(e))
    code = re.search(r"<Code>([^<]+)</Code>", text)
    msg = re.search(r"<Message>([^<]+)</Message>", text)
    if type(e).__name__ in ("PermissionDeniedError", "UnauthenticatedError") or (code and not _transient(e)):
        why = f"{code.group(1)}: {msg.group(1) if msg else 'refused'}" if code else _first_line(e)[:200]
        return ReleaseError(f"{loc.child(key)}: access refused by the object store ({why}); check the "
                            "credentials in the environment (e.g. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / "
                            "AWS_SESSION_TOKEN) and their expiry")
    return ReleaseError(f"{loc.child(key)}: {type(e).__name__}: {_first_line(e)}")
