"""Depth pruning (``student.keep_layers``): the kept layers compute what they computed before,
``layer_idx`` and the config follow, generation with the KV cache works, and save/load round-trips."""

from __future__ import annotations

import pytest
import torch

from cotdistill.config import from_dict
from cotdistill.errors import ConfigError
from cotdistill.models import Student, StudentConfig, TinyConfig, load_student
from cotdistill.models.prune import keep_decoder_layers

TINY = {"hidden_size": 32, "num_layers": 4, "num_heads": 2, "intermediate_size": 64, "vocab_size": 300}
CORPUS = [f"What is {i} + {i * 3 % 7}? {i} plus some more words" for i in range(40)]


@pytest.fixture
def full() -> Student:
    return load_student(StudentConfig(tiny=TinyConfig(**TINY)), CORPUS)


def test_kept_layers_run_as_the_same_functions(full):
    ids = torch.tensor([full.encode_prompt(full.prompt("What is 2 + 3?"))])
    decoder = full.model.get_decoder()
    kept = [decoder.layers[i] for i in (0, 3)]
    full.model.eval()
    pruned = keep_decoder_layers(full.model, [0, 3])
    assert list(pruned.get_decoder().layers) == kept
    assert [layer.self_attn.layer_idx for layer in kept] == [0, 1]
    assert pruned.config.num_hidden_layers == 2
    if getattr(pruned.config, "layer_types", None) is not None:
        assert len(pruned.config.layer_types) == 2
    with torch.no_grad():
        out = pruned.generate(ids, max_new_tokens=4, do_sample=False, use_cache=True)
        no_cache = pruned.generate(ids, max_new_tokens=4, do_sample=False, use_cache=False)
    assert out.tolist() == no_cache.tolist()


def test_keep_layers_from_config_round_trips_through_save_and_load(tmp_path):
    config = from_dict(StudentConfig, {"tiny": TINY, "keep_layers": [1, 2]})
    student = load_student(config, CORPUS)
    student.save(tmp_path / "s")
    assert list((tmp_path / "s").glob("*.safetensors"))
    loaded = Student.load(tmp_path / "s")
    assert loaded.model.config.num_hidden_layers == 2 and len(loaded.model.get_decoder().layers) == 2
    ids = torch.tensor([student.encode_prompt(student.prompt("What is 1 + 2?"))])
    student.model.eval()
    with torch.no_grad():
        assert torch.allclose(student.model(ids).logits, loaded.model(ids).logits, atol=1e-6)


@pytest.mark.parametrize(
    ("keep", "message"),
    [([], "at least one"), ([2, 1], "strictly increasing"), ([0, 9], r"\[9\] out of range: the model has 4 layers")],
)
def test_bad_keep_layers_name_the_key(keep, message):
    with pytest.raises(ConfigError, match=f"keep_layers.*{message}|{message}"):
        load_student(from_dict(StudentConfig, {"tiny": TINY, "keep_layers": keep}, where="r.yaml"), CORPUS)
