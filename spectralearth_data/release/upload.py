"""``upload``: copy a published release store to object storage (S3, GCS, Azure, ...) via fsspec.

Tiling writes to a POSIX folder (atomic renames, a ``flock`` writer lock); a finished, published
store is then copied up with this command. Object stores have no rename, so the copy keeps the
remote release consistent for readers by its *order*:

1. chunk/shard objects of every array (immutable once committed, see :mod:`.store`);
2. any other file of the store;
3. Zarr metadata: ``zarr.json`` of the arrays, then of the groups (deepest first), the root last,
   so the root's consolidated metadata never names an array whose chunks are not there yet;
4. the index parts (the commit log; ``index/locations.parquet`` of a layout-1 store after them);
5. the version records (``versions/``) and the catalogue (``stac/``, ``croissant.json``,
   ``README.md``), which name index parts;
6. ``release.json`` last: its presence on the remote means the release is complete.

Writer leases (``index/leases/``) are local state of finished runs and are not copied.

A URL that already holds a *different* published release (another ``release.json``) is refused:
releases are immutable, and chunks are compared by size only, so replacing one in place could mix
two releases.

A rerun skips every object that is already there with the same size (and, for everything but
chunks, the same bytes), so an upload killed at any point resumes, and a rerun of a finished one
uploads nothing. Objects on the remote that the store does not have are left alone (counted in
:attr:`UploadSummary.remote_extra`).

Credentials come from the environment or ``storage_options`` and never reach a message or the
summary; URLs in messages lose their query string and user info.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from fsspec.callbacks import Callback

from ..credentials import env_secrets, redact, redact_url, secret_values
from ..errors import InputDataError, ReleaseError
from ..progress import progress_bar
from . import reader
from .layout import LOCATIONS, MANIFEST, PARTS_DIR

#: Files at most this big are compared byte for byte with the remote copy (metadata, index
#: parts, the manifest); bigger ones, and all chunks, by size only.
CONTENT_CHECK_BYTES = 8 * 2**20

#: Files uploaded at once within a stage (fsspec backends are thread-safe).
CONCURRENCY = 8

#: Upload stages, in order (see the module docstring).
STAGES = ("chunks", "other", "array metadata", "group metadata", "index parts", "locations", "versions", "manifest")

#: What the "versions" stage holds: version records and their compacted indexes, which name
#: index parts (so they follow them), and the catalogue pointers written by ``publish``.
VERSION_PREFIXES = ("versions/", "stac/", "croissant.json", "README.md")


@dataclass
class UploadSummary:
    """What an ``upload`` did. ``url`` is the destination without query string or user info."""

    url: str
    release_id: str
    files_uploaded: int = 0
    files_skipped: int = 0  # already on the remote, same size (and bytes)
    bytes_uploaded: int = 0
    bytes_skipped: int = 0
    remote_extra: int = 0  # objects under the URL that the store does not have (left alone)
    not_redistributable: list[str] = field(default_factory=list)  # products whose licence forbids it
    seconds: float = 0.0


@dataclass(frozen=True)
class _File:
    rel: str  # posix path relative to the store root
    size: int
    stage: int  # index into STAGES
    level: int = 0  # files of one stage and level go up together; levels run in order


def safe_url(url: str) -> str:
    """``url`` without query string, fragment or password (where credentials may travel); see
    :func:`~spectralearth_data.credentials.redact_url`."""
    return redact_url(url)


def parse_storage_options(pairs: Iterable[str]) -> dict:
    """``["key=value", "client_kwargs.endpoint_url=http://..."]`` -> nested dict.

    Values are parsed as JSON when they parse (numbers, booleans, objects), else kept as text;
    dotted keys become nested dicts.
    """
    out: dict = {}
    for i, pair in enumerate(pairs, 1):
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():  # the text itself is not shown: it may be a bare secret
            raise InputDataError(f"--storage-option number {i}: expected KEY=VALUE")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        *parents, leaf = key.strip().split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise InputDataError(f"--storage-option {key!r}: {p!r} is already set to a value")
        if isinstance(node.get(leaf), dict):
            raise InputDataError(f"--storage-option {key!r}: {leaf!r} already has nested options")
        node[leaf] = value
    return out


def upload(
    store: Path,
    url: str,
    storage_options: dict | None = None,
    progress: bool = True,
    *,
    on_uploaded: Callable[[str], None] | None = None,
) -> UploadSummary:
    """Copy every file of the published ``store`` to ``url`` in a reader-safe order, resumably.

    ``storage_options`` go to the fsspec backend (``key``, ``secret``, ``client_kwargs`` ...);
    credentials may also come from the environment as the backend reads them. ``on_uploaded``
    is called with each store-relative path once its object is complete (progress hooks).
    Raises :class:`ReleaseError` (unpublished or changing store, another release at ``url``,
    access denied, unreachable endpoint) or :class:`InputDataError` (unknown protocol, missing backend package). The local
    store is only read.
    """
    t0 = time.perf_counter()
    store = Path(store)
    manifest = _check_store(store)
    dest = safe_url(url)
    options = storage_options or {}
    secrets = secret_values(options) + env_secrets()
    fs, root = _open_fs(url, options, dest)
    _refuse_self_copy(fs, root, store, dest)
    files = _local_files(store)
    summary = UploadSummary(url=dest, release_id=str(manifest.get("release_id", store.stem)))
    summary.not_redistributable = sorted(
        s for s, v in manifest.get("sensors", {}).items() if not v.get("redistributable", True)
    )

    remote = _Remote(dest, secrets)
    remote(fs.invalidate_cache, "listing")
    have = _remote_sizes(fs, root, remote)
    rpath = lambda rel: f"{root}/{rel}"
    if rpath(MANIFEST) in have:
        _refuse_other_release(remote(fs.cat_file, "reading back", rpath(MANIFEST)), store, dest)
    todo = _to_upload(fs, store, files, have, rpath, remote, summary)
    local = {rpath(f.rel) for f in files}
    summary.remote_extra = sum(1 for p in have if p not in local)

    todo.sort(key=lambda f: (f.stage, f.level, f.rel))
    with progress_bar(progress, sum(f.size for f in todo), "uploading", in_bytes=True) as advance:
        for step in sorted({(f.stage, f.level) for f in todo}):
            batch = [f for f in todo if (f.stage, f.level) == step]
            with contextlib.closing(_put_all(fs, store, batch, rpath, advance, remote)) as uploaded:
                for f in uploaded:
                    summary.files_uploaded += 1
                    summary.bytes_uploaded += f.size
                    if on_uploaded is not None:
                        on_uploaded(f.rel)
    summary.seconds = time.perf_counter() - t0
    return summary


# -- the local store


def _check_store(store: Path) -> dict:
    """The manifest of a published, quiet store; ReleaseError naming the store otherwise."""
    from ..lock import is_locked
    from .lease import active_writers
    from .storage import open_location

    if not (store / "zarr.json").is_file():
        raise ReleaseError(f"{store}: not a release store (no zarr.json)")
    path = store / MANIFEST
    if not path.is_file():
        raise ReleaseError(f"{store}: not published (no {MANIFEST}); run `spectralearth publish` first")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ReleaseError(f"{path}: unreadable manifest ({e})") from None
    if not isinstance(manifest, dict):
        raise ReleaseError(f"{path}: unreadable manifest (not a JSON object)")
    if is_locked(store) or active_writers(open_location(store, create=False)):
        raise ReleaseError(f"{store}: a curate/tile run is writing this store; upload it once that run has finished")
    keys = reader.part_paths(store)
    listed = sorted(manifest.get("index_parts", []))
    # the manifest lists the parts by key (layout 2) or by file name (layout 1)
    forms = (keys, sorted(k[len(PARTS_DIR) + 1:] for k in keys), sorted(k.rsplit("/", 1)[-1] for k in keys))
    if listed not in forms:
        raise ReleaseError(
            f"{store}: index parts differ from those in {MANIFEST} (the store changed after it was "
            "published); run `spectralearth publish` again"
        )
    return manifest


def _skipped(rel: PurePosixPath) -> bool:
    """Temp files of killed writers (``*.tmp``), dot files (temp parts, lock probes) and the
    writers' leases (local state of a finished run, meaningless on the remote)."""
    return (rel.name.endswith(".tmp") or any(part.startswith(".") for part in rel.parts)
            or str(rel).startswith("index/leases/"))


def _local_files(store: Path) -> list[_File]:
    """Every file of the store to copy, with its stage and order within the stage."""
    metadata = {}  # folder (posix, "" = root) -> node_type
    paths = []
    for p in store.rglob("*"):
        rel = PurePosixPath(p.relative_to(store).as_posix())
        if _skipped(rel) or not p.is_file():
            continue
        paths.append((rel, p.stat().st_size))
        if rel.name == "zarr.json":
            try:
                metadata[str(rel.parent) if str(rel.parent) != "." else ""] = json.loads(p.read_text())["node_type"]
            except (OSError, ValueError, KeyError, TypeError):
                raise ReleaseError(f"{p}: unreadable Zarr metadata") from None
    arrays = sorted((k for k, v in metadata.items() if v == "array"), key=len, reverse=True)
    out = []
    for rel, size in paths:
        s = str(rel)
        depth = len(rel.parts)
        if s == MANIFEST:
            stage, level = "manifest", 0
        elif s == LOCATIONS:
            stage, level = "locations", 0
        elif s.startswith(VERSION_PREFIXES):
            stage, level = "versions", 0
        elif s.startswith("index/"):
            stage, level = "index parts", 0
        elif rel.name == "zarr.json":
            folder = str(rel.parent) if str(rel.parent) != "." else ""
            kind = "array metadata" if metadata[folder] == "array" else "group metadata"
            stage, level = kind, -depth  # deepest groups first: the root zarr.json is last
        elif any(s.startswith(a + "/") for a in arrays):
            stage, level = "chunks", 0
        else:
            stage, level = "other", 0
        out.append(_File(s, size, STAGES.index(stage), level))
    return out


# -- the remote side


class _Remote:
    """Calls into the backend: whatever it raises becomes one ReleaseError line naming the URL."""

    def __init__(self, dest: str, secrets: list[str]):
        self.dest, self.secrets = dest, secrets

    def __call__(self, call, what: str, *args, **kwargs):
        try:
            return call(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - any backend failure is a remote failure
            raise ReleaseError(_remote_message(e, self.dest, what, self.secrets)) from None


def _to_upload(fs, store: Path, files: list[_File], have: dict[str, int], rpath, remote, summary) -> list[_File]:
    """The files whose remote copy is missing or differs (size; bytes too for small non-chunks);
    counts the others in ``summary`` as skipped."""
    todo, checks = [], []
    for f in files:
        if have.get(rpath(f.rel)) != f.size:
            todo.append(f)
        elif STAGES[f.stage] != "chunks" and f.size <= CONTENT_CHECK_BYTES:
            checks.append(f)
        else:
            summary.files_skipped += 1
            summary.bytes_skipped += f.size
    for f, same in zip(checks, _same_content(fs, store, checks, rpath, remote)):
        if same:
            summary.files_skipped += 1
            summary.bytes_skipped += f.size
        else:
            todo.append(f)
    return todo


def _open_fs(url: str, options: dict, dest: str):
    """(filesystem, root path) for ``url``; clear errors for unknown or uninstalled protocols."""
    from fsspec.core import split_protocol, url_to_fs
    from fsspec.registry import known_implementations, registry

    protocol = split_protocol(url)[0] or "file"
    if protocol not in known_implementations and protocol not in registry:
        raise InputDataError(f"{dest}: unknown storage protocol {protocol!r} (use e.g. s3://, gs://, abfs://)")
    if protocol in ("file", "local") and "auto_mkdir" not in options:
        options = {**options, "auto_mkdir": True}  # object stores need no folders; a disk does
    try:
        fs, root = url_to_fs(url, **options)
    except ImportError:
        package = _BACKENDS.get(protocol)
        hint = f"the package {package} (pip install {package})" if package else \
            known_implementations.get(protocol, {}).get("err", "its fsspec backend package")
        raise InputDataError(f"{dest}: {protocol}:// needs {hint}") from None
    except (TypeError, ValueError) as e:
        raise InputDataError(f"{dest}: storage options not accepted by the {protocol} backend "
                             f"({type(e).__name__}); check --storage-option names") from None
    root = root.rstrip("/")
    if not root:
        raise InputDataError(f"{dest}: give a path for the release (e.g. s3://bucket/releases/NAME.zarr)")
    return fs, root


#: The package that brings each common protocol's fsspec backend.
_BACKENDS = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "abfs": "adlfs", "az": "adlfs", "abfss": "adlfs"}


def _refuse_self_copy(fs, root: str, store: Path, dest: str) -> None:
    """A local destination inside the store (or the store itself) would copy the store into itself."""
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(fs, LocalFileSystem):
        target, src = Path(root).resolve(), store.resolve()
        if target == src or src in target.parents:
            raise ReleaseError(f"{dest}: is the store {store} itself or inside it; choose another destination")


def _refuse_other_release(remote_manifest: bytes, store: Path, dest: str) -> None:
    """A published release is never replaced in place: its chunks are compared by size only, so a
    different release of the same shard sizes would end up mixed with it."""
    if remote_manifest == (store / MANIFEST).read_bytes():
        return
    try:
        other = json.loads(remote_manifest).get("release_id", "?")
    except (ValueError, AttributeError):
        other = "?"
    raise ReleaseError(
        f"{dest}: holds another published release ({MANIFEST} differs, release id {other!r}); "
        "upload to a new URL (releases are immutable), or delete that one first"
    )


def _remote_sizes(fs, root: str, remote) -> dict[str, int]:
    """Size of every object under ``root`` (empty if nothing is there yet)."""
    found = remote(fs.find, "listing", root, detail=True)
    sizes = {}
    for p, info in found.items():
        p = _norm(fs, p)
        if p.startswith(root + "/") and info.get("type", "file") == "file":  # not root-suffix siblings
            sizes[p] = int(info.get("size") or 0)
    return sizes


def _norm(fs, path: str) -> str:
    return fs._strip_protocol(path).rstrip("/")


def _same_content(fs, store: Path, files: list[_File], rpath, remote) -> list[bool]:
    """Whether each remote object has the bytes of its local file (read concurrently)."""
    if not files:
        return []

    def same(f: _File) -> bool:
        return remote(fs.cat_file, "reading back", rpath(f.rel)) == (store / f.rel).read_bytes()

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        return list(pool.map(same, files))


def _put_all(fs, store: Path, files: list[_File], rpath, advance: Callable[[int], None], remote):
    """Upload ``files`` with up to CONCURRENCY in flight; yield each once its object is complete.

    The first failure stops the stage: files not started are not started, the error is raised.
    """
    if not files:
        return
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        todo = iter(files)
        running: dict[Future, _File] = {}

        def submit(f: _File) -> None:
            cb = _FileBytes(f.size, advance)
            running[pool.submit(_put_one, fs, store / f.rel, rpath(f.rel), cb, remote)] = f

        try:
            for f in todo:
                submit(f)
                if len(running) >= CONCURRENCY:
                    break
            while running:
                done, _ = wait(running, return_when=FIRST_EXCEPTION)
                for fut in done:
                    f = running.pop(fut)
                    fut.result()
                    yield f
                    nxt = next(todo, None)
                    if nxt is not None:
                        submit(nxt)
        finally:
            for fut in running:
                fut.cancel()


def _put_one(fs, local: Path, target: str, callback, remote) -> None:
    remote(fs.put_file, "upload", str(local), target, callback=callback)
    callback.finish()


def _remote_message(e: Exception, dest: str, what: str, secrets: list[str]) -> str:
    """One line naming the URL and what went wrong, without credentials."""
    detail = " ".join(str(e).split()) or type(e).__name__
    detail = redact(detail, secrets)[:300]
    if isinstance(e, PermissionError) or "AccessDenied" in detail or "InvalidAccessKeyId" in detail \
            or "SignatureDoesNotMatch" in detail or "Forbidden" in detail:
        kind = "access denied; check the credentials (environment or --storage-option) and their rights"
    elif isinstance(e, TypeError):  # s3fs and others pass unknown options on to their clients
        kind = "an option was not accepted by the backend; check the --storage-option names"
    elif isinstance(e, FileNotFoundError):
        kind = "not found; does the bucket/container exist?"
    elif _is_connection_error(e):
        kind = "cannot reach the storage endpoint"
    else:
        kind = "storage error"
    return f"{dest}: {what} failed: {kind} ({type(e).__name__}: {detail})"


def _is_connection_error(e: BaseException) -> bool:
    names = {c.__name__ for c in type(e).__mro__}
    return bool(names & {"ConnectionError", "EndpointConnectionError", "ClientConnectorError",
                         "ConnectTimeoutError", "TimeoutError", "ServerDisconnectedError"})


# -- progress


class _FileBytes(Callback):
    """Forwards the bytes a backend reports for one file to the bar (backends that report
    nothing are counted whole when the file completes)."""

    def __init__(self, size: int, advance: Callable[[int], None]):
        super().__init__(size=size)
        self._total, self._advance, self._sent = size, advance, 0

    def call(self, *args, **kwargs):
        step = min(self.value, self._total) - self._sent
        if step > 0:
            self._sent += step
            self._advance(step)

    def finish(self) -> None:
        if self._total > self._sent:
            self._advance(self._total - self._sent)
            self._sent = self._total
