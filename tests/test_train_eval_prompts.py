"""``cotdistill train`` and ``cotdistill eval`` prompt a suite domain named unlike its task alike."""

from __future__ import annotations

import dataclasses
import json

import yaml

from cotdistill.cli import main
from cotdistill.models import Student
from cotdistill.tasks.suite import DomainSpec, Role, SuiteConfig, load_suite, make_suite


def test_train_prompt_of_a_renamed_domain_equals_the_eval_prompt(tmp_path, monkeypatch):
    suite_cfg = SuiteConfig(
        seed=0, domains=[DomainSpec(task="arith_shopping", name="shop", role=Role.SOURCE, n_train=4, n_dev=0, n_test=1)]
    )
    suite = load_suite(make_suite(suite_cfg, tmp_path / "suite"))
    asked = suite.examples("shop", "test")[0]
    train = [*suite.examples("shop", "train"), dataclasses.replace(asked, id="asked")]  # the same question
    with (tmp_path / "data.jsonl").open("w") as handle:
        handle.writelines(json.dumps(e.to_dict()) + "\n" for e in train)
    recipe = {
        "data": str(tmp_path / "data.jsonl"),
        "suite": str(tmp_path / "suite"),
        "student": {"model": "tiny", "tiny": {"hidden_size": 32, "num_heads": 2, "intermediate_size": 64}},
        "train": {"max_steps": 1, "batch_size": 4, "progress": False},
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))

    prompts: dict[str, list[tuple[str, str]]] = {"train": [], "eval": []}
    stage = "train"
    original = Student.prompt

    def recording(self, question, instruction=None):
        text = original(self, question, instruction)
        prompts[stage].append((question, text))
        return text

    monkeypatch.setattr(Student, "prompt", recording)
    assert main(["train", str(tmp_path / "r.yaml"), "--output", str(tmp_path / "out")]) == 0
    stage = "eval"
    evaluation = [str(tmp_path / "out" / "final"), "--suite", str(tmp_path / "suite"), "--output", str(tmp_path / "e")]
    assert main(["eval", *evaluation, "max_new_tokens=2", "bootstrap_resamples=10"]) == 0

    eval_prompt = dict(prompts["eval"])[asked.question]
    assert suite.task("shop").answer_instruction in eval_prompt
    assert dict(prompts["train"])[asked.question] == eval_prompt
