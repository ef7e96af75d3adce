"""The gallery index: a SQLite cache of what the gallery view needs. The files stay the truth.

- WAL mode and ``BEGIN IMMEDIATE`` writes with a busy timeout, so two app instances can write at once.
- One connection per thread (sqlite3 connections must not cross threads).
- ``reconcile`` brings the index in line with the folders (files added, changed or removed behind
  our back); ``rebuild`` starts from nothing but the files.
- Favourites live in the index and in a small JSON sidecar beside it (``gallery-favourites.json``),
  rewritten from the index inside the same write transaction. A rebuild, or a lost or corrupt index
  file, therefore keeps them; we never rewrite users' images just to remember a star.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from ldm_studio.gallery.entries import GalleryEntry, GalleryQuery, ReconcileReport, fts_query, row_to_entry
from ldm_studio.gallery.metadata import ImageMetadata
from ldm_studio.gallery.scanning import IMAGE_SUFFIXES, read_row, row_values, scan_images

__all__ = [
    "IMAGE_SUFFIXES",
    "GalleryEntry",
    "GalleryIndex",
    "GalleryQuery",
    "ReconcileReport",
    "fts_query",
    "read_row",
    "scan_images",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
WRITE_BATCH = 500
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    mtime_ns INTEGER NOT NULL,
    file_size INTEGER NOT NULL,
    created REAL NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    seed INTEGER,
    width INTEGER,
    height INTEGER,
    prompt TEXT NOT NULL DEFAULT '',
    negative_prompt TEXT NOT NULL DEFAULT '',
    source TEXT,
    favourite INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS images_by_created ON images(created, id);
CREATE INDEX IF NOT EXISTS images_by_model ON images(model, created, id);
CREATE INDEX IF NOT EXISTS images_favourites ON images(created, id) WHERE favourite = 1;
-- Full text over the prompt only: a search for "blurry" should not find every negative prompt.
-- prefix='2 3' keeps prefix queries (results while typing) fast on short prefixes.
CREATE VIRTUAL TABLE IF NOT EXISTS images_fts USING fts5(
    prompt, content='images', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2', prefix='2 3'
);
CREATE TRIGGER IF NOT EXISTS images_fts_insert AFTER INSERT ON images BEGIN
    INSERT INTO images_fts(rowid, prompt) VALUES (new.id, new.prompt);
END;
CREATE TRIGGER IF NOT EXISTS images_fts_delete AFTER DELETE ON images BEGIN
    INSERT INTO images_fts(images_fts, rowid, prompt) VALUES ('delete', old.id, old.prompt);
END;
CREATE TRIGGER IF NOT EXISTS images_fts_update AFTER UPDATE OF prompt ON images BEGIN
    INSERT INTO images_fts(images_fts, rowid, prompt) VALUES ('delete', old.id, old.prompt);
    INSERT INTO images_fts(rowid, prompt) VALUES (new.id, new.prompt);
END;
CREATE TABLE IF NOT EXISTS roots (path TEXT PRIMARY KEY);
-- Files named .png that are not readable images: remembered so start-up does not retry them.
CREATE TABLE IF NOT EXISTS unreadable (path TEXT PRIMARY KEY, mtime_ns INTEGER, file_size INTEGER);
"""

_COLUMNS = "id, path, created, model, seed, width, height, prompt, negative_prompt, source, favourite"


class GalleryIndex:
    def __init__(self, db_path: str | Path | None = None) -> None:
        if db_path is None:
            from ldm_studio.paths import user_dirs

            db_path = user_dirs().gallery_index
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.favourites_path = self.db_path.with_name("gallery-favourites.json")
        self._local = threading.local()
        self._all_connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            self._create_schema()
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.OperationalError):
                raise  # locked, disk I/O, read-only: not something a fresh file would fix
            self._set_aside_corrupt_file(error)
            self._create_schema()

    def _create_schema(self) -> None:
        # The script carries its own transaction: executescript and an outer BEGIN do not mix.
        self.db.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")

    def _set_aside_corrupt_file(self, error: Exception) -> None:
        """The index is only a cache: keep the broken file for inspection and start a fresh one."""
        self.close()
        aside = self.db_path.with_name(f"{self.db_path.name}.corrupt-{int(time.time())}")
        log.warning(
            "gallery index %s is unusable (%s); moved aside to %s and rebuilding", self.db_path, error, aside
        )
        os.replace(self.db_path, aside)
        for suffix in ("-wal", "-shm"):
            self.db_path.with_name(self.db_path.name + suffix).unlink(missing_ok=True)

    # -- connections ---------------------------------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            try:
                connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                self._set_wal(connection)
                # WAL + NORMAL: a crash may lose the last commits, never corrupt; the files are the truth.
                connection.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error:
                connection.close()
                raise
            self._local.connection = connection
            with self._lock:
                self._all_connections.append(connection)
        return connection

    @staticmethod
    def _set_wal(connection: sqlite3.Connection) -> None:
        # Switching to WAL needs a moment alone with the file; another process opening it at the
        # same instant makes that fail with "locked" rather than wait, so retry briefly.
        for attempt in range(200):
            try:
                connection.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError:
                if attempt == 199:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        """Close every thread's connection (call from the owner when the app quits)."""
        with self._lock:
            for connection in self._all_connections:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
            self._all_connections.clear()
        self._local = threading.local()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the write lock up front so it never fails half-way on busy."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- folders -------------------------------------------------------------------------------

    def add_root(self, folder: str | Path) -> Path:
        """Remember a folder whose images belong in the gallery (the gallery folder, imports)."""
        folder = Path(folder).resolve()
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO roots(path) VALUES (?)", (str(folder),))
        return folder

    def remove_root(self, folder: str | Path) -> None:
        with self._write() as db:
            db.execute("DELETE FROM roots WHERE path = ?", (str(Path(folder).resolve()),))

    def roots(self) -> list[Path]:
        return [Path(row[0]) for row in self.db.execute("SELECT path FROM roots ORDER BY path")]

    # -- writing -------------------------------------------------------------------------------

    def add(self, path: str | Path) -> GalleryEntry | None:
        """Index (or re-index) one file now, e.g. right after saving it. None if it is not an image."""
        path = str(Path(path).resolve())
        try:
            stat = os.stat(path)
        except OSError:
            return None
        row = read_row(path, stat.st_mtime_ns, stat.st_size)
        if row is None:
            return None
        self._upsert([row])
        return self.entry_by_path(path)

    def add_known(self, path: str | Path, metadata: ImageMetadata) -> GalleryEntry | None:
        """Index a file whose metadata the caller already holds (it just wrote it): no re-read."""
        path = str(Path(path).resolve())
        try:
            stat = os.stat(path)
        except OSError:
            return None
        self._upsert([row_values(path, stat.st_mtime_ns, stat.st_size, metadata)])
        return self.entry_by_path(path)

    def _upsert(self, rows: Sequence[tuple]) -> None:
        starred = self._sidecar_favourites()
        for start in range(0, len(rows), WRITE_BATCH):
            with self._write() as db:
                db.executemany(
                    "INSERT INTO images(path, mtime_ns, file_size, created, model, seed, width, height,"
                    " prompt, negative_prompt, source, favourite) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
                    " ON CONFLICT(path) DO UPDATE SET mtime_ns=excluded.mtime_ns,"
                    " file_size=excluded.file_size, created=excluded.created, model=excluded.model,"
                    " seed=excluded.seed, width=excluded.width, height=excluded.height,"
                    " prompt=excluded.prompt, negative_prompt=excluded.negative_prompt,"
                    " source=excluded.source",
                    [(*row, int(row[0] in starred)) for row in rows[start : start + WRITE_BATCH]],
                )

    def remove_paths(self, paths: Iterable[str | Path]) -> int:
        """Forget these files (after they were deleted or moved away)."""
        keys = [(str(Path(p).resolve()),) for p in paths]
        with self._write() as db:
            # rowcount of executemany sums the rows each statement deleted (triggers not counted).
            return db.executemany("DELETE FROM images WHERE path = ?", keys).rowcount

    def set_favourite(self, ids: Iterable[int], favourite: bool) -> None:
        ids = list(ids)
        with self._write() as db:
            db.executemany("UPDATE images SET favourite = ? WHERE id = ?", [(int(favourite), i) for i in ids])
            paths = [row[0] for row in db.execute("SELECT path FROM images WHERE favourite = 1")]
            self._write_sidecar(paths)

    def _write_sidecar(self, paths: list[str]) -> None:
        temp = self.favourites_path.with_name(f".{self.favourites_path.name}.{os.getpid()}.tmp")
        temp.write_text(json.dumps({"favourites": sorted(paths)}, ensure_ascii=False), encoding="utf-8")
        os.replace(temp, self.favourites_path)

    def _sidecar_favourites(self) -> set[str]:
        try:
            data = json.loads(self.favourites_path.read_text(encoding="utf-8"))
            return {str(p) for p in data.get("favourites", [])}
        except (OSError, ValueError, AttributeError):
            return set()

    # -- keeping in line with the files ----------------------------------------------------------

    def reconcile(
        self,
        folders: Iterable[str | Path] | None = None,
        *,
        remove_missing: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> ReconcileReport:
        """Index files added or changed in the roots (or ``folders``); drop rows whose file is gone.

        Metadata is read outside any transaction, so other instances keep writing meanwhile.
        """
        roots = [Path(f).resolve() for f in folders] if folders is not None else self.roots()
        on_disk: dict[str, tuple[int, int]] = {}
        for root in roots:
            for path, mtime_ns, size in scan_images(root):
                on_disk[path] = (mtime_ns, size)
        known = {
            row[0]: (row[1], row[2])
            for row in self.db.execute("SELECT path, mtime_ns, file_size FROM images")
        }
        if folders is not None:  # only judge the rows under the folders we scanned
            prefixes = tuple(str(root) + os.sep for root in roots)
            known = {path: state for path, state in known.items() if path.startswith(prefixes)}
        skipped = {
            row[0]: (row[1], row[2])
            for row in self.db.execute("SELECT path, mtime_ns, file_size FROM unreadable")
        }
        changed = [
            path for path, state in on_disk.items() if known.get(path) != state and skipped.get(path) != state
        ]
        missing = [path for path in known if path not in on_disk] if remove_missing else []

        rows: list[tuple] = []
        unreadable: list[tuple[str, int, int]] = []
        for done, path in enumerate(changed, 1):
            row = read_row(path, *on_disk[path])
            if row is None:
                unreadable.append((path, *on_disk[path]))
            else:
                rows.append(row)
            if progress is not None and (done % 200 == 0 or done == len(changed)):
                progress(done, len(changed))
        self._upsert(rows)
        removed = self.remove_paths(missing) if missing else 0
        with self._write() as db:
            db.executemany("INSERT OR REPLACE INTO unreadable VALUES (?, ?, ?)", unreadable)
            db.executemany("DELETE FROM unreadable WHERE path = ?", [(row[0],) for row in rows])
            gone = [(path,) for path in skipped if path not in on_disk]
            if folders is None and gone:
                db.executemany("DELETE FROM unreadable WHERE path = ?", gone)
        added = sum(1 for row in rows if row[0] not in known)
        return ReconcileReport(
            added=added, updated=len(rows) - added, removed=removed, unreadable=len(unreadable)
        )

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> ReconcileReport:
        """Forget everything and index the roots again from the files alone (favourites kept)."""
        with self._write() as db:
            db.execute("DELETE FROM images")
            db.execute("DELETE FROM unreadable")
            db.execute("INSERT INTO images_fts(images_fts) VALUES ('rebuild')")
        return self.reconcile(progress=progress)

    def import_folder(self, folder: str | Path, progress: Callable[[int, int], None] | None = None):
        """Add a folder of PNGs from anywhere (other tools' output too) and index it."""
        root = self.add_root(folder)
        return self.reconcile([root], progress=progress)

    # -- reading -------------------------------------------------------------------------------

    def _where(self, query: GalleryQuery) -> tuple[str, list]:
        clauses, params = [], []
        match = fts_query(query.text)
        if match is not None:
            clauses.append("images.id IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?)")
            params.append(match)
        if query.model is not None:
            clauses.append("images.model = ?")
            params.append(query.model)
        if query.date_from is not None:
            clauses.append("images.created >= ?")
            params.append(query.date_from)
        if query.date_to is not None:
            clauses.append("images.created < ?")
            params.append(query.date_to)
        if query.favourites_only:
            clauses.append("images.favourite = 1")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def search_ids(self, query: GalleryQuery = GalleryQuery()) -> list[int]:  # noqa: B008 (frozen)
        """Ids of every matching image in display order (cheap: the view fetches rows lazily)."""
        where, params = self._where(query)
        order = "DESC" if query.newest_first else "ASC"
        sql = f"SELECT id FROM images{where} ORDER BY created {order}, id {order}"
        return [row[0] for row in self.db.execute(sql, params)]

    def search_ids_within(self, ids: Sequence[int], query: GalleryQuery) -> list[int]:
        """Those of ``ids`` that match ``query`` (is a new image visible in the current view?)."""
        if not ids:
            return []
        where, params = self._where(query)
        clause = f"images.id IN ({','.join('?' * len(ids))})"
        where = f"{where} AND {clause}" if where else f" WHERE {clause}"
        return [row[0] for row in self.db.execute(f"SELECT id FROM images{where}", [*params, *ids])]

    def search(self, query: GalleryQuery = GalleryQuery(), limit: int = 100) -> list[GalleryEntry]:  # noqa: B008
        where, params = self._where(query)
        order = "DESC" if query.newest_first else "ASC"
        sql = f"SELECT {_COLUMNS} FROM images{where} ORDER BY created {order}, id {order} LIMIT ?"
        return [row_to_entry(row) for row in self.db.execute(sql, [*params, limit])]

    def entries(self, ids: Sequence[int]) -> dict[int, GalleryEntry]:
        """Rows for these ids (those that still exist)."""
        found: dict[int, GalleryEntry] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(f"SELECT {_COLUMNS} FROM images WHERE id IN ({marks})", chunk):
                found[row[0]] = row_to_entry(row)
        return found

    def entry_by_path(self, path: str | Path) -> GalleryEntry | None:
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM images WHERE path = ?", (str(Path(path).resolve()),)
        ).fetchone()
        return row_to_entry(row) if row else None

    def count(self) -> int:
        return self.db.execute("SELECT count(*) FROM images").fetchone()[0]

    def models(self) -> list[str]:
        """Model names present in the gallery, for the filter."""
        rows = self.db.execute("SELECT DISTINCT model FROM images WHERE model != '' ORDER BY model")
        return [row[0] for row in rows]

    def paths(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT path FROM images")}
