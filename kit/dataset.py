"""The data model of a test collection: a :class:`Doc`, relevance judgments (:data:`Qrels`) and a :class:`Dataset`.

Readers of the file formats live in :mod:`kit.formats`, the loaders that resolve a dataset name in :mod:`kit.data`
(and :mod:`kit.nanobeir`); they all produce this one shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple

from kit.fingerprint import digest, stream_sha256

Qrels = dict[str, dict[str, int]]


class Doc(NamedTuple):
    """One document: its id and the text an encoder or indexer sees."""

    doc_id: str
    text: str


@dataclass
class Dataset:
    """A test collection: queries and qrels in memory, documents streamed on demand.

    ``docs()`` returns a fresh iterator on every call, so a corpus can be read once for IDF and again for encoding.
    ``corpus_key``, when a loader can give it cheaply, identifies the documents' content (a digest of the corpus
    files, or an ir_datasets id whose downloads ir_datasets verifies); otherwise :meth:`corpus_fingerprint` hashes
    the document stream itself.
    """

    name: str
    queries: dict[str, str]
    qrels: Qrels
    docs: Callable[[], Iterator[Doc]]
    num_docs: int | None = None
    source: str = ""
    corpus_key: str | None = None

    def corpus_fingerprint(self) -> str:
        """What the documents are (ids and texts): every cached artifact built from them is keyed by it."""
        if self.corpus_key is None:
            self.corpus_key = "stream:" + stream_sha256((d.doc_id, d.text) for d in self.docs())
        return self.corpus_key

    def queries_fingerprint(self) -> str:
        """Digest of the query ids and texts (the topics a run searches)."""
        return digest(sorted(self.queries.items()))

    def qrels_fingerprint(self) -> str:
        return digest(sorted((q, sorted(d.items())) for q, d in self.qrels.items()))
