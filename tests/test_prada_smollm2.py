"""PRADA on the real SmolLM2-135M-Instruct with LoRA: a few steps, checkpoint round trip with the
soft prompt, identical greedy generations after reload. Needs the pulled preset (slow)."""

import json

import pytest
import torch

from cotdistill.methods import TrainConfig, TrainData, get_method
from cotdistill.methods.prada import PRADAConfig
from cotdistill.methods.sft import FINAL_DIR, SUMMARY_FILE
from cotdistill.models import Student, StudentConfig, load_student
from cotdistill.models.pull import cached_path
from cotdistill.nn import SoftPromptConfig
from cotdistill.tasks import get_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2() -> str:
    path = cached_path("smollm2-135m-instruct")
    if path is None:
        pytest.skip("SmolLM2-135M-Instruct is not pulled (run `cotdistill models pull smollm2-135m-instruct`)")
    return "smollm2-135m-instruct"


def test_prada_lora_on_smollm2_round_trips(tmp_path, smollm2) -> None:
    torch.manual_seed(0)
    student = load_student(StudentConfig(model=smollm2, finetune="lora"))
    source = get_task("arith_shopping").examples("train", 8, seed=0)
    target = [e for e in get_task("coin_flip").examples("train", 4, seed=0)]
    data = TrainData(source, [type(e)(e.id, e.domain, e.question, "") for e in target])
    config = PRADAConfig(lambda_max=0.5, prompt=SoftPromptConfig(num_tokens=4, encoder_hidden_size=64), target_rows=2)
    train = TrainConfig(max_steps=2, batch_size=2, max_length=256, logging_steps=1, progress=False, lr=1e-4)
    trained = get_method("prada")().train(student, data, train, config, tmp_path)

    steps = [e for e in _training_log(tmp_path) if "domain_loss" in e]
    assert len(steps) == 2 and all(torch.isfinite(torch.tensor(e["domain_loss"])) for e in steps)
    loaded = Student.load(tmp_path / FINAL_DIR)
    assert loaded.is_peft and loaded.soft_prompt is not None and loaded.soft_prompt.length == 4
    prompts = [trained.prompt(e.question, data.instruction(e.domain)) for e in source[:2]]
    assert loaded.generate(prompts, max_new_tokens=12, progress=False) == trained.generate(
        prompts, max_new_tokens=12, progress=False
    )


def _training_log(output_dir) -> list[dict]:
    """The Trainer's log history that ``train`` wrote into ``train_summary.json``."""
    return json.loads((output_dir / SUMMARY_FILE).read_text(encoding="utf-8"))["log"]
