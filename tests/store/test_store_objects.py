"""The content-addressed object store: atomic publish, dedupe, verify, upkeep, errors."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import lsdb
from lsdb.errors import BadInput, NotFound, StoreError
from lsdb.store import TEMP_PREFIX, BlobInfo, ObjectStore


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / "store")


def test_put_bytes_publishes_a_read_only_object_under_its_digest(store: ObjectStore) -> None:
    data = b"hello objects" * 1000
    info = store.put_bytes(data)
    digest = sha(data)
    assert info == BlobInfo(digest=digest, size=len(data), relpath=f"objects/sha256/{digest[:2]}/{digest[2:]}")
    path = store.root / info.relpath
    assert path == store.path(digest) and path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert store.exists(digest) and store.read_bytes(digest) == data and store.info(digest) == info
    with store.open(digest) as handle:
        assert handle.read(5) == b"hello"
    assert store.temp_files() == [] and list(store.iter_digests()) == [digest]


def test_put_with_the_callers_digest_and_from_chunks(store: ObjectStore) -> None:
    parts = [b"abc", bytearray(b"def" * 500_000), memoryview(b"ghi")]
    whole = b"".join(bytes(p) for p in parts)
    assert store.put_chunks(parts, sha(whole)) == store.put_bytes(whole) == store.put_chunks(parts)
    assert store.read_bytes(sha(whole)) == whole


def test_empty_object(store: ObjectStore) -> None:
    info = store.put_bytes(b"")
    assert info.size == 0 and store.read_bytes(info.digest) == b"" and store.verify(info.digest) == "ok"


def test_existing_object_is_not_rewritten(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(10_000)
    first = store.put_bytes(data)
    before = store.path(first.digest).stat()

    def no_temp_files(*args: object, **kwargs: object) -> None:
        raise AssertionError("a deduplicated put must not write")

    monkeypatch.setattr("lsdb.store.objects.tempfile.mkstemp", no_temp_files)
    assert store.put_bytes(data, first.digest) == first
    assert store.put_bytes(data) == first
    after = store.path(first.digest).stat()
    assert after.st_ino == before.st_ino  # not rewritten; its age is refreshed (gc sees it as reused)
    assert after.st_mtime_ns >= before.st_mtime_ns


def test_a_reused_object_gets_younger(store: ObjectStore) -> None:
    info = store.put_bytes(b"reused")
    path = store.path(info.digest)
    os.utime(path, (1_000_000, 1_000_000))
    store.put_bytes(b"reused")
    assert path.stat().st_mtime > 1_000_000


def test_a_corrupt_object_of_the_right_size_is_repaired_by_a_put(store: ObjectStore) -> None:
    data = os.urandom(5000)
    info = store.put_bytes(data)
    path = store.path(info.digest)
    path.chmod(0o644)
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0x01
    path.write_bytes(bytes(raw))
    assert store.verify(info.digest) == "corrupt"
    store.put_bytes(data)  # presence means verified content
    assert store.verify(info.digest) == "ok"


def test_read_verified_refuses_a_flipped_bit(store: ObjectStore) -> None:
    from lsdb.store import CorruptObject

    info = store.put_bytes(b"y" * 1000)
    assert store.read_verified(info.digest) == b"y" * 1000
    path = store.path(info.digest)
    path.chmod(0o644)
    path.write_bytes(b"y" * 999 + b"z")
    with pytest.raises(CorruptObject, match="lsdb doctor"):
        store.read_verified(info.digest)


def test_quarantine_and_restore(store: ObjectStore) -> None:
    info = store.put_bytes(b"aside")
    moved = store.quarantine(info.digest)
    assert moved is not None and not store.exists(info.digest)
    assert list(store.iter_digests()) == [] and store.quarantined() == [(info.digest, moved)]
    store.restore(info.digest, moved)
    assert store.verify(info.digest) == "ok" and store.quarantined() == []


def test_an_object_gc_holds_aside_is_still_read_and_verified_but_not_reused_by_writers(store: ObjectStore) -> None:
    """A reader of a row committed while gc holds its object aside reads it there (gc then puts it back);
    a writer still finds it absent and writes it again, so the published copy never depends on gc."""
    data = b"held aside" * 5000
    info = store.put_bytes(data)
    moved = store.quarantine(info.digest)
    assert moved is not None and not store.exists(info.digest)
    assert store.read_verified(info.digest) == data and store.verify(info.digest) == "ok"
    with store.open(info.digest) as handle:
        store.discard(moved)  # gc deletes it while the file is open: the reader keeps its bytes
        assert handle.read() == data
    with pytest.raises(NotFound, match=info.digest):
        store.read_bytes(info.digest)
    assert store.verify(info.digest) == "missing"
    moved = store.quarantine(store.put_bytes(data).digest)
    assert moved is not None
    assert store.put_bytes(data) == info and store.exists(info.digest)  # written again, not taken from aside
    store.restore(info.digest, moved)
    assert store.quarantined() == [] and store.read_bytes(info.digest) == data


def test_a_damaged_object_of_the_wrong_size_is_replaced(store: ObjectStore) -> None:
    data = b"x" * 4096
    info = store.put_bytes(data)
    path = store.path(info.digest)
    path.chmod(0o644)
    path.write_bytes(data[:100])
    assert store.verify(info.digest) == "corrupt"
    store.put_bytes(data, info.digest)
    assert store.verify(info.digest) == "ok" and stat.S_IMODE(path.stat().st_mode) == 0o444


def test_digest_mismatch_raises_and_leaves_nothing(store: ObjectStore, tmp_path: Path) -> None:
    wrong = sha(b"something else")
    with pytest.raises(StoreError, match=f"expected {wrong}"):
        store.put_bytes(b"actual bytes", wrong)
    source = tmp_path / "a.h5"
    source.write_bytes(b"artifact")
    with pytest.raises(StoreError, match="digest mismatch storing .*a.h5"):
        store.put_file(source, wrong)
    assert store.temp_files() == [] and list(store.iter_digests()) == []
    assert not store.exists(wrong)


def test_put_file_streams_with_or_without_a_digest(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    info = store.put_file(source)
    assert info == BlobInfo(sha(data), len(data), store.relpath(sha(data)))
    assert store.put_file(source, info.digest) == info
    assert store.read_bytes(info.digest) == data and store.verify(info.digest) == "ok"
    assert stat.S_IMODE(store.path(info.digest).stat().st_mode) == 0o444
    store.put_file(source)  # already there: the temporary copy is dropped
    assert store.temp_files() == []


def test_verify_detects_missing_and_flipped_bytes(store: ObjectStore) -> None:
    info = store.put_bytes(b"0123456789" * 100)
    assert store.verify(info.digest) == "ok"
    path = store.path(info.digest)
    path.chmod(0o644)
    raw = bytearray(path.read_bytes())
    raw[500] ^= 0x01
    path.write_bytes(raw)
    assert store.verify(info.digest) == "corrupt"
    assert store.verify(sha(b"never stored")) == "missing"


def test_missing_objects_are_not_found_naming_the_digest(store: ObjectStore) -> None:
    digest = sha(b"nothing")
    for call in (store.read_bytes, store.open, store.info):
        with pytest.raises(NotFound, match=digest):
            call(digest)


@pytest.mark.parametrize("bad", ["../../etc/passwd", "abc", "g" * 64, ""])
def test_malformed_digests_are_bad_input(store: ObjectStore, bad: str) -> None:
    with pytest.raises(BadInput, match="not a sha256 digest"):
        store.path(bad)


def test_upper_case_digests_are_normalized(store: ObjectStore) -> None:
    info = store.put_bytes(b"case", sha(b"case").upper())
    assert info.digest == sha(b"case") and store.exists(info.digest.upper())


def test_iter_digests_and_temp_files_tell_objects_from_leftovers(store: ObjectStore) -> None:
    digests = sorted(store.put_bytes(bytes([i]) * 10).digest for i in range(5))
    shard = store.path(digests[0]).parent
    leftover = shard / f"{TEMP_PREFIX}crashed"
    leftover.write_bytes(b"partial")
    top_leftover = store.objects / f"{TEMP_PREFIX}other"
    top_leftover.write_bytes(b"partial")
    (shard / "README").write_text("not an object")
    assert list(store.iter_digests()) == digests
    assert store.temp_files() == sorted([leftover, top_leftover])
    old = time.time() - 7200
    os.utime(leftover, (old, old))
    assert store.temp_files(min_age_s=3600) == [leftover]


def test_remove_deletes_read_only_objects(store: ObjectStore) -> None:
    info = store.put_bytes(b"bye")
    assert store.remove(info.digest) is True
    assert not store.exists(info.digest) and store.remove(info.digest) is False


def test_a_store_that_cannot_be_created_says_how_to_fix_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file where the store root should be")
    store = ObjectStore(blocker)  # lazy: nothing happens yet
    assert not store.exists(sha(b"x")) and list(store.iter_digests()) == [] and store.temp_files() == []
    with pytest.raises(StoreError, match=rf"store {blocker} is not writable: .*; pass --store or set LSDB_STORE"):
        store.put_bytes(b"x")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_store_root_is_a_store_error(tmp_path: Path) -> None:
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o555)
    with pytest.raises(StoreError, match="is not writable"):
        ObjectStore(root).put_bytes(b"x")


def test_a_failed_publish_leaves_no_temporary_file(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("lsdb.store.objects.os.replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        store.put_bytes(b"data")
    assert store.temp_files() == [] and list(store.iter_digests()) == []


def test_a_crash_mid_write_leaves_only_an_orphan_temp_file(store: ObjectStore) -> None:
    """Kill a writer just before its rename: no object appears under its final name."""
    script = textwrap.dedent(
        f"""
        import os, stat
        from lsdb.store.objects import ObjectStore
        real_fsync = os.fsync
        def dying_fsync(fd):  # the process dies after writing the file, before publishing it
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os._exit(9)
            real_fsync(fd)
        os.fsync = dying_fsync
        ObjectStore({str(store.root)!r}).put_bytes(b"z" * 100_000)
        """
    )
    repo = Path(lsdb.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert done.returncode == 9, done.stderr.decode()
    digest = sha(b"z" * 100_000)
    assert not store.exists(digest) and list(store.iter_digests()) == []
    (orphan,) = store.temp_files()
    assert orphan.parent == store.path(digest).parent and orphan.name.startswith(TEMP_PREFIX)
    assert store.put_bytes(b"z" * 100_000).digest == digest  # a retry publishes normally


def test_a_write_survives_gc_taking_its_temporary_file_before_the_lock(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gc may list a writer's temporary file between its creation and the writer's lock (found by the
    gc race test: a coarse file clock can date a new file before gc's cutoff); the write goes on in
    a new file and publishes."""
    import tempfile

    real_mkstemp = tempfile.mkstemp
    taken: list[int | None] = []

    def mkstemp_then_gc(*args: object, **kwargs: object) -> tuple[int, str]:
        fd, name = real_mkstemp(*args, **kwargs)  # type: ignore[call-overload]
        if not taken:  # the first file: gc removes it before the writer locks it
            taken.append(store.remove_temp(Path(name), cutoff=time.time() + 60))
        return fd, name

    store.check_writable()  # its probe file first
    monkeypatch.setattr("lsdb.store.objects.tempfile.mkstemp", mkstemp_then_gc)
    info = store.put_bytes(b"w" * 70_000)
    assert taken == [0]  # gc did remove the (empty) file
    assert store.read_bytes(info.digest) == b"w" * 70_000 and store.temp_files() == []


def test_gc_never_removes_a_temporary_file_a_writer_holds(store: ObjectStore) -> None:
    from lsdb.store.objects import _TempFile

    store.check_writable()
    with _TempFile(store.objects) as temp:
        assert store.remove_temp(temp.path, cutoff=time.time() + 60) is None and temp.path.exists()
    assert not temp.path.exists()  # an unpublished temporary file goes when its writer ends
