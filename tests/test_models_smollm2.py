"""Real-model test: SmolLM2-135M-Instruct LoRA SFT trains, saves, reloads and generates (slow)."""

from __future__ import annotations

import pytest

from cotdistill.errors import CotDistillError
from cotdistill.methods import TrainConfig, TrainData
from cotdistill.methods.sft import SFT, SFTMethodConfig
from cotdistill.models import Student, StudentConfig, StudentLoRAConfig, load_student
from cotdistill.models.pull import cached_path, pull
from cotdistill.tasks import get_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2_dir():
    try:
        return cached_path("smollm2-135m-instruct") or pull("smollm2-135m-instruct")
    except CotDistillError as exc:
        pytest.skip(f"SmolLM2-135M-Instruct weights unavailable (cotdistill models pull failed: {exc})")


def test_smollm2_lora_sft_trains_saves_reloads_and_generates(smollm2_dir, tmp_path):
    task = get_task("arith_shopping")
    train = task.examples("train", 8, 0)
    test = task.examples("test", 4, 0)
    cfg = StudentConfig(model="smollm2-135m-instruct", finetune="lora", lora=StudentLoRAConfig(r=8, alpha=16))
    student = load_student(cfg)
    assert student.uses_chat_template and student.is_peft
    before = {n: p.detach().clone() for n, p in student.model.named_parameters() if p.requires_grad}
    settings = TrainConfig(max_steps=2, batch_size=4, lr=1e-3, logging_steps=1, progress=False)
    student = SFT().train(student, TrainData(train), settings, SFTMethodConfig(), tmp_path)
    changed = [n for n, p in student.model.named_parameters() if n in before and not p.equal(before[n])]
    assert changed, "LoRA weights did not change"
    loaded = Student.load(tmp_path / "final")
    prompts = [loaded.prompt(e.question, task.answer_instruction) for e in test]
    outputs = loaded.generate(prompts, max_new_tokens=32, batch_size=4, progress=False)
    assert outputs == student.generate(prompts, max_new_tokens=32, batch_size=4, progress=False)
    scores = [task.score(o[0], e) for o, e in zip(outputs, test)]
    assert all(o[0] for o in outputs) and len(scores) == len(test)
