"""The ONNX export of MiniLM gives the vectors sentence-transformers gives, and the process
that embeds through it never imports torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from connectors.embedder import (
    MiniLMEmbedder,
    OnnxMiniLMEmbedder,
    build_embedder,
    default_model_dir,
    onnx_file,
)

TEXTS = [
    "My water heater is leaking in the garage.",
    "When is the plumber coming, Thursday between eight and ten?",
    "ok",
    "order one oh four two " * 80,  # past the 256-token limit: truncated the same way
    "Café Zoë, naïve façade",
]


def test_onnx_vectors_equal_torch_vectors() -> None:
    onnx = OnnxMiniLMEmbedder(default_model_dir(), threads=1).embed(TEXTS)
    torch = MiniLMEmbedder(threads=1).embed(TEXTS)
    assert onnx.shape == torch.shape == (len(TEXTS), 384)
    cosine = (onnx * torch).sum(axis=1)
    assert cosine.min() >= 0.9999, cosine
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)


def test_batch_and_single_embeddings_agree() -> None:
    emb = OnnxMiniLMEmbedder(default_model_dir())
    batch = emb.embed(TEXTS)
    singles = np.vstack([emb.embed([t]) for t in TEXTS])
    assert ((batch * singles).sum(axis=1) >= 0.9999).all()


def test_export_lands_in_the_model_dir_and_is_reused(tmp_path: Path) -> None:
    emb = build_embedder("onnx", tmp_path / "models")
    assert isinstance(emb, OnnxMiniLMEmbedder)
    emb.warm_up()
    exported = onnx_file(tmp_path / "models")
    assert exported.exists() and exported.stat().st_size > 10_000_000
    before = exported.stat().st_mtime_ns
    OnnxMiniLMEmbedder(tmp_path / "models").warm_up()
    assert exported.stat().st_mtime_ns == before


def test_embedding_through_onnx_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "from connectors.embedder import OnnxMiniLMEmbedder, default_model_dir\n"
        "OnnxMiniLMEmbedder(default_model_dir()).embed(['hello'])\n"
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False False", out.stderr


def test_a_large_batch_hands_its_memory_back() -> None:
    # In a fresh process: without arena shrinkage, 32 chunks of 256 tokens leave ~350 MB held.
    code = (
        "from connectors.embedder import OnnxMiniLMEmbedder, default_model_dir\n"
        "def rss():\n"
        "    for line in open('/proc/self/status'):\n"
        "        if line.startswith('VmRSS'):\n"
        "            return int(line.split()[1]) // 1024\n"
        "emb = OnnxMiniLMEmbedder(default_model_dir())\n"
        "emb.embed(['warm up'])\n"
        "before = rss()\n"
        "emb.embed(['the plumber comes on thursday between eight and ten ' * 40] * 32)\n"
        "print(rss() - before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert int(out.stdout.strip()) < 120, out.stdout
