"""Experiment tracking: ``train.report_to`` reaches the Trainer; TensorBoard gets the method's own scalars."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cotdistill.config import from_dict
from cotdistill.errors import ConfigError
from cotdistill.methods import TrainConfig, TrainData, get_method
from cotdistill.methods.prada import PRADAConfig
from cotdistill.methods.redis.train import ReDisTrainConfig
from cotdistill.methods.tracking import parse_report_to, tracking_arguments
from cotdistill.methods.training_args import build_training_args
from cotdistill.models import StudentConfig, load_student
from cotdistill.pipelines.cot import VariantConfig
from cotdistill.tasks import Example


def read_scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the TensorBoard event files under ``directory``: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(directory.rglob("events.out.tfevents.*"))
    assert files, f"no TensorBoard event file under {directory}"
    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in files:
        accumulator = EventAccumulator(str(path))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend((e.step, e.value) for e in accumulator.Scalars(tag))
    return scalars


def _example(i: int, domain: str, labelled: bool = True) -> Example:
    a, b = i % 7, i % 5
    rationale = f"{a} + {b} = {a + b}. The answer is {a + b}." if labelled else None
    return Example(
        f"{domain}-{i}", domain, f"[{domain}] What is {a} plus {b}?", str(a + b) if labelled else "", rationale
    )


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models on a shared CPU run far faster single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_prada_scalars_reach_tensorboard(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard is in the dev extra: pip install -e '.[dev]'")
    labelled = [_example(i, d) for d in ("src_a", "src_b") for i in range(8)]
    data = TrainData(labelled, [_example(i, "tgt", labelled=False) for i in range(6)])
    tiny = {"hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "vocab_size": 300}
    texts = [e.question for e in labelled + data.unlabelled] + [e.rationale for e in labelled]
    student = load_student(from_dict(StudentConfig, {"tiny": tiny}), texts)
    train = TrainConfig(max_steps=4, batch_size=4, logging_steps=1, progress=False, report_to="tensorboard")
    get_method("prada")().train(student, data, train, PRADAConfig(lambda_max=0.5), tmp_path)

    scalars = read_scalars(tmp_path / "runs")
    for tag in ("train/sft_loss", "train/domain_loss", "train/domain_acc", "train/lambda", "train/loss"):
        assert [step for step, _ in scalars[tag]] == [1, 2, 3, 4], tag
    assert all(0.0 <= value <= 1.0 for _, value in scalars["train/domain_acc"])
    lambdas = [value for _, value in scalars["train/lambda"]]
    assert lambdas == sorted(lambdas) and lambdas[-1] > lambdas[0]  # the DANN schedule rises


def test_grpo_reward_components_reach_tensorboard(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard is in the dev extra: pip install -e '.[dev]'")
    from cotdistill.methods.lm_guided.reasoner import Reasoner
    from cotdistill.methods.lm_guided.rewarder import RewardConfig, Rewarder
    from cotdistill.methods.lm_guided.rl import RLConfig, train_grpo
    from test_lm_guided_rl import FirstWordReasoner, multihop_rows, tiny_model_and_tokenizer

    rows, rationales = multihop_rows(2)
    model, tokenizer = tiny_model_and_tokenizer([r["prompt"] + " " + t for r, t in zip(rows, rationales)])
    weights = {"exact_match": 1.0, "f1": 1.0, "length": 0.2}
    rewarder = Rewarder(Reasoner(FirstWordReasoner()), RewardConfig(weights=weights, min_words=4, max_words=12))
    cfg = RLConfig(max_steps=1, prompts_per_step=1, num_generations=2, max_completion_length=8, report_to="tensorboard")
    train_grpo(model, tokenizer, rows, rewarder, cfg, tmp_path)

    scalars = read_scalars(tmp_path / "checkpoints" / "runs")
    for name in weights:
        assert f"train/rewards/{name}/mean" in scalars, sorted(scalars)
    assert "train/reward" in scalars


def test_report_to_is_validated_and_passed_through() -> None:
    with pytest.raises(ConfigError, match=r"report_to.*'tensorbord'"):
        from_dict(TrainConfig, {"report_to": "tensorbord"}, where="recipe.yaml")
    with pytest.raises(ConfigError, match="report_to"):
        from_dict(ReDisTrainConfig, {"report_to": "nope"}, where="recipe.yaml")
    assert parse_report_to("none") == [] and parse_report_to(" tensorboard , wandb ") == ["tensorboard", "wandb"]
    assert build_training_args(TrainConfig(precision="fp32"), "out").report_to == []
    assert tracking_arguments("none", "exp", suffix="/align") == {"report_to": "none", "run_name": "exp/align"}


def test_a_tracker_that_is_not_installed_stops_before_training(monkeypatch) -> None:
    import transformers.integrations

    monkeypatch.setattr(transformers.integrations, "get_available_reporting_integrations", lambda: [])
    with pytest.raises(ConfigError, match=r"wandb is not installed \(pip install wandb\)"):
        tracking_arguments("wandb", "")


def test_pipeline_variants_get_distinct_run_names() -> None:
    variant = VariantConfig(name="prada", method="prada")
    assert variant.train_config(TrainConfig(run_name="exp1"), 2).run_name == "exp1/prada/seed-2"
    assert variant.train_config(TrainConfig(), 0).run_name == "prada/seed-0"
