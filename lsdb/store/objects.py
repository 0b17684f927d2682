"""Content-addressed objects on disk: `ROOT/objects/sha256/ab/cdef...` (docs/architecture.md, "The store").

An object is published atomically: written to a temporary file in the same file system
(`.tmp-*`), hashed while it is written, fsynced, `os.replace`d under its digest, made read-only,
and the folder fsynced. A crash therefore leaves at most an orphan temporary file, which
`temp_files` lists for `lsdb gc`; never a half-written object under its final name.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from lsdb.errors import BadInput, NotFound, StoreError

TEMP_PREFIX = ".tmp-"
"""Name prefix of files being written; anything left with it is a crash leftover."""
QUARANTINE_PREFIX = ".gc-"
"""Name prefix of objects `lsdb gc` has moved aside before deciding to delete or restore them."""
CHUNK = 1 << 20
"""Bytes hashed and written per step: small enough to stay in cache between the two."""
BytesLike = bytes | bytearray | memoryview
"""Anything with the buffer protocol works (numpy arrays too); these are the usual ones."""
_DIGEST = re.compile(r"[0-9a-f]{64}")
_READ_ONLY = 0o444
_ABSENT = (FileNotFoundError, NotADirectoryError)


@dataclass(frozen=True)
class BlobInfo:
    """A stored object: its sha256 hex digest, size in bytes, and path relative to the store root."""

    digest: str
    size: int
    relpath: str


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_digest(digest: str) -> str:
    """`digest` as 64 lowercase hex characters; BadInput for anything else (it becomes a path)."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest.lower()):
        raise BadInput(f"not a sha256 digest: {digest!r}")
    return digest.lower()


class CorruptObject(StoreError):
    """A stored object's bytes no longer match its digest."""


def corrupt_message(digest: str, root: Path) -> str:
    return (f"object {digest[:12]} in the store {root} is corrupt (its bytes do not match its digest); "
            "run `lsdb doctor`, then re-ingest or recompute it")


class ObjectStore:
    """Objects addressed by the sha256 of their bytes, under `root`.

    Nothing touches the disk until the first write, which creates the folders and checks
    that they are writable (StoreError naming the root otherwise).
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.objects = self.root / "objects" / "sha256"
        self._writable = False

    def __repr__(self) -> str:
        return f"ObjectStore({str(self.root)!r})"

    # -- addressing -----------------------------------------------------------------------------

    def relpath(self, digest: str) -> str:
        """The object's path relative to the root, as recorded in the catalog."""
        digest = check_digest(digest)
        return f"objects/sha256/{digest[:2]}/{digest[2:]}"

    def path(self, digest: str) -> Path:
        """Where the object with `digest` lives (whether or not it exists)."""
        return self.root / self.relpath(digest)

    def exists(self, digest: str) -> bool:
        """Whether the object is on disk (its content is not checked; see `verify`)."""
        return self.path(digest).is_file()

    def info(self, digest: str) -> BlobInfo:
        """The stored object's BlobInfo; NotFound naming the digest when it is missing."""
        try:
            size = self.path(digest).stat().st_size
        except _ABSENT:
            raise NotFound(f"object {digest} is not in the store {self.root}") from None
        return BlobInfo(digest=check_digest(digest), size=size, relpath=self.relpath(digest))

    # -- writing --------------------------------------------------------------------------------

    def check_writable(self) -> None:
        """Create the object folders and prove a file can be written there, once per store."""
        if self._writable:
            return
        try:
            self.objects.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=self.objects)
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):  # a concurrent `gc` may have taken the probe already
                os.unlink(probe)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise StoreError(f"store {self.root} is not writable: {reason}; pass --store or set LSDB_STORE") from None
        self._writable = True

    def put_bytes(self, data: BytesLike, digest: str | None = None) -> BlobInfo:
        """Store `data`; see `put_chunks`."""
        return self.put_chunks([data], digest)

    def put_chunks(self, chunks: Sequence[BytesLike], digest: str | None = None) -> BlobInfo:
        """Store the concatenation of `chunks` (e.g. `canonical_chunks(tensors)`) without joining them.

        With `digest` (computed by the caller, e.g. `encode_checkpoint`), an object already stored
        with that digest and the right size is not rewritten; otherwise the bytes are hashed as they
        are written and a mismatch is a StoreError (the temporary file is removed). Without it, the
        bytes are hashed once in memory first. Either way the bytes are hashed exactly once.
        """
        views = [memoryview(c).cast("B") for c in chunks]
        size = sum(v.nbytes for v in views)
        if digest is None:
            h = hashlib.sha256()
            for view in views:
                h.update(view)
            digest, expected, hashing = h.hexdigest(), None, None
        else:
            digest = check_digest(digest)
            expected, hashing = digest, hashlib.sha256()
        info = BlobInfo(digest=digest, size=size, relpath=self.relpath(digest))
        if self._has(info):
            return info
        with _TempFile(self._folder(digest)) as temp:
            for view in views:
                for start in range(0, view.nbytes, CHUNK):
                    piece = view[start : start + CHUNK]
                    if hashing is not None:
                        hashing.update(piece)
                    temp.write(piece)
            if hashing is not None and hashing.hexdigest() != expected:
                raise StoreError(f"digest mismatch writing object: expected {expected}, got {hashing.hexdigest()}")
            temp.publish(self.root / info.relpath)
        return info

    def put_file(self, path: Path | str, digest: str | None = None) -> BlobInfo:
        """Store a file's content, streamed in chunks and hashed while copied (e.g. an HDF5 artifact)."""
        path = Path(path)
        if digest is not None:
            digest = check_digest(digest)
            known = BlobInfo(digest, path.stat().st_size, self.relpath(digest))
            if self._has(known):
                return known
        # Without a digest the shard is unknown until the end: write beside the shards, same file system.
        with _TempFile(self._folder(digest) if digest else self._ready()) as temp:
            h, size, buf = hashlib.sha256(), 0, bytearray(CHUNK)
            with open(path, "rb", buffering=0) as source:
                while n := source.readinto(buf):
                    piece = memoryview(buf)[:n]
                    h.update(piece)
                    temp.write(piece)
                    size += n
            actual = h.hexdigest()
            if digest is not None and actual != digest:
                raise StoreError(f"digest mismatch storing {path}: expected {digest}, got {actual}")
            info = BlobInfo(digest=actual, size=size, relpath=self.relpath(actual))
            if not self._has(info):
                self._folder(actual)
                temp.publish(self.root / info.relpath)
        return info

    def put_stream(self, chunks: Iterable[BytesLike]) -> BlobInfo:
        """Store the concatenation of lazily produced `chunks`, hashed as written: memory stays at one
        chunk (a streamed checkpoint's bytes are never all in memory at once)."""
        with _TempFile(self._ready()) as temp:
            h, size = hashlib.sha256(), 0
            for chunk in chunks:
                view = memoryview(chunk).cast("B")
                h.update(view)
                temp.write(view)
                size += view.nbytes
            actual = h.hexdigest()
            info = BlobInfo(digest=actual, size=size, relpath=self.relpath(actual))
            if not self._has(info):
                self._folder(actual)
                temp.publish(self.root / info.relpath)
        return info

    def _ready(self) -> Path:
        self.check_writable()
        return self.objects

    def _folder(self, digest: str) -> str:
        folder = self._ready() / digest[:2]
        if not folder.is_dir():
            folder.mkdir(exist_ok=True)
            _fsync_dir(self.objects)
        return str(folder)

    def _has(self, info: BlobInfo) -> bool:
        """Whether the object is stored with verified content; a present object's age is refreshed
        (so `lsdb gc` sees it as young while the row that reuses it is committed). A damaged copy
        counts as absent: the caller's write replaces it."""
        path = self.root / info.relpath
        try:
            if path.stat().st_size != info.size or self.verify(info.digest) != "ok":
                return False
            os.utime(path)
        except _ABSENT:  # removed (or moved aside by gc) meanwhile: write it again
            return False
        except PermissionError:  # another user's object in a shared store: its age stays
            pass
        return True

    # -- reading and upkeep ---------------------------------------------------------------------

    def open(self, digest: str) -> BinaryIO:
        """The object opened for binary reading; NotFound naming the digest when it is missing.

        An object `lsdb gc` holds aside for a moment (see `quarantine`) is read where it lies: a row
        committed meanwhile refers to it, so gc puts it back, and an open file outlives a deletion."""
        try:
            return _open_here_or_aside(self.path(digest))
        except _ABSENT:
            raise NotFound(f"object {digest} is not in the store {self.root}") from None

    def read_bytes(self, digest: str) -> bytes:
        """The object's bytes; NotFound naming the digest when it is missing."""
        with self.open(digest) as handle:
            return handle.read()

    def read_verified(self, digest: str) -> bytes:
        """The object's bytes, read once and hashed in the same pass: what computations load.

        `CorruptObject` (one line naming `lsdb doctor`) when they do not match the digest,
        NotFound when the object is missing.
        """
        digest = check_digest(digest)
        data = self.read_bytes(digest)
        if hashlib.sha256(data).hexdigest() != digest:
            raise CorruptObject(corrupt_message(digest, self.root))
        return data

    def verify(self, digest: str) -> Literal["ok", "missing", "corrupt"]:
        """Re-hash the object: "ok", "missing", or "corrupt" when its bytes no longer match its name."""
        h = hashlib.sha256()
        try:
            with _open_here_or_aside(self.path(digest), raw=True) as handle:
                buf = bytearray(CHUNK)
                while n := handle.readinto(buf):
                    h.update(memoryview(buf)[:n])
        except _ABSENT:
            return "missing"
        return "ok" if h.hexdigest() == check_digest(digest) else "corrupt"

    def iter_digests(self) -> Iterator[str]:
        """Digests of every object on disk, in sorted order (temporary files are skipped)."""
        if not self.objects.is_dir():
            return
        for shard in sorted(self.objects.iterdir()):
            if len(shard.name) != 2 or not shard.is_dir():
                continue
            for entry in sorted(shard.iterdir()):
                digest = shard.name + entry.name
                if _DIGEST.fullmatch(digest) and entry.is_file():
                    yield digest

    def remove(self, digest: str) -> bool:
        """Delete an object (made writable first); False when it was not there."""
        target = self.path(digest)
        try:
            os.chmod(target, 0o644)
            target.unlink()
        except _ABSENT:
            return False
        return True

    # -- gc's quarantine: move aside, re-check, then delete or restore ----------------------------

    @contextlib.contextmanager
    def gc_lock(self) -> Iterator[None]:
        """One `lsdb gc` at a time on this store (a second waits): a quarantined object then
        belongs to the running gc, and any found at its start were left by a crashed one."""
        self.check_writable()
        with open(self.objects / ".gc.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def quarantine(self, digest: str) -> Path | None:
        """Move the object aside under a `.gc-` name in its shard (a writer that looks for it now
        finds it absent and writes it again); the moved path, or None when it was not there."""
        final = self.path(digest)
        moved = final.with_name(QUARANTINE_PREFIX + final.name)
        try:
            os.rename(final, moved)
        except _ABSENT:
            return None
        return moved

    def restore(self, digest: str, moved: Path) -> None:
        """Put a quarantined object back (or drop it when a writer has already written it again)."""
        final = self.path(digest)
        if final.is_file():
            self.discard(moved)
        else:
            os.rename(moved, final)  # a writer publishing the same bytes meanwhile is harmless

    def discard(self, moved: Path) -> None:
        """Delete a quarantined object."""
        try:
            os.chmod(moved, 0o644)
            moved.unlink()
        except _ABSENT:
            pass

    def quarantined(self) -> list[tuple[str, Path]]:
        """Objects a gc moved aside and has not settled (it crashed): (digest, path)."""
        if not self.objects.is_dir():
            return []
        found = []
        for shard in sorted(self.objects.iterdir()):
            if len(shard.name) != 2 or not shard.is_dir():
                continue
            for entry in sorted(shard.iterdir()):
                name = entry.name
                if name.startswith(QUARANTINE_PREFIX):
                    digest = shard.name + name[len(QUARANTINE_PREFIX):]
                    if _DIGEST.fullmatch(digest):
                        found.append((digest, entry))
        return found

    def remove_temp(self, path: Path, cutoff: float) -> int | None:
        """Delete a leftover temporary file (see `temp_files`) unless it was written after `cutoff`
        (epoch seconds) or is being written; its size, or None when it was kept or gone.

        The file is deleted while gc holds its lock, and a writer that locks a file only to find it
        unlinked starts a new one (`_TempFile`), so a write that has just created its file is never lost."""
        try:
            with _try_lock(path) as fd:
                if fd is None:
                    return None  # a live writer holds it
                st = os.fstat(fd)
                if st.st_mtime > cutoff or st.st_nlink == 0 or os.stat(path).st_ino != st.st_ino:
                    return None  # written meanwhile, published (renamed) or replaced by another file of that name
                os.unlink(path)
                return st.st_size
        except FileNotFoundError:  # gone
            return None

    def temp_files(self, min_age_s: float = 0.0) -> list[Path]:
        """Temporary files at least `min_age_s` old and not being written (a writer holds a lock on
        its file): leftovers of crashed writes."""
        if not self.objects.is_dir():
            return []
        folders = [self.objects, *(p for p in self.objects.iterdir() if p.is_dir())]
        now = time.time()
        found = []
        for folder in folders:
            for entry in folder.iterdir():
                if entry.name.startswith(TEMP_PREFIX):
                    try:
                        if now - entry.stat().st_mtime >= min_age_s and not _locked(entry):
                            found.append(entry)
                    except _ABSENT:  # finished or removed meanwhile
                        pass
        return sorted(found)


def _open_here_or_aside(path: Path, raw: bool = False) -> io.FileIO | io.BufferedReader:
    """Open an object for reading (unbuffered when `raw`), or its `.gc-` copy while gc holds it
    aside; the first error when neither is there."""
    try:
        return open(path, "rb", buffering=0) if raw else open(path, "rb")
    except _ABSENT:
        aside = path.with_name(QUARANTINE_PREFIX + path.name)
        try:
            return open(aside, "rb", buffering=0) if raw else open(aside, "rb")
        except _ABSENT:
            pass
        raise


@contextlib.contextmanager
def _try_lock(path: Path) -> Iterator[int | None]:
    """The file opened and exclusively locked without waiting: its descriptor, or None when a live
    writer holds the lock; FileNotFoundError (and other OSErrors) when it cannot be opened."""
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
        else:
            yield fd
    finally:
        os.close(fd)


def _locked(path: Path) -> bool:
    """Whether a live writer holds the lock on a temporary file."""
    try:
        with _try_lock(path) as fd:
            return fd is None
    except OSError:
        return False


class _TempFile:
    """A `.tmp-*` file in `folder` that is either published under its final name or deleted."""

    def __init__(self, folder: Path | str) -> None:
        while True:
            fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
            fcntl.flock(fd, fcntl.LOCK_EX)  # held while it is written: `lsdb gc` leaves a live write alone
            if os.fstat(fd).st_nlink:
                break
            # a gc took the file between its creation and our lock (it removes only what it has locked)
            os.close(fd)
        self.path = Path(name)
        self.file = os.fdopen(fd, "wb", buffering=0)
        self.published = False

    def __enter__(self) -> _TempFile:
        return self

    def write(self, data: memoryview) -> None:
        """Write all of `data` (raw writes may be partial)."""
        while data:
            data = data[self.file.write(data) :]

    def publish(self, final: Path) -> None:
        """fsync, make read-only, rename to `final` (replacing a damaged copy) and fsync its folder."""
        os.fsync(self.file.fileno())
        os.fchmod(self.file.fileno(), _READ_ONLY)
        os.replace(self.path, final)  # still open, so still locked: gc never takes it mid-rename
        self.published = True
        self.file.close()
        _fsync_dir(final.parent)

    def __exit__(self, *exc: object) -> None:
        self.file.close()
        if not self.published:
            self.path.unlink(missing_ok=True)
