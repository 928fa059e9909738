"""``master_weights`` in the TRL trainers (ReDis SFT, ORPO, DPO; GRPO): bf16 weights with fp32
masters while training, fp32 weights afterwards, and the training still does its job."""

from __future__ import annotations

import pytest
import torch

from cotdistill.methods.lm_guided.reasoner import Reasoner
from cotdistill.methods.lm_guided.rewarder import RewardConfig, Rewarder
from cotdistill.methods.lm_guided.rl import train_grpo
from cotdistill.methods.redis.pairs import SFTItem
from cotdistill.methods.redis.train import ReDisTrainConfig, align, sft
from cotdistill.mixed_precision import MasterWeightsMixin, MasterWeightsOptimizer, make_trainer, master_weights_class
from cotdistill.models import StudentConfig
from cotdistill.precision import Precision, ResolvedPrecision
from doubles import FirstWordReasoner
from test_lm_guided_rl import multihop_rows, tiny_model_and_tokenizer, two_step_config
from test_redis_train import PAIRS, PROMPT, _completion_nll, _student, _weights


@pytest.fixture
def steps(monkeypatch) -> list[tuple[set[torch.dtype], set[torch.dtype]]]:
    """(working-weight dtypes, master dtypes) of every ``MasterWeightsOptimizer`` step taken."""
    seen: list[tuple[set[torch.dtype], set[torch.dtype]]] = []
    step = MasterWeightsOptimizer.step

    def recording_step(self, closure=None):
        seen.append(({p.dtype for p, _ in self.pairs}, {m.dtype for _, m in self.pairs}))
        return step(self, closure)

    monkeypatch.setattr(MasterWeightsOptimizer, "step", recording_step)
    return seen


LOSS_TOLERANCE = 0.02
"""Largest relative gap between the NLLs after master-weights and autocast training (measured: < 0.1%)."""


def _settings(**overrides) -> ReDisTrainConfig:
    return ReDisTrainConfig(
        **{"batch_size": 4, "max_length": 128, "precision": "bf16", "master_weights": True, **overrides}
    )


def _all_fp32(model) -> bool:
    return all(p.dtype == torch.float32 for p in model.parameters())


def test_make_trainer_mixes_master_weights_in_first_and_only_when_asked():
    from trl import SFTTrainer

    class Plain:
        def __init__(self, model):
            self.model = model

    assert type(make_trainer(Plain, ResolvedPrecision(Precision.BF16, "set explicitly"), model=None)) is Plain
    mixed = master_weights_class(SFTTrainer)
    assert mixed.__mro__[1] is MasterWeightsMixin and issubclass(mixed, SFTTrainer)
    assert master_weights_class(SFTTrainer) is mixed and master_weights_class(mixed) is mixed


@pytest.mark.parametrize("finetune", ["full", "lora"])
def test_redis_sft_with_master_weights_matches_autocast_and_ends_in_fp32(tmp_path, steps, finetune):
    items = [SFTItem("rule_generation", "t", "list_functions", PROMPT, "Reverse the list.")] * 8
    lora = StudentConfig().lora if finetune == "lora" else None
    before = _completion_nll(_student(), PROMPT, "Reverse the list.")

    def trained_nll(master_weights: bool, out: str) -> float:
        settings = _settings(sft_epochs=2, sft_lr=1e-2, master_weights=master_weights)
        student = sft(_student(finetune), items, settings, tmp_path / out, lora)
        assert _all_fp32(student.model)
        return _completion_nll(student, PROMPT, "Reverse the list.")

    autocast = trained_nll(False, "autocast")
    assert not steps
    master = trained_nll(True, "master")
    assert steps and all(working == {torch.bfloat16} and masters == {torch.float32} for working, masters in steps)
    assert master < before - 0.2
    assert master == pytest.approx(autocast, rel=LOSS_TOLERANCE)


@pytest.mark.parametrize("loss", ["orpo", "dpo"])
def test_alignment_with_master_weights_updates_the_student_in_fp32(tmp_path, steps, loss):
    before = _weights(_student().model)
    aligned = align(_student(), PAIRS, _settings(align_epochs=1, align_lr=1e-2), tmp_path, None, loss)
    assert steps and all(working == {torch.bfloat16} for working, _ in steps)
    after = _weights(aligned.model)
    assert _all_fp32(aligned.model) and torch.isfinite(after).all()
    assert not torch.equal(before, after)


def test_grpo_with_master_weights_steps_bf16_weights_and_returns_fp32(tmp_path, steps):
    rows, rationales = multihop_rows(4)
    model, tokenizer = tiny_model_and_tokenizer([r["prompt"] + " " + t for r, t in zip(rows, rationales)])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rewarder = Rewarder(Reasoner(FirstWordReasoner()), RewardConfig(weights={"f1": 1.0, "length": 0.2}, min_words=4))
    cfg = two_step_config(precision="bf16", master_weights=True)
    trained = train_grpo(model, tokenizer, rows, rewarder, cfg, tmp_path)
    assert len(steps) == 2 and all(working == {torch.bfloat16} for working, _ in steps)
    assert _all_fp32(trained)
    assert any(not torch.equal(before[k], v) for k, v in trained.state_dict().items())
