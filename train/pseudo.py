"""Pseudo-queries cut from a corpus's own documents: no labels and no generative model.

Each sampled document gives up to one query of each kind (:data:`KINDS`), and is that query's pseudo-positive:

- ``title``: the document's title, when it has one of at least :data:`TITLE_WORDS` words (a title is a short
  query-like summary of its document; BEIR's corpora carry one);
- ``sentence``: one sentence of the body, the inverse cloze task of Lee et al. (ACL 2019): a sentence of
  :data:`SENTENCE_WORDS` words from a body of at least two sentences (the document itself is left whole);
- ``crop``: a contiguous span of :data:`CROP_WORDS` words of the whole text, Contriever's random crop (Izacard et al.,
  TMLR 2022).

GPL (Wang et al., NAACL 2022) labels generated queries with a cross-encoder; :mod:`train.adapt` labels these with
the kit's own teachers instead. Everything is deterministic for a seed: documents are drawn by the SHA-256 of
``seed:doc_id`` (not by file order), and each cut by a generator seeded with ``seed:kind:doc_id``.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import re
from typing import Callable, Iterable, NamedTuple, Sequence

KINDS = ("title", "sentence", "crop")
#: A title with fewer words is not a query (``Introduction``, ``Editorial``).
TITLE_WORDS = 2
#: Words of an inverse-cloze sentence (shorter ones are fragments; longer ones are cut to the maximum).
SENTENCE_WORDS = (4, 64)
#: Words of a random crop: its length is drawn uniformly in this range (Contriever: 5-50% of a 256-token chunk).
CROP_WORDS = (5, 30)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class CorpusDoc(NamedTuple):
    """One document as the cuts see it: the title apart from the body (``""`` when the corpus has none)."""

    doc_id: str
    title: str
    body: str

    @property
    def text(self) -> str:
        """The whole text, as the kit indexes it: ``title + " " + body``."""
        return f"{self.title} {self.body}".strip()


class PseudoQuery(NamedTuple):
    query_id: str  # ``<kind>:<doc_id>``
    text: str
    doc_id: str    # the document it was cut from: its pseudo-positive
    kind: str


def _words(text: str) -> list[str]:
    return text.split()


def title_query(doc: CorpusDoc, rng: random.Random) -> str | None:
    """The title, when it has at least :data:`TITLE_WORDS` words with a letter among them."""
    words = _words(doc.title)
    if len(words) < TITLE_WORDS or not any(c.isalpha() for c in doc.title):
        return None
    return " ".join(words[:SENTENCE_WORDS[1]])


def sentence_query(doc: CorpusDoc, rng: random.Random) -> str | None:
    """One sentence of the body (at least :data:`SENTENCE_WORDS`\\[0] words, cut at the maximum), drawn from a body
    of two or more sentences; None when there is none such."""
    sentences = [s.split() for s in _SENTENCE_END.split(doc.body.strip())]
    if len(sentences) < 2:
        return None
    eligible = [s for s in sentences if len(s) >= SENTENCE_WORDS[0]]
    if not eligible:
        return None
    return " ".join(rng.choice(eligible)[:SENTENCE_WORDS[1]])


def crop_query(doc: CorpusDoc, rng: random.Random) -> str | None:
    """A contiguous span of the whole text, its length uniform in :data:`CROP_WORDS` (at most the text's)."""
    words = _words(doc.text)
    if len(words) < CROP_WORDS[0]:
        return None
    length = rng.randint(CROP_WORDS[0], min(CROP_WORDS[1], len(words)))
    start = rng.randint(0, len(words) - length)
    return " ".join(words[start:start + length])


CUTS: dict[str, Callable[[CorpusDoc, random.Random], str | None]] = {
    "title": title_query, "sentence": sentence_query, "crop": crop_query}


def check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """``kinds`` as a tuple in :data:`KINDS` order; ValueError for an unknown, repeated or empty choice."""
    kinds = tuple(kinds)
    if not kinds or len(set(kinds)) != len(kinds) or not set(kinds) <= set(KINDS):
        raise ValueError(f"kinds must be distinct names among {', '.join(KINDS)}, got {list(kinds)}")
    return tuple(k for k in KINDS if k in kinds)


def draw_key(seed: int, doc_id: str) -> str:
    """The order in which documents are drawn: the SHA-256 of ``seed:doc_id``."""
    return hashlib.sha256(f"{seed}:{doc_id}".encode()).hexdigest()


def sample_ids(doc_ids: Iterable[str], count: int, seed: int) -> list[str]:
    """The ``count`` documents first in :func:`draw_key` order (whatever the corpus's order), in that order."""
    return heapq.nsmallest(count, doc_ids, key=lambda d: draw_key(seed, d))


def cut(doc: CorpusDoc, kinds: Sequence[str], seed: int) -> list[PseudoQuery]:
    """The pseudo-queries of one document, one per kind it allows."""
    out = []
    for kind in kinds:
        text = CUTS[kind](doc, random.Random(f"{seed}:{kind}:{doc.doc_id}"))
        if text:
            out.append(PseudoQuery(f"{kind}:{doc.doc_id}", text, doc.doc_id, kind))
    return out


def pseudo_queries(docs: Iterable[CorpusDoc], kinds: Sequence[str] = KINDS, max_queries: int = 1000,
                   seed: int = 42) -> list[PseudoQuery]:
    """Up to ``max_queries`` pseudo-queries from ``docs`` (already in draw order, e.g. :func:`sample_ids`'s): each
    document's :func:`cut`, in order, until the cap."""
    kinds = check_kinds(kinds)
    out: list[PseudoQuery] = []
    for doc in docs:
        out += cut(doc, kinds, seed)
        if len(out) >= max_queries:
            break
    return out[:max_queries]
