"""PRADA end to end on a tiny student: mixed batches, logged adversarial metrics, the soft prompt
saved and reloaded with the checkpoint, LoRA, and the 'both off' ablation being exactly SFT."""

import json

import pytest
import torch

from cotdistill.config import from_dict
from cotdistill.errors import ConfigError, CotDistillError
from cotdistill.methods import TrainConfig, TrainData, get_method
from cotdistill.methods.prada import DISCRIMINATOR, MixedBatchSampler, PRADAConfig
from cotdistill.methods.sft import FINAL_DIR, SUMMARY_FILE
from cotdistill.methods.student_trainer import EXTRA_FILE
from cotdistill.models import Student, StudentConfig, load_student
from cotdistill.nn import SoftPrompt, SoftPromptConfig, adversarial_lambda
from cotdistill.tasks import Example


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models on a shared CPU run far faster single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _example(i: int, domain: str, labelled: bool = True) -> Example:
    a, b = i % 7, i % 5
    answer = str(a + b)
    rationale = f"{a} + {b} = {answer}. The answer is {answer}." if labelled else None
    return Example(f"{domain}-{i}", domain, f"[{domain}] What is {a} plus {b}?", answer if labelled else "", rationale)


@pytest.fixture
def data() -> TrainData:
    labelled = [_example(i, "src_a") for i in range(12)] + [_example(i, "src_b") for i in range(12)]
    return TrainData(labelled, [_example(i, "tgt", labelled=False) for i in range(10)])


def _student(data: TrainData, finetune: str = "full") -> Student:
    texts = [e.question for e in data.labelled + data.unlabelled] + [e.rationale for e in data.labelled]
    config = {
        "finetune": finetune,
        "tiny": {"hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "vocab_size": 300},
        "lora": {"r": 4},
    }
    return load_student(from_dict(StudentConfig, config), texts)


def _train_config(**kw) -> TrainConfig:
    return TrainConfig(**{"max_steps": 6, "batch_size": 4, "logging_steps": 1, "progress": False, "lr": 3e-3, **kw})


def test_config_validation_names_key_and_value() -> None:
    with pytest.raises(ConfigError, match="lambda_max.*-1"):
        from_dict(PRADAConfig, {"lambda_max": -1.0}, where="r.yaml")
    with pytest.raises(ConfigError, match="pooling 'prompt' needs soft_prompts"):
        from_dict(PRADAConfig, {"pooling": "prompt", "soft_prompts": False}, where="r.yaml")
    with pytest.raises(ConfigError, match="prompt: num_tokens must be >= 1, got 0"):
        from_dict(PRADAConfig, {"prompt": {"num_tokens": 0}}, where="r.yaml")
    config = from_dict(PRADAConfig, {"pooling": "last", "prompt": {"reparameterization": "lstm"}}, where="r.yaml")
    assert config.pooling == "last" and config.prompt.reparameterization == "lstm"


def test_mixed_batches_hold_labelled_then_unlabelled_rows() -> None:
    labelled, unlabelled = list(range(10)), list(range(10, 13))
    sampler = MixedBatchSampler(labelled, unlabelled, [5] * 13, 4, 2, seed=3)
    order = list(sampler)
    assert len(order) == len(sampler) == 10 + 3 * 2
    batches = [order[i : i + 6] for i in range(0, len(order), 6)]
    for batch in batches:
        *head, tail1, tail2 = batch
        assert all(i < 10 for i in head) and tail1 >= 10 and tail2 >= 10
    assert sorted(i for i in order if i < 10) == labelled  # one pass over labelled rows per epoch
    assert order == list(MixedBatchSampler(labelled, unlabelled, [5] * 13, 4, 2, seed=3))
    sampler.set_epoch(1)
    assert list(sampler) != order


def test_prada_trains_logs_and_round_trips_the_soft_prompt(tmp_path, data) -> None:
    student = _student(data)
    method = get_method("prada")()
    config = PRADAConfig(lambda_max=0.5, prompt=SoftPromptConfig(num_tokens=3, per_domain_tokens=1))
    trained = method.train(student, data, _train_config(), config, tmp_path)

    steps = [entry for entry in _training_log(tmp_path) if "domain_loss" in entry]
    assert [e["step"] for e in steps] == list(range(1, 7))
    for entry in steps:
        assert entry["lambda"] == pytest.approx(adversarial_lambda((entry["step"] - 1) / 6, "dann", max_lambda=0.5))
        assert 0.0 <= entry["domain_acc"] <= 1.0 and entry["domain_loss"] > 0 and entry["sft_loss"] > 0
    assert (tmp_path / FINAL_DIR / EXTRA_FILE).exists()

    assert isinstance(trained.soft_prompt, SoftPrompt) and trained.soft_prompt.length == 4
    assert trained.soft_prompt.domains == ["src_a", "src_b", "tgt"]
    loaded = Student.load(tmp_path / FINAL_DIR)
    assert isinstance(loaded.soft_prompt, SoftPrompt)
    for (name, want), got in zip(trained.soft_prompt.state_dict().items(), loaded.soft_prompt.state_dict().values()):
        assert torch.equal(want.cpu(), got), name
    prompts = [trained.prompt(e.question, data.instruction(e.domain)) for e in data.labelled[:3]]
    assert loaded.generate(prompts, max_new_tokens=8, progress=False) == trained.generate(
        prompts, max_new_tokens=8, progress=False
    )


def test_prompt_pooling_with_lora_trains_prompt_and_adapters_only(tmp_path, data, caplog) -> None:
    student = _student(data, finetune="lora")
    method = get_method("prada")()
    config = PRADAConfig(
        lambda_schedule="constant", lambda_max=1.0, pooling="prompt", prompt=SoftPromptConfig(num_tokens=2)
    )
    method.attach_soft_prompt(student, data, config)
    prompt_before = {k: v.clone() for k, v in student.soft_prompt.state_dict().items()}
    base_before = {k: v.clone() for k, v in student.model.named_parameters() if "lora_" not in k}
    method.train(student, data, _train_config(max_steps=3), config, tmp_path)
    assert "hidden states do not depend on the question" in caplog.text

    changed = [k for k, v in student.soft_prompt.state_dict().items() if not torch.equal(v, prompt_before[k])]
    assert "shared.embedding.weight" in changed
    assert all(torch.equal(v, base_before[k]) for k, v in student.model.named_parameters() if "lora_" not in k)
    loaded = Student.load(tmp_path / FINAL_DIR)
    assert loaded.is_peft and loaded.soft_prompt is not None
    steps = [e for e in _training_log(tmp_path) if "lambda" in e]
    assert all(e["lambda"] == 1.0 for e in steps)


def test_both_switches_off_is_exactly_sft(tmp_path, data) -> None:
    sft_log = _losses(get_method("sft"), get_method("sft").Config(), data, tmp_path / "sft")
    prada_config = PRADAConfig(adversarial=False, soft_prompts=False)
    prada_log = _losses(get_method("prada"), prada_config, data, tmp_path / "prada")
    assert len(sft_log) == 3 and prada_log == sft_log


def _losses(method_cls, config, data, out) -> list[float]:
    torch.manual_seed(0)
    student = _student(data)
    trained = method_cls().train(student, data, _train_config(max_steps=3), config, out)
    assert trained.soft_prompt is None
    return [e["sft_loss"] for e in _training_log(out) if "sft_loss" in e]


def test_adversarial_needs_two_domain_classes(tmp_path, data) -> None:
    one_source = TrainData([e for e in data.labelled if e.domain == "src_a"])
    with pytest.raises(CotDistillError, match="two domain classes"):
        get_method("prada")().train(_student(data), one_source, _train_config(), PRADAConfig(), tmp_path)


def test_discriminator_is_an_extra_module_only_when_adversarial(data) -> None:
    student = _student(data)
    method = get_method("prada")()
    assert method.extra_modules(student, data, PRADAConfig(adversarial=False)) == {}
    modules = method.extra_modules(student, data, PRADAConfig(domain_labels="source_target"))
    assert modules[DISCRIMINATOR].num_domains == 2
    assert method.extra_modules(student, data, PRADAConfig())[DISCRIMINATOR].num_domains == 3


def _training_log(output_dir) -> list[dict]:
    """The Trainer's log history that ``train`` wrote into ``train_summary.json``."""
    return json.loads((output_dir / SUMMARY_FILE).read_text(encoding="utf-8"))["log"]


def test_discriminator_gradient_does_not_shrink_the_students_step(tmp_path, data) -> None:
    """At lambda 0 the student gets no adversarial gradient, so its SFT losses must not depend on the
    discriminator: the two are clipped separately (one global norm would let a large discriminator
    gradient scale the student's update down)."""

    def sft_losses(hidden: int) -> list[float]:
        config = PRADAConfig(
            lambda_schedule="constant", lambda_max=0.0, soft_prompts=False, discriminator_hidden=hidden
        )
        out = tmp_path / str(hidden)
        get_method("prada")().train(_student(data), data, _train_config(max_grad_norm=0.05), config, out)
        return [e["sft_loss"] for e in _training_log(out) if "sft_loss" in e]

    assert sft_losses(4) == sft_losses(256)
