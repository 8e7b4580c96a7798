"""eval/scale.py at a size `make test` can afford: the 846 rgb-news pages plus 100 synthetic noisy ones.

The full run (5,000 synthetic pages, 20 kills, 8 chats at once) is `.venv/bin/python eval/scale.py`; its
figures are in the README. Concurrent chat requests are covered here by test_ui.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from rag.eval import bench_root

PROJECT = Path(__file__).resolve().parent.parent
NEWS = bench_root() / "rgb-news" / "corpus"  # beside the checkout, or RAG_BENCH_DIR


def load_scale():
    spec = importlib.util.spec_from_file_location("scale", PROJECT / "eval" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not NEWS.is_dir(), reason=f"{NEWS} is not here")
def test_news_collection_updates_incrementally_and_survives_kills(tmp_path):
    figures = load_scale().run(n_synthetic=100, kills=3, concurrent=0, work=tmp_path)
    print("\n", figures["build"], figures["incremental"], {k: figures["kills"][k] for k in ("usable", "killed")})
    build, inc, kills = figures["build"], figures["incremental"], figures["kills"]
    assert build["docs"] >= 846 + 90 and build["skipped"] >= 2 and build["not_utf8"] > 0
    assert inc["files_embedded"] == 10 and inc["chunks_embedded"] == inc["chunks_of_touched_files"]
    assert kills["usable"] == kills["runs"] == 3 and not kills["failures"], kills
