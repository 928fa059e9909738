"""Precision setting: resolution rules, deprecated aliases, trainer wiring, bf16-vs-fp32 parity."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig

from cotdistill import precision as precision_module
from cotdistill.config import from_dict
from cotdistill.errors import ConfigError
from cotdistill.methods import TrainConfig, TrainData
from cotdistill.methods.sft import SFT, SUMMARY_FILE, SFTMethodConfig
from cotdistill.methods.student_trainer import StudentTrainer
from cotdistill.models import Student, StudentConfig, TinyConfig, load_student
from cotdistill.precision import (
    AUTO_BF16_MIN_HIDDEN,
    Precision,
    announce,
    autocast,
    cpu_bf16_flags,
    resolve_precision,
    trainer_flags,
)
from cotdistill.tasks import Example
from cotdistill.teachers import CompletionRequest, TeacherConfig

TINY = TinyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, vocab_size=300)
PARITY_STEPS = 30
LOSS_TOLERANCE = 0.05  # relative gap allowed between the final bf16 and fp32 losses
AGREEMENT = 0.8  # share of prompts whose greedy bf16 output equals the fp32 one


def width(hidden: int) -> LlamaConfig:
    return LlamaConfig(hidden_size=hidden, num_attention_heads=4, intermediate_size=2 * hidden)


@pytest.fixture
def cpu_flags(monkeypatch):
    def set_flags(*flags: str) -> None:
        monkeypatch.setattr(precision_module, "cpu_bf16_flags", lambda: tuple(flags))

    return set_flags


def test_explicit_choices_resolve_as_written():
    assert resolve_precision("fp32").precision is Precision.FP32
    assert resolve_precision("bf16", width(32)).precision is Precision.BF16
    assert trainer_flags(resolve_precision("bf16")) == {"bf16": True, "fp16": False}
    assert trainer_flags(resolve_precision("fp32")) == {"bf16": False, "fp16": False}
    assert resolve_precision("bf16").dtype is torch.bfloat16


def test_fp16_on_a_cpu_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"train\.precision: fp16 needs a CUDA GPU.*bf16 or fp32"):
        resolve_precision("fp16", device="cpu", key="train.precision")


def test_auto_on_a_cpu_without_bf16_units_is_fp32(cpu_flags):
    cpu_flags()
    resolved = resolve_precision("auto", width(2048))
    assert resolved.precision is Precision.FP32
    assert "no AMX-BF16/AVX512-BF16" in resolved.reason


@pytest.mark.parametrize("purpose", ["train", "generate"])
def test_auto_on_a_bf16_cpu_depends_on_the_model_width(cpu_flags, purpose):
    cpu_flags("avx512_bf16")
    needed = AUTO_BF16_MIN_HIDDEN[purpose]
    assert resolve_precision("auto", width(needed), purpose=purpose).precision is Precision.BF16
    narrow = resolve_precision("auto", width(needed // 2), purpose=purpose)
    assert narrow.precision is Precision.FP32
    assert f"< {needed} to {purpose}" in narrow.reason
    assert resolve_precision("auto", None, purpose=purpose).precision is Precision.FP32  # unknown width: fp32


def test_tiny_test_models_stay_fp32_on_every_machine():
    assert TINY.hidden_size < min(AUTO_BF16_MIN_HIDDEN.values())


def test_cpu_flags_come_from_the_cpu(monkeypatch, tmp_path):
    expected = tuple(f for f in ("amx_bf16", "avx512_bf16") if torch.cpu.get_capabilities().get(f))
    assert cpu_bf16_flags() == expected
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu avx2 avx512f avx512_bf16 sse\n")
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    monkeypatch.setattr(precision_module, "CPUINFO", cpuinfo)
    assert cpu_bf16_flags.__wrapped__() == ("avx512_bf16",)


def test_autocast_is_a_no_op_in_fp32_and_bf16_otherwise():
    a = torch.randn(4, 4)
    with autocast(resolve_precision("fp32"), "cpu"):
        assert (a @ a).dtype is torch.float32
    with autocast(resolve_precision("bf16"), "cpu"):
        assert (a @ a).dtype is torch.bfloat16


def test_the_choice_is_logged_once_per_purpose(caplog, monkeypatch):
    monkeypatch.setattr(precision_module, "_announced", set())
    resolved = resolve_precision("bf16")
    with caplog.at_level(logging.INFO, logger="cotdistill.precision"):
        for _ in range(3):
            announce(resolved, "unit-test purpose")
    assert [r.getMessage() for r in caplog.records] == ["unit-test purpose: precision bf16 (set explicitly)"]


def test_train_precision_in_a_config_and_its_deprecated_alias(caplog):
    assert TrainConfig().precision is Precision.AUTO
    assert from_dict(TrainConfig, {"precision": "bf16"}).precision is Precision.BF16
    with caplog.at_level(logging.WARNING):
        legacy = from_dict(TrainConfig, {"bf16": True}, where="r.yaml", prefix="train.")
    assert legacy.precision is Precision.BF16 and legacy.bf16 is None
    assert "write precision: bf16" in caplog.text
    assert from_dict(TrainConfig, {"bf16": False}).precision is Precision.FP32
    with pytest.raises(ConfigError, match=r"r\.yaml: train: bf16 is deprecated and disagrees with precision: fp32"):
        from_dict(TrainConfig, {"bf16": True, "precision": "fp32"}, where="r.yaml", prefix="train.")
    with pytest.raises(ConfigError, match=r"'train\.precision' must be one of auto, fp32, bf16, fp16"):
        from_dict(TrainConfig, {"precision": "half"}, where="r.yaml", prefix="train.")


def test_teacher_dtype_is_a_deprecated_alias_of_precision():
    assert TeacherConfig(backend="hf", model="m", dtype="bfloat16").options.precision is Precision.BF16
    assert TeacherConfig(backend="hf", model="m").options.precision is Precision.AUTO


# ---------------------------------------------------------------------------- trainer wiring, parity


def examples(n: int) -> list[Example]:
    out = []
    for i in range(n):
        a, b = 3 * i % 17, 5 * i % 13
        steps = " ".join(f"{a} + {k} = {a + k}." for k in range(i % 3 + 1))
        out.append(Example(f"t{i}", "toy", f"What is {a} + {b}?", str(a + b), f"{steps} The answer is {a + b}."))
    return out


def fresh_student() -> Student:
    return load_student(StudentConfig(tiny=TINY), [e.question + " " + e.rationale for e in examples(40)])


def test_trainer_runs_mixed_precision_with_fp32_master_weights(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(precision_module, "_announced", set())  # earlier tests may have announced it
    student = fresh_student()
    rows = SFT().build_rows(student, TrainData(examples(8)), SFTMethodConfig(), TrainConfig())
    with caplog.at_level(logging.INFO, logger="cotdistill.precision"):
        trainer = StudentTrainer(student, rows, TrainConfig(max_steps=1, precision="bf16", progress=False), tmp_path)
    assert trainer.args.bf16 and not trainer.args.fp16
    assert trainer.accelerator.mixed_precision == "bf16"
    assert "training: precision bf16" in caplog.text
    trainer.train()
    assert all(p.dtype is torch.float32 for p in student.model.parameters())
    state = trainer.optimizer.state_dict()["state"]
    assert state and all(s["exp_avg"].dtype is torch.float32 for s in state.values())


def losses(precision: str, out: Path) -> tuple[float, float, Student]:
    """(first logged loss, mean of the last two logged losses, the trained student)."""
    student = fresh_student()
    train = TrainConfig(
        max_steps=PARITY_STEPS, lr=3e-3, batch_size=8, logging_steps=5, precision=precision, progress=False
    )
    SFT().train(student, TrainData(examples(40)), train, SFTMethodConfig(), out)
    log = json.loads((out / SUMMARY_FILE).read_text())["log"]
    history = [entry["loss"] for entry in log if "loss" in entry]
    return history[0], sum(history[-2:]) / 2, student


def test_bf16_training_ends_within_tolerance_of_fp32_and_generation_agrees(tmp_path):
    first, fp32_loss, fp32_student = losses("fp32", tmp_path / "fp32")
    _, bf16_loss, _ = losses("bf16", tmp_path / "bf16")
    assert fp32_loss < 0.8 * first  # it learned something, so the comparison means something
    assert abs(bf16_loss - fp32_loss) <= LOSS_TOLERANCE * fp32_loss, (bf16_loss, fp32_loss)

    prompts = [fp32_student.prompt(e.question) for e in examples(40)[:20]]
    greedy = {
        p: fp32_student.generate(prompts, max_new_tokens=24, precision=p, progress=False) for p in ("fp32", "bf16")
    }
    same = sum(a == b for a, b in zip(greedy["fp32"], greedy["bf16"])) / len(prompts)
    assert same >= AGREEMENT, (same, greedy)


def test_hf_teacher_on_a_cpu_keeps_fp32_weights_and_autocasts_at_the_resolved_precision(tmp_path):
    from cotdistill.teachers.hf_local import HFTeacher

    student = fresh_student()
    student.model.save_pretrained(tmp_path)
    student.tokenizer.save_pretrained(tmp_path)
    for setting, expected in (("bf16", Precision.BF16), ("auto", Precision.FP32), ("fp32", Precision.FP32)):
        teacher = HFTeacher(TeacherConfig(backend="hf", model=str(tmp_path), device="cpu", precision=setting))
        assert teacher.model.dtype == torch.float32 and teacher.precision.precision is expected, setting
    (result,) = teacher.complete([CompletionRequest(key="k", prompt="What is 1 + 2?", max_tokens=4)])
    assert result.error is None
    with pytest.raises(ConfigError, match="teacher.precision: fp16 needs a CUDA GPU"):
        HFTeacher(TeacherConfig(backend="hf", model=str(tmp_path), device="cpu", precision="fp16"))
