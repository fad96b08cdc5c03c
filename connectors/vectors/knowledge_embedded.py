"""Embedded knowledge index: per knowledge base, an SQLite file (ids, float32 vectors, term
counts), a BM25 matrix and, once the base is large, a usearch HNSW graph, all under
``BACKLINE_DATA_DIR/knowledge``.

Chosen from measurement (bench/README.md, "Knowledge"; 100k MiniLM-embedded chunks on two
cores): an exact numpy scan is 0.05 ms at 1k chunks and 3.6 ms at 100k (and holds every vector
in each reader's RAM), while usearch HNSW (f16, ef 512) answers in about 0.7 ms from a
memory-mapped graph, and re-scoring its 40 candidates exactly from the float32 vectors gives
recall@5 of 0.98 on a corpus full of near-ties; so exact below 10k chunks, HNSW + exact rerank
above. usearch was picked over faiss because it deletes and replaces single vectors (faiss HNSW
cannot remove ids) and memory-maps a saved graph for readers. BM25 is a Snowball-stemmed sparse
chunk-by-term matrix of precomputed weights (scipy): 0.8 ms at 100k chunks, where SQLite FTS5's
``bm25()`` took 20 ms (p95 48; it scores every match before ``LIMIT``) and a dict-based
pure-Python BM25 17 ms.

Layout of one partition (``<root>/<tenant>/<partition>/``): ``index.sqlite3`` holds
``entries(key, chunk_id, vector, terms)`` and ``meta(version, hnsw_version, bm25_version,
stemmer)``;
``bm25.npz`` and ``hnsw.usearch`` are derived from the entries on every write (a missing matrix
is rebuilt on the next read, a missing graph on the next write). Writers (the worker's ingest,
the API's deletes) hold a per-partition file lock; readers (the API) reload a partition when its
versions move, so they see a refresh without a restart. It is single-machine storage: a
scale-out deployment uses the Weaviate adapter. Never stores anything but ids, vectors and term
counts.

The stemmer is PyStemmer's Snowball English (C, no imports beyond itself): nltk's Porter stemmer
ran nltk's package ``__init__``, which imports scipy.stats, scikit-learn and pandas, about 170 MB
and seconds of import in every process that searches (bench/README.md, "Stack memory"). The
stored terms are stems, so ``meta.stemmer`` names the stemmer that made them (partitions from
before the column read ``nltk-porter``); ``keyword_terms_stale`` tells the worker which
partitions to re-stem from the chunk texts at start (``rebuild_keyword_terms``), because the
index keeps no text to re-stem from.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import Stemmer

from core.knowledge.ports import IndexEntry, IndexHit
from core.knowledge.text import canonical_numbers, content_terms
from core.ports import Vector

if TYPE_CHECKING:
    from usearch.index import Index

ANN_MIN_ENTRIES = 10_000
ANN_DTYPE = "f16"
ANN_CONNECTIVITY = 16
ANN_EXPANSION_ADD = 128
ANN_EXPANSION_SEARCH = 512
RERANK_FACTOR = 4
RERANK_MIN = 40
BM25_K1 = 1.2
BM25_B = 0.75
_DB = "index.sqlite3"
_HNSW = "hnsw.usearch"
_BM25 = "bm25.npz"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE, vector BLOB NOT NULL,
    terms TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL, hnsw_version INTEGER NOT NULL, bm25_version INTEGER NOT NULL);
"""
# Recorded with the stored terms; change it whenever the stems a word gets would change.
STEMMER = "snowball-english-3"
_LEGACY_STEMMER = "nltk-porter"
_STEMMER_ALGORITHM = "english"
_stemmers = threading.local()


def _usearch() -> type[Index]:
    """usearch, imported when a partition first needs its graph (10k chunks and more).

    Loading usearch's extension before onnxruntime's makes the later ``import onnxruntime``
    crash the process (segmentation fault; usearch 2.26.6, onnxruntime 1.32.0: ``python -c
    "import usearch.index; import onnxruntime"``), and the embedder imports onnxruntime lazily,
    so onnxruntime, where installed, is loaded first."""
    with contextlib.suppress(ImportError):
        import onnxruntime  # noqa: F401
    from usearch.index import Index

    return Index


@functools.lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    # PyStemmer objects are not thread-safe: one per thread (API and worker pools).
    stemmer = _stemmers.__dict__.get("s")
    if stemmer is None:
        stemmer = _stemmers.s = Stemmer.Stemmer(_STEMMER_ALGORITHM)
    return str(stemmer.stemWord(word))


def keyword_terms(text: str) -> list[str]:
    """Stemmed content words, the same for indexed text and queries (numbers unformatted)."""
    return [_stem(t) for t in content_terms(canonical_numbers(text))]


def chunk_key(chunk_id: str) -> int:
    """A stable 63-bit integer key for a chunk id (usearch keys and SQLite rowids)."""
    return int.from_bytes(hashlib.blake2b(chunk_id.encode(), digest_size=8).digest()) >> 1


def _safe(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name)[:40].strip("-") or "x"
    return f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


@dataclass
class _Bm25:
    """Okapi BM25 as a chunk-by-term sparse matrix of precomputed weights: a query sums a few
    columns and takes the top of one vector."""

    version: int
    keys: npt.NDArray[np.int64]
    vocab: dict[str, int]
    weights: sp.csc_matrix

    @classmethod
    def build(cls, version: int, rows: Iterable[tuple[int, str]]) -> _Bm25:
        keys: list[int] = []
        vocab: dict[str, int] = {}
        doc_ids: list[int] = []
        term_ids: list[int] = []
        tfs: list[float] = []
        lengths: list[float] = []
        for doc, (key, terms_json) in enumerate(rows):
            keys.append(int(key))
            counts: dict[str, int] = json.loads(terms_json)
            lengths.append(float(sum(counts.values())))
            for term, tf in counts.items():
                doc_ids.append(doc)
                term_ids.append(vocab.setdefault(term, len(vocab)))
                tfs.append(float(tf))
        n = len(keys)
        tf_matrix = sp.csc_matrix(
            (np.asarray(tfs, dtype=np.float32), (doc_ids, term_ids)),
            shape=(n, len(vocab)),
            dtype=np.float32,
        )
        if n:
            doc_len = np.asarray(lengths, dtype=np.float32)
            norm = BM25_K1 * (1 - BM25_B + BM25_B * doc_len / max(float(doc_len.mean()), 1.0))
            df = np.diff(tf_matrix.indptr).astype(np.float32)
            idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
            tf = tf_matrix.data
            tf_matrix.data = (
                tf * (BM25_K1 + 1) / (tf + norm[tf_matrix.indices]) * np.repeat(idf, df.astype(int))
            ).astype(np.float32)
        return cls(version, np.asarray(keys, dtype=np.int64), vocab, tf_matrix)

    def search(self, terms: list[str], k: int) -> list[tuple[int, float]]:
        columns = [self.vocab[t] for t in terms if t in self.vocab]
        if not columns or self.weights.shape[0] == 0:
            return []
        scores = np.asarray(self.weights[:, columns].sum(axis=1)).ravel()
        hits = np.flatnonzero(scores)
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k)[:k]]
        hits = hits[np.argsort(-scores[hits], kind="stable")]
        return [(int(self.keys[i]), float(scores[i])) for i in hits]

    def save(self, file: Path) -> None:
        w = self.weights
        with open(file, "wb") as handle:
            np.savez(
                handle,
                version=np.asarray([self.version]),
                keys=self.keys,
                data=w.data,
                indices=w.indices,
                indptr=w.indptr,
                shape=np.asarray(w.shape),
                vocab=np.frombuffer(json.dumps(self.vocab).encode(), dtype=np.uint8),
            )

    @classmethod
    def load(cls, file: Path) -> _Bm25:
        with np.load(file) as z:
            shape = tuple(int(x) for x in z["shape"])
            weights = sp.csc_matrix((z["data"], z["indices"], z["indptr"]), shape=shape)
            vocab: dict[str, int] = json.loads(bytes(z["vocab"]).decode())
            return cls(int(z["version"][0]), np.asarray(z["keys"]), vocab, weights)


@dataclass
class _Dense:
    """A reader's view of one partition's vectors at one version."""

    version: int
    keys: npt.NDArray[np.int64]
    ids: list[str]
    matrix: npt.NDArray[np.float32] | None  # exact mode
    hnsw: Index | None  # ANN mode


class EmbeddedKnowledgeIndex:
    def __init__(
        self,
        root: Path,
        *,
        ann_min_entries: int = ANN_MIN_ENTRIES,
        ann_dtype: str = ANN_DTYPE,
        expansion_search: int = ANN_EXPANSION_SEARCH,
    ) -> None:
        self._root = Path(root)
        self._ann_min = ann_min_entries
        self._ann_dtype = ann_dtype
        self._expansion_search = expansion_search
        self._local = threading.local()
        self._locks: dict[Path, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._dense: dict[Path, _Dense] = {}
        self._bm25: dict[Path, _Bm25] = {}

    # -- files, connections, locks ------------------------------------------------------------
    def _dir(self, tenant: str, partition: str) -> Path:
        return self._root / _safe(tenant) / _safe(partition)

    def _conn(self, path: Path, create: bool) -> sqlite3.Connection | None:
        conns: dict[Path, sqlite3.Connection] = self._local.__dict__.setdefault("conns", {})
        conn = conns.get(path)
        if conn is not None and (path / _DB).exists():
            return conn
        if conn is not None:
            conn.close()
            conns.pop(path, None)
        if not create and not (path / _DB).exists():
            return None
        path.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path / _DB, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        self._ensure_stemmer_column(conn)
        conns[path] = conn
        return conn

    @staticmethod
    def _ensure_stemmer_column(conn: sqlite3.Connection) -> None:
        """A partition made before stems were labelled keeps its meta row: label it legacy.
        A new partition's row is inserted here, so it carries the current stemmer."""
        columns = {str(r[1]) for r in conn.execute("PRAGMA table_info(meta)")}
        if "stemmer" not in columns:
            try:
                conn.execute(
                    f"ALTER TABLE meta ADD COLUMN stemmer TEXT NOT NULL DEFAULT '{_LEGACY_STEMMER}'"
                )
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise
        conn.execute(
            "INSERT OR IGNORE INTO meta (id, version, hnsw_version, bm25_version, stemmer) "
            "VALUES (1, 0, -1, -1, ?)",
            (STEMMER,),
        )

    @contextlib.contextmanager
    def _write_lock(self, path: Path) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(path, threading.Lock())
        path.mkdir(parents=True, exist_ok=True)
        with lock, open(path / ".lock", "a+") as handle:
            # The thread lock orders this process's writers; flock orders the API and worker.
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _version(conn: sqlite3.Connection) -> tuple[int, int]:
        row = conn.execute("SELECT version, hnsw_version FROM meta WHERE id = 1").fetchone()
        return int(row[0]), int(row[1])

    @staticmethod
    def _bm25_version(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT bm25_version FROM meta WHERE id = 1").fetchone()[0])

    # -- writes --------------------------------------------------------------------------------
    def upsert(self, tenant: str, partition: str, entries: Sequence[IndexEntry]) -> None:
        if not entries:
            return
        path = self._dir(tenant, partition)
        with self._write_lock(path):
            conn = self._conn(path, create=True)
            assert conn is not None
            rows = [
                (
                    chunk_key(e.chunk_id),
                    e.chunk_id,
                    np.asarray(e.vector, dtype=np.float32).tobytes(),
                    json.dumps(Counter(keyword_terms(e.text)), separators=(",", ":")),
                )
                for e in entries
            ]
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT OR REPLACE INTO entries (key, chunk_id, vector, terms) "
                    "VALUES (?, ?, ?, ?)",
                    rows,
                )
                conn.execute("UPDATE meta SET version = version + 1 WHERE id = 1")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._sync_hnsw(path, conn, added=[r[0] for r in rows], removed=[])
            self._sync_bm25(path, conn)

    def delete(self, tenant: str, partition: str, chunk_ids: Sequence[str]) -> None:
        if not chunk_ids:
            return
        path = self._dir(tenant, partition)
        if not (path / _DB).exists():
            return
        with self._write_lock(path):
            conn = self._conn(path, create=True)
            assert conn is not None
            keys = [(chunk_key(c),) for c in chunk_ids]
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("DELETE FROM entries WHERE key = ?", keys)
                conn.execute("UPDATE meta SET version = version + 1 WHERE id = 1")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._sync_hnsw(path, conn, added=[], removed=[k for (k,) in keys])
            self._sync_bm25(path, conn)

    def drop_partition(self, tenant: str, partition: str) -> None:
        path = self._dir(tenant, partition)
        if not path.exists():
            return
        with self._write_lock(path):
            conn = self._local.__dict__.get("conns", {}).pop(path, None)
            if conn is not None:
                conn.close()
            for child in path.iterdir():
                if child.name != ".lock":
                    if child.is_dir():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        self._dense.pop(path, None)
        self._bm25.pop(path, None)

    def keyword_terms_stale(self, tenant: str, partition: str) -> bool:
        """Whether the partition's stored terms were stemmed by another stemmer than this one."""
        conn = self._conn(self._dir(tenant, partition), create=False)
        if conn is None:
            return False
        row = conn.execute("SELECT stemmer FROM meta WHERE id = 1").fetchone()
        return str(row[0]) != STEMMER

    def rebuild_keyword_terms(self, tenant: str, partition: str, texts: Mapping[str, str]) -> int:
        """Re-derive every entry's terms from ``texts`` (chunk id -> the text it was indexed
        with) and label the partition with the current stemmer; returns the entries re-stemmed.
        An entry with no text left gets no terms (dense search still finds it)."""
        path = self._dir(tenant, partition)
        if not (path / _DB).exists():
            return 0
        with self._write_lock(path):
            conn = self._conn(path, create=True)
            assert conn is not None
            rows = [
                (
                    json.dumps(
                        Counter(keyword_terms(texts.get(str(cid), ""))), separators=(",", ":")
                    ),
                    int(key),
                )
                for key, cid in conn.execute("SELECT key, chunk_id FROM entries").fetchall()
            ]
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("UPDATE entries SET terms = ? WHERE key = ?", rows)
                # A new version makes readers drop their cached matrix.
                conn.execute(
                    "UPDATE meta SET version = version + 1, stemmer = ? WHERE id = 1", (STEMMER,)
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._sync_hnsw(path, conn, added=[], removed=[])
            self._sync_bm25(path, conn)
        return len(rows)

    def _sync_bm25(self, path: Path, conn: sqlite3.Connection) -> None:
        """Rebuild the partition's BM25 matrix from the stored term counts (seconds at 100k
        chunks; writes are background work, reads stay sub-millisecond)."""
        version = self._version(conn)[0]
        bm25 = _Bm25.build(version, conn.execute("SELECT key, terms FROM entries ORDER BY key"))
        tmp = path / f"{_BM25}.tmp.npz"
        bm25.save(tmp)
        os.replace(tmp, path / _BM25)
        conn.execute("UPDATE meta SET bm25_version = ? WHERE id = 1", (version,))
        self._bm25[path] = bm25

    def _sync_hnsw(
        self, path: Path, conn: sqlite3.Connection, added: list[int], removed: list[int]
    ) -> None:
        """Keep the HNSW file in step with the entries once the partition is large enough."""
        version, hnsw_version = self._version(conn)
        count = int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])
        file = path / _HNSW
        if count < self._ann_min:
            if file.exists():
                file.unlink()
            conn.execute("UPDATE meta SET hnsw_version = -1 WHERE id = 1")
            return
        incremental = file.exists() and hnsw_version == version - 1
        if incremental:
            index = _usearch().restore(str(file), view=False)
            assert index is not None
            for key in {*added, *removed}:
                if index.contains(key):
                    index.remove(key)
            keys = np.asarray(added, dtype=np.uint64)
            if added:
                vectors = self._vectors(conn, added)
                index.add(keys, vectors)
        else:
            index = self._new_hnsw(conn)
        tmp = path / f"{_HNSW}.tmp"
        index.save(str(tmp))
        # Readers memory-map the file: replacing it keeps their old mapping valid.
        os.replace(tmp, file)
        conn.execute("UPDATE meta SET hnsw_version = ? WHERE id = 1", (version,))

    def _new_hnsw(self, conn: sqlite3.Connection) -> Index:
        index = _usearch()(
            ndim=self._ndim(conn),
            metric="ip",
            dtype=self._ann_dtype,
            connectivity=ANN_CONNECTIVITY,
            expansion_add=ANN_EXPANSION_ADD,
            expansion_search=self._expansion_search,
        )
        batch: list[tuple[int, bytes]] = []
        for row in conn.execute("SELECT key, vector FROM entries"):
            batch.append((int(row[0]), bytes(row[1])))
            if len(batch) >= 8192:
                self._add_batch(index, batch)
                batch.clear()
        if batch:
            self._add_batch(index, batch)
        return index

    @staticmethod
    def _add_batch(index: Index, batch: list[tuple[int, bytes]]) -> None:
        keys = np.asarray([k for k, _ in batch], dtype=np.uint64)
        vectors = np.frombuffer(b"".join(v for _, v in batch), dtype=np.float32)
        index.add(keys, vectors.reshape(len(batch), -1))

    @staticmethod
    def _ndim(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT vector FROM entries LIMIT 1").fetchone()
        return len(bytes(row[0])) // 4

    @staticmethod
    def _vectors(conn: sqlite3.Connection, keys: Sequence[int]) -> npt.NDArray[np.float32]:
        found: dict[int, bytes] = {}
        for start in range(0, len(keys), 500):
            part = list(keys[start : start + 500])
            marks = ",".join("?" * len(part))
            for key, blob in conn.execute(
                f"SELECT key, vector FROM entries WHERE key IN ({marks})", part
            ):
                found[int(key)] = bytes(blob)
        rows = [np.frombuffer(found[k], dtype=np.float32) for k in keys if k in found]
        return np.vstack(rows) if rows else np.zeros((0, 0), dtype=np.float32)

    # -- reads ---------------------------------------------------------------------------------
    def _load_dense(self, path: Path, conn: sqlite3.Connection) -> _Dense:
        version, hnsw_version = self._version(conn)
        file = path / _HNSW
        # While a writer rebuilds the graph, readers keep the previous one: exact re-scoring
        # from the entries drops deleted chunks, and new ones join when the graph is saved.
        ann = hnsw_version >= 0 and file.exists()
        stamp = hnsw_version if ann else version
        cached = self._dense.get(path)
        if cached is not None and cached.version == stamp and (cached.hnsw is not None) == ann:
            return cached
        if ann:
            view = _usearch().restore(str(file), view=True)
            if view is not None:
                # The saved graph forgets it (restore gives 64); set it per reader.
                view.expansion_search = self._expansion_search  # type: ignore[misc]
            dense = _Dense(stamp, np.zeros(0, dtype=np.int64), [], None, view)
        else:
            keys: list[int] = []
            ids: list[str] = []
            blobs: list[bytes] = []
            for key, chunk_id, blob in conn.execute("SELECT key, chunk_id, vector FROM entries"):
                keys.append(int(key))
                ids.append(str(chunk_id))
                blobs.append(bytes(blob))
            matrix = (
                np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)
                if blobs
                else None
            )
            dense = _Dense(stamp, np.asarray(keys, dtype=np.int64), ids, matrix, None)
        self._dense[path] = dense
        return dense

    def dense(self, tenant: str, partition: str, vector: Vector, k: int) -> list[IndexHit]:
        path = self._dir(tenant, partition)
        conn = self._conn(path, create=False)
        if conn is None:
            return []
        view = self._load_dense(path, conn)
        query = np.asarray(vector, dtype=np.float32)
        if view.hnsw is not None:
            want = max(k * RERANK_FACTOR, RERANK_MIN)
            matches = view.hnsw.search(query, want)
            candidates = [int(key) for key in matches.keys]
            return self._rerank(conn, candidates, query, k)
        if view.matrix is None:
            return []
        sims = view.matrix @ query
        top = np.argsort(-sims)[:k] if len(sims) <= k else np.argpartition(-sims, k)[:k]
        top = top[np.argsort(-sims[top])]
        return [IndexHit(view.ids[i], float(sims[i])) for i in top]

    @staticmethod
    def _rerank(
        conn: sqlite3.Connection, keys: list[int], query: npt.NDArray[np.float32], k: int
    ) -> list[IndexHit]:
        """Exact cosine of the ANN candidates from the stored float32 vectors."""
        if not keys:
            return []
        marks = ",".join("?" * len(keys))
        rows = conn.execute(
            f"SELECT chunk_id, vector FROM entries WHERE key IN ({marks})", keys
        ).fetchall()
        if not rows:
            return []
        matrix = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype=np.float32)
        sims = matrix.reshape(len(rows), -1) @ query
        order = np.argsort(-sims)[:k]
        return [IndexHit(str(rows[i][0]), float(sims[i])) for i in order]

    def _load_bm25(self, path: Path, conn: sqlite3.Connection) -> _Bm25:
        version = self._bm25_version(conn)
        cached = self._bm25.get(path)
        if cached is not None and cached.version == version:
            return cached
        file = path / _BM25
        if version >= 0 and file.exists():
            loaded = _Bm25.load(file)
            if loaded.version == version:
                self._bm25[path] = loaded
                return loaded
        # A missing or older file (deleted, or a writer mid-save): build from the entries.
        built = _Bm25.build(
            self._version(conn)[0], conn.execute("SELECT key, terms FROM entries ORDER BY key")
        )
        self._bm25[path] = built
        return built

    def keyword(self, tenant: str, partition: str, text: str, k: int) -> list[IndexHit]:
        path = self._dir(tenant, partition)
        conn = self._conn(path, create=False)
        terms = list(dict.fromkeys(keyword_terms(text)))
        if conn is None or not terms:
            return []
        ranked = self._load_bm25(path, conn).search(terms, k)
        if not ranked:
            return []
        keys = [key for key, _ in ranked]
        marks = ",".join("?" * len(keys))
        ids = dict(conn.execute(f"SELECT key, chunk_id FROM entries WHERE key IN ({marks})", keys))
        # Entries deleted since the matrix was built are skipped.
        return [IndexHit(str(ids[key]), score) for key, score in ranked if key in ids]

    def count(self, tenant: str, partition: str) -> int:
        conn = self._conn(self._dir(tenant, partition), create=False)
        if conn is None:
            return 0
        return int(conn.execute("SELECT count(*) FROM entries").fetchone()[0])

    def uses_ann(self, tenant: str, partition: str) -> bool:
        path = self._dir(tenant, partition)
        conn = self._conn(path, create=False)
        return conn is not None and self._load_dense(path, conn).hnsw is not None

    def close(self) -> None:
        conns: dict[Path, Any] = self._local.__dict__.get("conns", {})
        for conn in conns.values():
            conn.close()
        conns.clear()
