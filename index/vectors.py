"""Sparse vectors and ids as a pretokenized Anserini index takes them, checked before Lucene sees them: tokens,
integer weights (impacts), document and query ids, the text of an impact query, the files of a vectors folder.

Lucene would split a token containing whitespace, cut a long one or floor a fractional weight without a word; here
such input is an error naming its file and line (:mod:`index.anserini` describes the jar's behaviour).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from encode.quantize import MAX_IMPACT, check_document_total, check_query_total, impact_problem
from kit.errors import InputError
from kit.io import open_text, read_jsonl

#: Files of a vectors folder that hold sparse document records (anything else there is ignored).
VECTOR_SUFFIXES = (".jsonl", ".jsonl.gz")
#: Lucene's whitespace tokenizer cuts tokens at this many UTF-16 code units.
MAX_TOKEN_LENGTH = 255
#: Lucene's default ``BooleanQuery`` limit: a query with more distinct tokens fails.
MAX_QUERY_TOKENS = 1024


# ---- tokens, documents and queries --------------------------------------------------------------------------------

def token_problem(token) -> str | None:
    """Why ``token`` cannot be a term of a pretokenized Anserini index (``None`` when it can)."""
    if not isinstance(token, str) or not token:
        return f"token {token!r} is not a non-empty string"
    if any(c.isspace() or c <= " " for c in token):
        return f"token {token!r} contains whitespace or a control character (Lucene would split it)"
    if len(token.encode("utf-16-le")) // 2 > MAX_TOKEN_LENGTH:
        return f"token {token[:20]!r}... is longer than {MAX_TOKEN_LENGTH} characters (Lucene would cut it)"
    return None


def weight_problem(weight) -> str | None:
    """Why ``weight`` cannot be an impact (``None`` for an integer in ``[0, MAX_IMPACT]``)."""
    return impact_problem(weight)


def check_vector(vector, query: bool = False) -> None:
    """Raise ValueError unless ``vector`` maps valid tokens to integer weights in ``[0, MAX_IMPACT]`` whose sum fits
    (a document's Lucene length, or a query's string: :mod:`encode.quantize`)."""
    if not isinstance(vector, Mapping):
        raise ValueError(f"vector must be a mapping token -> weight, got {type(vector).__name__}")
    for token, weight in vector.items():
        problem = token_problem(token) or weight_problem(weight)
        if problem:
            raise ValueError(problem)
    (check_query_total if query else check_document_total)(vector)


def check_id(kind: str, value) -> str:
    """A document or query id for a TREC run: a non-empty string without whitespace."""
    if not isinstance(value, str) or not value or any(c.isspace() or c <= " " for c in value):
        raise ValueError(f"{kind} id {value!r} must be a non-empty string without whitespace")
    return value


def impact_query_text(vector: Mapping[str, int]) -> str:
    """Pretokenized query text whose bag-of-words boosts equal the weights: each token repeated ``q_t`` times.

    >>> impact_query_text({"##ing": 2, "cat": 1, "dog": 0})
    '##ing ##ing cat'
    """
    check_vector(vector, query=True)
    if sum(1 for weight in vector.values() if weight > 0) > MAX_QUERY_TOKENS:
        raise ValueError(f"more than {MAX_QUERY_TOKENS} tokens with positive weight, Lucene's limit for one query "
                         "(prune the query vector)")
    return " ".join(" ".join([token] * int(weight)) for token, weight in sorted(vector.items()) if weight > 0)


# ---- vectors folders ----------------------------------------------------------------------------------------------

def vector_files(vectors_dir) -> list[Path]:
    """The ``*.jsonl`` / ``*.jsonl.gz`` files of a vectors folder, sorted; InputError when there are none."""
    vectors_dir = Path(vectors_dir)
    if not vectors_dir.is_dir():
        raise InputError(vectors_dir, "vectors folder not found", fix="encode the corpus first")
    files = sorted(p for p in vectors_dir.iterdir() if p.is_file() and p.name.endswith(VECTOR_SUFFIXES))
    if not files:
        raise InputError(vectors_dir, "no *.jsonl or *.jsonl.gz files of sparse vectors",
                         fix="encode the corpus first")
    return files


def _check_vector_file(path: Path, seen_ids: set[str], valid_tokens: set[str]) -> int:
    """Validate one file of ``{"id", "vector"}`` records; return its number of records."""
    count = 0
    for lineno, rec in read_jsonl(path, required=("id", "vector")):
        try:
            doc_id = check_id("document", rec["id"])
            vector = rec["vector"]
            if not isinstance(vector, dict):
                raise ValueError("'vector' must be a JSON object {token: weight}")
            new = vector.keys() - valid_tokens  # the vocabulary is small: check each token once
            for token in new:
                problem = token_problem(token)
                if problem:
                    raise ValueError(problem)
            valid_tokens.update(new)
            if vector and (set(map(type, vector.values())) != {int} or min(vector.values()) < 0
                           or max(vector.values()) > MAX_IMPACT):
                raise ValueError(next(filter(None, map(weight_problem, vector.values()))))
            check_document_total(vector)
        except ValueError as err:
            raise InputError(path, str(err), lineno, fix="write integer weights for whitespace-free tokens "
                                                         "(quantize the encoder's output)") from None
        if doc_id in seen_ids:
            raise InputError(path, f"duplicate document id {doc_id!r}", lineno,
                             fix="remove the repeated records (was the encoding resumed twice?)")
        seen_ids.add(doc_id)
        count += 1
    return count


def _count_records(path: Path) -> int:
    with open_text(path) as fh:
        return sum(1 for line in fh if line.strip())
