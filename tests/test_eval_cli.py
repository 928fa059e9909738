"""``cotdistill eval CHECKPOINT --suite DIR`` on a saved tiny student."""

import json

from cotdistill.cli import main
from cotdistill.models import StudentConfig, TinyConfig, load_student
from cotdistill.tasks.suite import DomainSpec, Role, SuiteConfig, load_suite, make_suite


def test_eval_command_writes_report(tmp_path, capsys):
    suite_cfg = SuiteConfig(
        seed=0,
        domains=[
            DomainSpec(task="arith_shopping", role=Role.SOURCE, n_train=4, n_dev=0, n_test=5),
            DomainSpec(task="coin_flip", name="coins", role=Role.TARGET_FAR, n_train=0, n_dev=0, n_test=5),
        ],
    )
    suite = load_suite(make_suite(suite_cfg, tmp_path / "suite"))
    corpus = [e.question for d in suite.domains() for e in suite.examples(d, "test")]
    tiny = TinyConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, vocab_size=300)
    load_student(StudentConfig(model="tiny", tiny=tiny), corpus=corpus).save(tmp_path / "ckpt")

    args = [
        "eval",
        str(tmp_path / "ckpt"),
        "--suite",
        str(tmp_path / "suite"),
        "max_new_tokens=4",
        "bootstrap_resamples=20",
    ]
    assert main(args) == 0
    assert "report.md" in capsys.readouterr().out
    report = json.loads((tmp_path / "ckpt" / "eval" / "report.json").read_text())
    assert set(report["examples"]) == {"arith_shopping", "coins"}
    assert report["summary"]["domains"]["coins"]["role"] == "target_far"
    assert report["config"]["max_new_tokens"] == 4 and report["meta"]["suite"] == str(tmp_path / "suite")

    assert main([*args[:4], "--domains", "coin"]) == 2
    assert "did you mean 'coins'" in capsys.readouterr().err
    assert main([*args[:4], "max_new_token=4"]) == 2
    assert "unknown key 'max_new_token'; did you mean 'max_new_tokens'" in capsys.readouterr().err


def test_eval_command_accepts_a_plain_model_directory(tmp_path, capsys):
    suite_cfg = SuiteConfig(domains=[DomainSpec(task="coin_flip", role=Role.SOURCE, n_train=0, n_dev=0, n_test=3)])
    suite = load_suite(make_suite(suite_cfg, tmp_path / "suite"))
    tiny = TinyConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, vocab_size=300)
    student = load_student(
        StudentConfig(model="tiny", tiny=tiny), corpus=[e.question for e in suite.examples("coin_flip", "test")]
    )
    student.model.save_pretrained(tmp_path / "hf")
    student.tokenizer.save_pretrained(tmp_path / "hf")
    out = tmp_path / "zero-shot"
    args = ["eval", str(tmp_path / "hf"), "--suite", str(tmp_path / "suite"), "-o", str(out), "max_new_tokens=4"]
    assert main(args) == 0
    assert json.loads((out / "report.json").read_text())["summary"]["domains"]["coin_flip"]["n"] == 3
