"""``method: kd`` end to end on tiny models: token normalisation under gradient accumulation (online
and top-k), the reusable top-k cache, on-policy batches, KD + PRADA, the vocabulary check, config
errors, and ``cotdistill train`` with a depth-pruned student."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
import yaml
from transformers import TrainerCallback

from cotdistill.cli import main
from cotdistill.config import from_dict
from cotdistill.errors import ConfigError
from cotdistill.methods import TrainConfig, TrainData, get_method
from cotdistill.methods.data import IGNORE_INDEX, Collator
from cotdistill.methods.kd.config import KDConfig, KDTeacherConfig
from cotdistill.methods.kd.method import KD, load_local_teacher
from cotdistill.methods.kd.scoring import LocalScorer
from cotdistill.methods.kd.sources import OnlineSource
from cotdistill.methods.kd.trainer import KDTrainer
from cotdistill.methods.kd.vocab import VocabularyMismatchError
from cotdistill.methods.sft import SUMMARY_FILE
from cotdistill.models import Student, StudentConfig, TinyConfig, load_student
from cotdistill.models.tiny import build_tiny_model
from cotdistill.tasks import Example

TINY = TinyConfig(hidden_size=32, num_layers=3, num_heads=2, intermediate_size=64, vocab_size=300)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def examples(n: int, domain: str = "toy") -> list[Example]:
    out = []
    for i in range(n):
        a, b = 3 * i % 17, 5 * i % 13
        steps = " ".join(f"{a} + {k} = {a + k}." for k in range(i % 3 + 1))  # mixed lengths
        out.append(
            Example(f"{domain}{i}", domain, f"What is {a} + {b}?", str(a + b), f"{steps} The answer is {a + b}.")
        )
    return out


CORPUS = [e.question + " " + e.rationale for e in examples(40)]


def fresh_student() -> Student:
    return load_student(StudentConfig(tiny=TINY), CORPUS)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """A tiny teacher with the student's tokenizer and other weights, saved as a student directory."""
    student = fresh_student()
    teacher = Student(build_tiny_model(replace(TINY, seed=7), student.tokenizer), student.tokenizer)
    path = tmp_path_factory.mktemp("teacher")
    teacher.save(path)
    return path


def kd_config(teacher_dir, **kw) -> KDConfig:
    return KDConfig(teacher=KDTeacherConfig(model=str(teacher_dir)), **kw)


class GradCapture(TrainerCallback):
    def __init__(self):
        self.grads: dict[str, torch.Tensor] = {}

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def reference_gradients(teacher_dir, config: KDConfig, data: list[Example]) -> dict[str, torch.Tensor]:
    """(1 - r) CE + r KL(teacher || student) over every completion token of the batch, by hand."""
    student = fresh_student()
    teacher = load_local_teacher(student, config).model
    batch = Collator(0)(KD().build_rows(student, TrainData(data), config, TrainConfig()))
    targets = batch["labels"][:, 1:]
    mask = targets != IGNORE_INDEX
    logits = student.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    with torch.no_grad():
        teacher_logits = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    ce = F.cross_entropy(logits[mask], targets[mask], reduction="sum")
    t_log, s_log = F.log_softmax(teacher_logits[mask], -1), F.log_softmax(logits[mask], -1)
    kl = (t_log.exp() * (t_log - s_log)).sum()
    ((1 - config.kd_ratio) * ce + config.kd_ratio * kl).div(mask.sum()).backward()
    return {f"model.{n}": p.grad for n, p in student.model.named_parameters()}


def captured_gradients(teacher_dir, config, data, batch_size, accum, out) -> dict[str, torch.Tensor]:
    student = fresh_student()
    method = KD()
    train = TrainConfig(max_steps=1, batch_size=batch_size, grad_accum=accum, max_grad_norm=0.0, progress=False)
    source = method.teacher_source(student, TrainData(data), train, config)
    rows = method.build_rows(student, TrainData(data), config, train)
    trainer = KDTrainer(student, rows, train, out, method_config=config, teacher_source=source)
    capture = GradCapture()
    trainer.add_callback(capture)
    trainer.train()
    return capture.grads


@pytest.mark.parametrize("source", ["online", "topk"])
def test_gradient_accumulation_normalises_kd_by_all_completion_tokens(teacher_dir, tmp_path, source):
    data = examples(4)  # different completion lengths: per-micro-batch means would differ
    # chunk_size 5 also checks that chunking changes nothing; top-k with k = V is the full divergence
    config = kd_config(
        teacher_dir, kd_ratio=0.7, chunk_size=5, source=source, top_k=TINY.vocab_size, cache_dir=str(tmp_path / "cache")
    )
    expected = reference_gradients(teacher_dir, config, data)
    for batch_size, accum in ((4, 1), (2, 2)):
        grads = captured_gradients(teacher_dir, config, data, batch_size, accum, tmp_path / f"run{batch_size}")
        assert grads.keys() == expected.keys()
        for name, grad in grads.items():
            assert torch.allclose(grad, expected[name], atol=2e-5), name


def test_topk_cache_is_built_once_and_reused_by_later_runs(teacher_dir, tmp_path, monkeypatch):
    calls = []
    score = LocalScorer.score
    monkeypatch.setattr(LocalScorer, "score", lambda self, rows, k: calls.append(len(rows)) or score(self, rows, k))
    data = TrainData(examples(10))
    config = kd_config(teacher_dir, source="topk", top_k=8, cache_dir=str(tmp_path / "cache"))
    train = TrainConfig(max_steps=2, batch_size=4, logging_steps=1, progress=False, lr=3e-3)
    get_method("kd")().train(fresh_student(), data, train, config, tmp_path / "a")
    assert sum(calls) == 10
    get_method("kd")().train(fresh_student(), data, replace(train, seed=3), config, tmp_path / "b")
    assert sum(calls) == 10  # the second run (another seed) reads the cache
    get_method("kd")().train(fresh_student(), data, train, replace(config, top_k=4), tmp_path / "c")
    assert sum(calls) == 20  # another k is another cache
    (shards,) = [
        list(d.glob("shard-*.safetensors"))
        for d in (tmp_path / "cache").iterdir()
        if d.name and json.loads((d / "manifest.json").read_text())["k"] == 8
    ]
    assert shards
    log = json.loads((tmp_path / "a" / SUMMARY_FILE).read_text())["log"]
    assert any("kd_loss" in entry for entry in log)


def test_on_policy_trains_on_student_samples_with_the_divergence_only(teacher_dir, tmp_path, monkeypatch):
    seen = []
    chunk_loss = OnlineSource.chunk_loss

    def spy(self, loss, inputs):
        seen.append({name: inputs[name].clone() for name in ("input_ids", "labels", "weight", "attention_mask")})
        return chunk_loss(self, loss, inputs)

    monkeypatch.setattr(OnlineSource, "chunk_loss", spy)
    data = TrainData(examples(8))
    config = kd_config(teacher_dir, on_policy=1.0, divergence="reverse_kl", max_new_tokens=6)
    train = TrainConfig(max_steps=2, batch_size=4, logging_steps=1, progress=False, lr=3e-3)
    get_method("kd")().train(fresh_student(), data, train, config, tmp_path / "run")
    assert len(seen) == 2
    gold = KD().build_rows(fresh_student(), data, config, train)
    first = [next(i for i, x in enumerate(r["labels"]) if x != IGNORE_INDEX) for r in gold]
    gold_prompts = {tuple(r["input_ids"][:f]) for r, f in zip(gold, first, strict=True)}
    gold_completions = {tuple(x for x in r["labels"] if x != IGNORE_INDEX) for r in gold}
    for batch in seen:
        assert float(batch["weight"].abs().sum()) == 0.0  # no CE on the student's own samples
        for ids, labels, n in zip(batch["input_ids"], batch["labels"], batch["attention_mask"].sum(1), strict=True):
            completion = labels[:n][labels[:n] != IGNORE_INDEX].tolist()
            assert 1 <= len(completion) <= config.max_new_tokens
            assert tuple(ids[: int(n) - len(completion)].tolist()) in gold_prompts
            assert tuple(completion) not in gold_completions


def test_with_bf16_master_weights_the_online_teacher_runs_in_bf16_too(teacher_dir, tmp_path):
    data = examples(8)
    config = kd_config(teacher_dir)
    train = TrainConfig(
        max_steps=2, batch_size=4, logging_steps=1, precision="bf16", master_weights=True, progress=False
    )
    student = fresh_student()
    source = KD().teacher_source(student, TrainData(data), train, config)
    rows = KD().build_rows(student, TrainData(data), config, train)
    trainer = KDTrainer(student, rows, train, tmp_path, method_config=config, teacher_source=source)
    assert trainer.precision.master_weights
    assert all(p.dtype is torch.bfloat16 for p in source.teacher.model.parameters())
    trainer.train()
    kd_losses = [e["kd_loss"] for e in trainer.state.log_history if "kd_loss" in e]
    assert kd_losses and all(0 < loss < float("inf") for loss in kd_losses)
    assert all(p.dtype is torch.float32 for p in student.model.parameters())


def test_kd_with_prada_trains_the_discriminator_too(teacher_dir, tmp_path):
    labelled = examples(8, "src_a") + examples(8, "src_b")
    unlabelled = [replace(e, answer="", rationale=None) for e in examples(6, "tgt")]
    args = {"teacher": {"model": str(teacher_dir)}, "divergence": "jsd", "target_rows": 2}
    config = from_dict(get_method("kd_prada").Config, args)
    train = TrainConfig(max_steps=3, batch_size=4, logging_steps=1, progress=False, lr=3e-3)
    student = get_method("kd_prada")().train(fresh_student(), TrainData(labelled, unlabelled), train, config, tmp_path)
    assert student.soft_prompt is not None
    log = json.loads((tmp_path / SUMMARY_FILE).read_text())["log"]
    assert any("kd_loss" in e and "domain_loss" in e for e in log)


def test_vocabulary_mismatch_stops_before_training(tmp_path):
    student = fresh_student()
    other = load_student(StudentConfig(tiny=TINY), [f"zebra {i} quux {i * 7}" for i in range(50)])
    other.save(tmp_path / "other")
    with pytest.raises(VocabularyMismatchError) as error:
        KD().train(
            student,
            TrainData(examples(4)),
            TrainConfig(max_steps=1, progress=False),
            kd_config(tmp_path / "other"),
            tmp_path / "run",
        )
    message = str(error.value)
    assert "student tokenizer" in message and "teacher tokenizer" in message and str(tmp_path / "other") in message
    assert "first (student vs teacher) " in message and "GOLD" in message
    assert not (tmp_path / "run").exists()


def test_a_missing_teacher_is_named_as_the_teacher(tmp_path):
    with pytest.raises(ConfigError, match=r"^teacher\.model '.*not-trained-yet': not a preset"):
        load_local_teacher(fresh_student(), kd_config(tmp_path / "not-trained-yet"))


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="served teacher.*source: topk"):
        from_dict(KDConfig, {"teacher": {"model": "m", "base_url": "http://127.0.0.1:1/v1"}}, where="r.yaml")
    with pytest.raises(ConfigError, match="on_policy > 0 needs"):
        from_dict(KDConfig, {"on_policy": 0.5, "source": "topk"}, where="r.yaml")
    with pytest.raises(ConfigError, match="'divergence' must be one of"):
        from_dict(KDConfig, {"divergence": "kl"}, where="r.yaml")
    with pytest.raises(ConfigError, match="kd_ratio must be in"):
        from_dict(KDConfig, {"kd_ratio": 2}, where="r.yaml")


def test_cli_trains_a_depth_pruned_student_with_kd(teacher_dir, tmp_path):
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(e.to_dict()) + "\n" for e in examples(8)))
    recipe = {
        "data": str(tmp_path / "data.jsonl"),
        "student": {"model": str(teacher_dir), "keep_layers": [0, 2]},
        "method": "kd",
        "method_args": {"teacher": {"model": str(teacher_dir)}, "divergence": "forward_kl"},
        "train": {"max_steps": 2, "batch_size": 4, "progress": False},
        "output": str(tmp_path / "out"),
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(tmp_path / "r.yaml")]) == 0
    trained = Student.load(tmp_path / "out" / "final")
    assert trained.model.config.num_hidden_layers == 2
    assert len(trained.model.get_decoder().layers) == 2
