"""SFT: completion-only rows, multitask weighting, grad-accum normalisation, resume, NaN stop, accelerate."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from cotdistill.methods import METHODS, TrainConfig, TrainData
from cotdistill.methods.data import IGNORE_INDEX, Collator, LengthGroupedSampler
from cotdistill.methods.sft import SFT, SFTMethodConfig
from cotdistill.methods.student_module import StudentModule
from cotdistill.methods.student_trainer import StudentTrainer, TrainingDivergedError
from cotdistill.models import Student, StudentConfig, TinyConfig, load_student
from cotdistill.tasks import Example
from launch import launch_two_processes

TINY = TinyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, vocab_size=300)


def examples(n: int) -> list[Example]:
    out = []
    for i in range(n):
        a, b = 3 * i % 17, 5 * i % 13
        steps = " ".join(f"{a} + {k} = {a + k}." for k in range(i % 3 + 1))  # mixed lengths
        out.append(Example(f"t{i}", "toy", f"What is {a} + {b}?", str(a + b), f"{steps} The answer is {a + b}."))
    return out


def fresh_student() -> Student:
    return load_student(StudentConfig(tiny=TINY), [e.question + " " + e.rationale for e in examples(40)])


def test_sft_is_registered():
    assert METHODS.get("sft") is SFT


def test_rows_put_the_loss_on_the_completion_only():
    student = fresh_student()
    example = examples(3)[2]
    (row,) = SFT().build_rows(student, TrainData([example]), SFTMethodConfig(), TrainConfig())
    prompt_ids = student.encode_prompt(student.prompt(example.question))
    n = len(prompt_ids)
    assert row["input_ids"][:n] == prompt_ids
    assert row["labels"][:n] == [IGNORE_INDEX] * n
    assert row["labels"][n:] == row["input_ids"][n:]
    assert row["labels"][-1] == student.tokenizer.eos_token_id
    assert student.tokenizer.decode(row["input_ids"][n:], skip_special_tokens=True).strip() == example.rationale


def test_rows_use_the_domain_instruction_when_given():
    student = fresh_student()
    example = examples(1)[0]
    data = TrainData([example], instructions={"toy": "Say it."})
    (row,) = SFT().build_rows(student, data, SFTMethodConfig(), TrainConfig())
    assert row["input_ids"][: len(student.encode_prompt(student.prompt(example.question, "Say it.")))] == (
        student.encode_prompt(student.prompt(example.question, "Say it."))
    )
    (bare,) = SFT().build_rows(student, data, SFTMethodConfig(use_instruction=False), TrainConfig())
    assert len(bare["input_ids"]) < len(row["input_ids"])


def test_multitask_rows_and_weighted_loss():
    student = fresh_student()
    data = TrainData(examples(2))
    rows = SFT().build_rows(student, data, SFTMethodConfig(multitask=True, alpha=0.25), TrainConfig())
    assert len(rows) == 4 and [r["weight"] for r in rows] == [0.25, 0.75, 0.25, 0.75]
    label_text = student.tokenizer.decode(
        [t for t in rows[1]["labels"] if t != IGNORE_INDEX], skip_special_tokens=True
    ).strip()
    assert label_text == "The answer is 0."
    assert rows[0]["input_ids"] != rows[1]["input_ids"]  # distinct prompts
    batch = Collator(student.tokenizer.pad_token_id)(rows)
    module = StudentModule(student)
    with torch.no_grad():
        weighted = module(**batch).loss_sum
        per_row = [module(**{**Collator(0)([r]), "weight": torch.ones(1)}).loss_sum for r in rows]
        plain = module(**{**batch, "weight": torch.ones(4)}).loss_sum
    assert torch.allclose(weighted, sum(r["weight"] * loss for r, loss in zip(rows, per_row)), atol=1e-4)
    assert torch.allclose(plain, sum(per_row), atol=1e-4)
    only_rationale = SFT().build_rows(student, data, SFTMethodConfig(multitask=True, alpha=1.0), TrainConfig())
    assert len(only_rationale) == 2


def test_sampler_is_seeded_per_epoch_and_groups_lengths():
    lengths = [5, 50, 6, 51, 7, 52, 8, 53]
    sampler = LengthGroupedSampler(lengths, batch_size=2, seed=3)
    first = list(sampler)
    assert sorted(first) == list(range(8)) and first == list(LengthGroupedSampler(lengths, 2, 3))
    pairs = [sorted(lengths[i] for i in first[k : k + 2]) for k in range(0, 8, 2)]
    assert all(abs(a - b) <= 3 for a, b in pairs)
    sampler.set_epoch(1)
    assert list(sampler) != first


class GradCapture(TrainerCallback):
    def __init__(self):
        self.grads: dict[str, torch.Tensor] = {}

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def test_gradient_accumulation_normalises_by_all_completion_tokens(tmp_path):
    data = examples(4)  # different completion lengths, so per-micro-batch means would differ
    grads = []
    for batch_size, accum in ((4, 1), (2, 2), (1, 4)):
        student = fresh_student()
        rows = SFT().build_rows(student, TrainData(data), SFTMethodConfig(), TrainConfig())
        train = TrainConfig(max_steps=1, batch_size=batch_size, grad_accum=accum, max_grad_norm=0.0, progress=False)
        trainer = StudentTrainer(student, rows, train, tmp_path / f"run{batch_size}")
        capture = GradCapture()
        trainer.add_callback(capture)
        trainer.train()
        grads.append(capture.grads)
    reference = fresh_student()
    module = StudentModule(reference)
    out = module(**Collator(0)(SFT().build_rows(reference, TrainData(data), SFTMethodConfig(), TrainConfig())))
    (out.loss_sum / out.num_tokens).backward()
    expected = {f"model.{n}": p.grad for n, p in reference.model.named_parameters()}
    for captured in grads:
        assert captured.keys() == expected.keys()
        for name, grad in captured.items():
            assert torch.allclose(grad, expected[name], atol=1e-6), name


class Kill(TrainerCallback):
    """Simulates a killed process after ``at`` optimizer steps."""

    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.at:
            raise KeyboardInterrupt


def test_resume_ends_like_an_uninterrupted_run(tmp_path, monkeypatch):
    data = TrainData(examples(10))
    train = TrainConfig(max_steps=8, batch_size=2, lr=3e-3, save_steps=3, logging_steps=1, progress=False)
    whole = SFT().train(fresh_student(), data, train, SFTMethodConfig(), tmp_path / "whole")

    killer = Kill(5)  # 5 steps per epoch: the resumed run restarts mid-epoch and crosses an epoch
    original_init = StudentTrainer.__init__

    def init_with_kill(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.add_callback(killer)

    monkeypatch.setattr(StudentTrainer, "__init__", init_with_kill)
    with pytest.raises(KeyboardInterrupt):
        SFT().train(fresh_student(), data, train, SFTMethodConfig(), tmp_path / "killed")
    monkeypatch.setattr(StudentTrainer, "__init__", original_init)
    assert (tmp_path / "killed" / "checkpoint-3" / "student.json").exists()
    assert not (tmp_path / "killed" / "final").exists()

    resumed = SFT().train(fresh_student(), data, train, SFTMethodConfig(), tmp_path / "killed", resume=True)
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    assert (tmp_path / "killed" / "final" / "model.safetensors").exists()
    again = SFT().train(fresh_student(), data, train, SFTMethodConfig(), tmp_path / "killed", resume=True)
    assert torch.equal(again.model.lm_head.weight, resumed.model.lm_head.weight)  # finished run: loaded


class Poison(TrainerCallback):
    """Turns the weights into NaN after ``at`` steps."""

    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.at:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    student = fresh_student()
    rows = SFT().build_rows(student, TrainData(examples(8)), SFTMethodConfig(), TrainConfig())
    train = TrainConfig(max_steps=6, batch_size=2, save_steps=2, progress=False)
    trainer = StudentTrainer(student, rows, train, tmp_path)
    trainer.add_callback(Poison(3))
    with pytest.raises(TrainingDivergedError, match=r"nan at step 4.*checkpoint-2"):
        trainer.train()
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*")) == ["checkpoint-2"]
    saved = Student.load(tmp_path / "checkpoint-2")
    assert all(torch.isfinite(p).all() for p in saved.model.parameters())


ACCELERATE_SCRIPT = """
import sys, torch
from cotdistill.methods import TrainConfig, TrainData
from cotdistill.methods.sft import SFT, SFTMethodConfig
sys.path.insert(0, {tests!r})
from test_sft_trainer import examples, fresh_student
out = {out!r}
student = SFT().train(fresh_student(), TrainData(examples(16)),
                      TrainConfig(max_steps=3, batch_size=2, progress=False), SFTMethodConfig(), out)
total = sum(float(p.double().sum()) for p in student.model.parameters())
rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
open(f"{{out}}/rank{{rank}}.txt", "w").write(f"{{world}} {{total!r}}")
"""


def test_runs_under_accelerate_launch_with_two_processes(tmp_path):
    script = tmp_path / "train.py"
    out = tmp_path / "out"
    script.write_text(textwrap.dedent(ACCELERATE_SCRIPT.format(tests=str(Path(__file__).parent), out=str(out))))
    result = launch_two_processes(script)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [(out / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert ranks[0][0] == ranks[1][0] == "2"
    assert ranks[0][1] == ranks[1][1]  # gradients were synchronised: both replicas hold the same weights
    assert (out / "final" / "student.json").exists()
