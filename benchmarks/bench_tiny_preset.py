"""Accuracy and training time of tiny-preset sizes on the default recipe's source domains.

Trains a fresh tiny student with SFT on oracle rationales of arith_shopping + arith_cooking
(400 train examples each) and scores 50 test questions per domain (strict accuracy).

    python benchmarks/bench_tiny_preset.py '{"tiny": {"num_layers": 3}, "train": {"epochs": 12, "lr": 3e-3}}'

Prints one JSON line (config, train seconds, eval seconds, accuracy per domain); append it to
benchmarks/results/tiny_preset.jsonl.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

from cotdistill.methods import TrainConfig, TrainData, get_method
from cotdistill.models import StudentConfig, TinyConfig, load_student
from cotdistill.tasks import get_task

DOMAINS = ("arith_shopping", "arith_cooking")


def main() -> None:
    cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    train, test = [], {}
    for name in DOMAINS:
        task = get_task(name)
        train += task.examples("train", 400, 0)
        test[name] = task.examples("test", 50, 0)
    student = load_student(
        StudentConfig(tiny=TinyConfig(**cfg.get("tiny", {}))), [e.question + " " + e.rationale for e in train]
    )
    params = sum(p.numel() for p in student.model.parameters())
    settings = TrainConfig(progress=False, logging_steps=100, **cfg.get("train", {}))
    method = get_method("sft")
    start = time.time()
    with tempfile.TemporaryDirectory() as out:
        student = method().train(student, TrainData(train), settings, method.Config(), out)
    trained = time.time()
    accuracy = {}
    for name, examples in test.items():
        task = get_task(name)
        prompts = [student.prompt(e.question, task.answer_instruction) for e in examples]
        outputs = student.generate(prompts, max_new_tokens=64, batch_size=64, progress=False)
        accuracy[name] = sum(task.score(o[0], e).strict for o, e in zip(outputs, examples)) / len(examples)
    row = {
        "cfg": cfg,
        "parameters": params,
        "train_s": round(trained - start, 1),
        "eval_s": round(time.time() - trained, 1),
        "accuracy": accuracy,
    }
    print(json.dumps(row))


if __name__ == "__main__":
    main()
