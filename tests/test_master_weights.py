"""bf16 working weights with fp32 master copies (``train.master_weights``): parity with fp32,
dtypes during training, fp32 checkpoints equal to the masters, resume, LoRA, fp32 extra modules."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from transformers import TrainerCallback

from cotdistill.errors import ConfigError
from cotdistill.methods import TrainConfig, TrainData
from cotdistill.methods.sft import SFT, SFTMethodConfig
from cotdistill.methods.student_trainer import StudentTrainer
from cotdistill.mixed_precision import MASTERS_KEY, BF16Weights, MasterWeightsOptimizer
from cotdistill.models import Student, StudentConfig, StudentLoRAConfig, TinyConfig, load_student
from cotdistill.precision import Precision, ResolvedPrecision, trainer_flags, with_master_weights
from cotdistill.tasks import Example
from launch import launch_two_processes

TINY = TinyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, vocab_size=300)
LOSS_TOLERANCE = 0.02
"""Largest relative gap between the final training losses of bf16 master-weights and fp32 runs
(measured: about 1e-4 after 20 steps of the tiny model)."""


def examples(n: int, domain: str = "toy") -> list[Example]:
    out = []
    for i in range(n):
        a, b = 3 * i % 17, 5 * i % 13
        steps = " ".join(f"{a} + {k} = {a + k}." for k in range(i % 3 + 1))
        out.append(
            Example(f"{domain}{i}", domain, f"What is {a} + {b}?", str(a + b), f"{steps} The answer is {a + b}.")
        )
    return out


def fresh_student(finetune: str = "full") -> Student:
    config = StudentConfig(tiny=TINY, finetune=finetune, lora=StudentLoRAConfig(r=4, alpha=8))
    return load_student(config, [e.question + " " + e.rationale for e in examples(40)])


def train_config(**overrides) -> TrainConfig:
    settings = {"max_steps": 6, "batch_size": 4, "lr": 3e-3, "logging_steps": 1, "progress": False}
    settings.update(precision="bf16", master_weights=True)
    return TrainConfig(**{**settings, **overrides})


def rows_of(student: Student, n: int = 16) -> list[dict]:
    return SFT().build_rows(student, TrainData(examples(n)), SFTMethodConfig(), TrainConfig())


def inner(optimizer) -> MasterWeightsOptimizer:
    """The ``MasterWeightsOptimizer`` inside accelerate's wrapper."""
    wrapped = getattr(optimizer, "optimizer", optimizer)
    assert isinstance(wrapped, MasterWeightsOptimizer)
    return wrapped


class Watch(TrainerCallback):
    """Records parameter and master dtypes at every step end, and checks every checkpoint on save."""

    def __init__(self):
        self.model_dtypes: set[torch.dtype] = set()
        self.master_dtypes: set[torch.dtype] = set()
        self.checked_saves = 0
        self.optimizer: MasterWeightsOptimizer | None = None

    def on_step_end(self, args, state, control, model=None, optimizer=None, **kwargs):
        self.optimizer = inner(optimizer)
        self.model_dtypes |= {p.dtype for p in model.model.parameters()}
        self.master_dtypes |= {m.dtype for _, m in inner(optimizer).pairs}

    def on_save(self, args, state, control, model=None, optimizer=None, **kwargs):
        saved = load_file(f"{args.output_dir}/checkpoint-{state.global_step}/model.safetensors")
        masters = {id(p): m for p, m in inner(optimizer).pairs}
        for name, param in model.model.named_parameters():
            assert param.dtype == torch.bfloat16, name  # back to bf16 after the save
            assert saved[name].dtype == torch.float32, name
            assert torch.equal(saved[name], masters[id(param)]), name
        self.checked_saves += 1


def test_precision_flags():
    bf16 = ResolvedPrecision(Precision.BF16, "set explicitly")
    fp32 = ResolvedPrecision(Precision.FP32, "set explicitly")
    assert with_master_weights(bf16, False) == bf16
    assert with_master_weights(fp32, True) == fp32  # nothing to cast
    assert trainer_flags(with_master_weights(bf16, True)) == {"bf16": False, "fp16": False}  # no autocast
    assert trainer_flags(bf16) == {"bf16": True, "fp16": False}
    with pytest.raises(ConfigError, match="train.master_weights"):
        with_master_weights(ResolvedPrecision(Precision.FP16, "set explicitly"), True)


def test_optimizer_state_dict_round_trip_restores_masters():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
    weights = BF16Weights(model)
    optimizer = MasterWeightsOptimizer(torch.optim.AdamW(list(model.parameters()), lr=0.1), weights)
    model(torch.randn(3, 4, dtype=torch.bfloat16)).sum().backward()
    optimizer.step()
    saved = {k: v for k, v in optimizer.state_dict().items()}
    saved[MASTERS_KEY] = [m.clone() for m in saved[MASTERS_KEY]]
    expected = [m.clone() for _, m in optimizer.pairs]
    for _, m in optimizer.pairs:
        m.data.add_(1.0)
    optimizer.load_state_dict(saved)
    for (p, m), want in zip(optimizer.pairs, expected, strict=True):
        assert torch.equal(m, want) and m.dtype == torch.float32
        assert torch.equal(p, want.to(torch.bfloat16))


def test_bf16_run_ends_near_the_fp32_run_with_bf16_weights_and_fp32_masters(tmp_path):
    final_losses = {}
    for name, settings in {"fp32": {"precision": "fp32", "master_weights": False}, "bf16": {}}.items():
        student = fresh_student()
        trainer = StudentTrainer(student, rows_of(student), train_config(max_steps=20, **settings), tmp_path / name)
        watch = Watch()
        if name == "bf16":
            assert not trainer.args.bf16  # no autocast
            trainer.add_callback(watch)
        trainer.train()
        final_losses[name] = [h["loss"] for h in trainer.state.log_history if "loss" in h][-1]
        assert {p.dtype for p in student.model.parameters()} == {torch.float32}  # fp32 again after training
    assert watch.model_dtypes == {torch.bfloat16} and watch.master_dtypes == {torch.float32}
    gap = abs(final_losses["bf16"] - final_losses["fp32"]) / final_losses["fp32"]
    assert gap <= LOSS_TOLERANCE, final_losses


def test_checkpoints_are_fp32_and_equal_the_masters(tmp_path):
    student = fresh_student()
    trainer = StudentTrainer(student, rows_of(student), train_config(save_steps=3), tmp_path / "run")
    watch = Watch()
    trainer.add_callback(watch)
    trainer.train()
    assert watch.checked_saves == 2
    trainer.save_model(str(tmp_path / "final"))  # as SFT.train does once training ended
    saved = load_file(str(tmp_path / "final" / "model.safetensors"))
    for name, param in student.model.named_parameters():
        assert saved[name].dtype == torch.float32 and torch.equal(saved[name], param), name


def test_resume_restores_the_masters_and_ends_like_an_uninterrupted_run(tmp_path, monkeypatch):
    data = TrainData(examples(10))
    train = train_config(max_steps=6, batch_size=2, save_steps=3)
    whole = SFT().train(fresh_student(), data, train, SFTMethodConfig(), tmp_path / "whole")

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 4:
                raise KeyboardInterrupt

    class CheckResumedMasters(TrainerCallback):
        def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
            saved = torch.load(tmp_path / "killed" / "checkpoint-3" / "optimizer.pt", weights_only=True)
            for (_, m), want in zip(inner(optimizer).pairs, saved[MASTERS_KEY], strict=True):
                assert torch.equal(m, want)
            self.checked = True

    original_init = StudentTrainer.__init__
    extra: list[TrainerCallback] = [Kill()]

    def init_with(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        for callback in extra:
            self.add_callback(callback)

    monkeypatch.setattr(StudentTrainer, "__init__", init_with)
    with pytest.raises(KeyboardInterrupt):
        SFT().train(fresh_student(), data, train, SFTMethodConfig(), tmp_path / "killed")
    extra[:] = [check := CheckResumedMasters()]
    resumed = SFT().train(fresh_student(), data, train, SFTMethodConfig(), tmp_path / "killed", resume=True)
    assert check.checked
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert a.dtype == b.dtype == torch.float32
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)


def test_lora_base_stays_frozen_in_bf16_without_masters_and_comes_back_exact(tmp_path):
    student = fresh_student("lora")
    base = {n: p.detach().clone() for n, p in student.model.named_parameters() if not p.requires_grad}
    trainer = StudentTrainer(student, rows_of(student), train_config(), tmp_path / "run")
    watch = Watch()
    trainer.add_callback(watch)
    trainer.train()
    masters = watch.optimizer.pairs
    trainable = [n for n, p in student.model.named_parameters() if p.requires_grad]
    assert len(masters) == len(trainable) and all("lora_" in n for n in trainable)
    assert watch.model_dtypes == {torch.bfloat16} and watch.master_dtypes == {torch.float32}
    after = dict(student.model.named_parameters())
    for name, value in base.items():
        assert after[name].dtype == torch.float32 and torch.equal(after[name], value), name  # the exact original
    trained = {n: after[n] for n in trainable}
    trainer.save_model(str(tmp_path / "final"))
    saved = load_file(str(tmp_path / "final" / "adapter_model.safetensors"))
    assert len(saved) == len(trained) and all(v.dtype == torch.float32 for v in saved.values())
    assert any(not torch.equal(v, torch.zeros_like(v)) for n, v in trained.items() if "lora_B" in n)


def test_extra_modules_stay_fp32_and_are_stepped_directly(tmp_path):
    student = fresh_student()
    extra = nn.Linear(TINY.hidden_size, 2)
    before = extra.weight.detach().clone()

    class ExtraLoss(StudentTrainer):
        def auxiliary_loss(self, outputs, inputs):
            features = outputs.last_hidden_state.mean(dim=1)
            return self._module().extra["head"](features.float()).pow(2).mean(), {}

    trainer = ExtraLoss(student, rows_of(student), train_config(), tmp_path / "run", extra_modules={"head": extra})
    watch = Watch()
    trainer.add_callback(watch)
    trainer.train()
    assert extra.weight.dtype == torch.float32 and not torch.equal(extra.weight, before)
    optimised = {id(p) for group in watch.optimizer.param_groups for p in group["params"]}
    assert id(extra.weight) in optimised  # no master copy: the module's own fp32 parameter


def test_prada_discriminator_and_soft_prompt_stay_fp32(tmp_path, monkeypatch):
    from cotdistill.methods import get_method
    from cotdistill.methods.prada import DISCRIMINATOR, PRADAConfig, PRADATrainer
    from cotdistill.methods.student_trainer import EXTRA_FILE
    from cotdistill.nn import SoftPromptConfig

    labelled = examples(12, "src_a") + examples(12, "src_b")
    data = TrainData(labelled, [Example(f"u{i}", "tgt", f"What is {i} + 1?", "", None) for i in range(8)])
    config = PRADAConfig(lambda_max=0.5, discriminator_lr=1e-3, prompt=SoftPromptConfig(num_tokens=2))
    watch = Watch()
    original_init = PRADATrainer.__init__

    def init_with_watch(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.add_callback(watch)

    monkeypatch.setattr(PRADATrainer, "__init__", init_with_watch)
    trained = get_method("prada")().train(fresh_student(), data, train_config(), config, tmp_path)
    assert watch.model_dtypes == {torch.bfloat16}
    stepped_as_is = [p for group in watch.optimizer.param_groups for p in group["params"]]
    assert {p.dtype for p in stepped_as_is} == {torch.float32}  # masters, soft prompt, discriminator
    assert watch.optimizer.param_groups[-1]["lr"] == 1e-3  # the discriminator's own constant group
    assert {p.dtype for p in trained.soft_prompt.parameters()} == {torch.float32}
    saved = load_file(str(tmp_path / "final" / EXTRA_FILE))
    assert any(k.startswith(DISCRIMINATOR) for k in saved) and all(v.dtype == torch.float32 for v in saved.values())


DDP_SCRIPT = """
import sys, torch
from cotdistill.methods import TrainData
from cotdistill.methods.sft import SFT, SFTMethodConfig
sys.path.insert(0, {tests!r})
from test_master_weights import examples, fresh_student, train_config
out = {out!r}
student = SFT().train(fresh_student(), TrainData(examples(16)), train_config(max_steps=3, batch_size=2), SFTMethodConfig(), out)
dtypes = sorted({{str(p.dtype) for p in student.model.parameters()}})
total = sum(float(p.double().sum()) for p in student.model.parameters())
rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
open(f"{{out}}/rank{{rank}}.txt", "w").write(f"{{world}} {{total!r}} {{','.join(dtypes)}}")
"""


def test_runs_under_accelerate_launch_with_two_processes(tmp_path):
    script, out = tmp_path / "train.py", tmp_path / "out"
    script.write_text(textwrap.dedent(DDP_SCRIPT.format(tests=str(Path(__file__).parent), out=str(out))))
    result = launch_two_processes(script)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [(out / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert ranks[0][0] == ranks[1][0] == "2"
    assert ranks[0][1] == ranks[1][1]  # the replicas' masters agree: gradients were synchronised
    assert ranks[0][2] == "torch.float32"
    saved = load_file(str(out / "final" / "model.safetensors"))
    assert {v.dtype for v in saved.values()} == {torch.float32}
