"""Import llama-index-core beside Backline's own ``workflows`` package.

llama-index-core imports a top-level package named ``workflows`` (llama-index-workflows), which
Backline's ``workflows/`` (Temporal workflows) shadows, so ``import llama_index.core`` fails
inside this project. This module imports llama-index once with its own ``workflows`` in place,
then removes every foreign ``workflows.*`` entry from ``sys.modules`` and puts Backline's back:
llama-index keeps references to what it imported, and ``import workflows.types`` still means
Backline's module afterwards. Import it before any ``llama_index`` import; it must never be
imported from a Temporal workflow module (the sandbox re-imports those).

The llama-index names Backline uses are re-exported from here, so no other module has to
order its imports around this one.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import threading

_lock = threading.Lock()
_MODULES = (
    "llama_index.core",
    "llama_index.core.ingestion",
    "llama_index.core.node_parser",
    "llama_index.core.schema",
    "llama_index.core.base.embeddings.base",
    "llama_index.core.storage.docstore.keyval_docstore",
    "llama_index.core.storage.kvstore.types",
    "llama_index.core.vector_stores.types",
)


def _ours(name: str) -> bool:
    return name == "workflows" or name.startswith("workflows.")


def load() -> None:
    with _lock:
        if "llama_index.core.ingestion" in sys.modules:
            return
        site = str(importlib.metadata.distribution("llama-index-workflows").locate_file(""))
        saved = {k: sys.modules.pop(k) for k in [m for m in sys.modules if _ours(m)]}
        sys.path.insert(0, site)
        importlib.invalidate_caches()
        try:
            for name in _MODULES:
                importlib.import_module(name)
        finally:
            sys.path.remove(site)
            for name in [m for m in sys.modules if _ours(m)]:
                del sys.modules[name]
            sys.modules.update(saved)
            importlib.invalidate_caches()


load()

# Everything below is already in sys.modules; these imports only bind the names.
from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402
from llama_index.core.bridge.pydantic import PrivateAttr  # noqa: E402
from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline  # noqa: E402
from llama_index.core.node_parser import MarkdownNodeParser, SentenceSplitter  # noqa: E402
from llama_index.core.schema import BaseNode, Document, TransformComponent  # noqa: E402
from llama_index.core.storage.docstore.keyval_docstore import KVDocumentStore  # noqa: E402
from llama_index.core.storage.kvstore.types import (  # noqa: E402
    DEFAULT_COLLECTION,
    BaseKVStore,
)
from llama_index.core.vector_stores.types import (  # noqa: E402
    BasePydanticVectorStore,
    VectorStoreQuery,
    VectorStoreQueryResult,
)

__all__ = [
    "DEFAULT_COLLECTION",
    "BaseEmbedding",
    "BaseKVStore",
    "BaseNode",
    "BasePydanticVectorStore",
    "DocstoreStrategy",
    "Document",
    "IngestionPipeline",
    "KVDocumentStore",
    "MarkdownNodeParser",
    "PrivateAttr",
    "SentenceSplitter",
    "TransformComponent",
    "VectorStoreQuery",
    "VectorStoreQueryResult",
    "load",
]
