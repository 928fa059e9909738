"""One process per output directory; a store written by two processes at once is repaired;
a source domain whose teacher produced nothing is refused before training."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cotdistill.cli import main
from cotdistill.distill.generate import GenerateConfig, generate_rationales
from cotdistill.distill.store import RationaleStore, load_records
from cotdistill.errors import CotDistillError
from cotdistill.locking import OutputLockedError, output_lock
from cotdistill.methods import TrainConfig, TrainData
from cotdistill.methods.sft import SFT, SFTMethodConfig
from cotdistill.pipelines.cot import CotConfig, CotPipeline
from cotdistill.tasks import get_task
from cotdistill.tasks.suite import SuiteConfig, load_suite, make_suite
from test_sft_trainer import examples, fresh_student

SRC = str(Path(__file__).parent.parent / "src")
HOLD = "import sys, time\nfrom cotdistill.locking import output_lock\nwith output_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n"


def hold(directory: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(directory)], env=env, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def oracle_recipe(tmp_path: Path, out: Path) -> Path:
    questions = get_task("arith_travel").examples("train", 3, 1)
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(e.to_dict()) + "\n" for e in questions))
    recipe = {"questions": str(tmp_path / "q.jsonl"), "output_dir": str(out), "generate": {"keep": "all"}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return tmp_path / "recipe.yaml"


def test_a_second_process_on_one_output_directory_is_refused_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "out"
    recipe = oracle_recipe(tmp_path, out)
    holder = hold(out)
    try:
        assert main(["generate", str(recipe), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"is in use by pid {holder.pid}" in err and "cotdistill.locking" not in err
        assert not (out / "rationales.jsonl").exists()
        with pytest.raises(OutputLockedError, match=f"pid {holder.pid}"):
            SFT().train(fresh_student(), TrainData(examples(4)), TrainConfig(max_steps=1), SFTMethodConfig(), out)
        assert main(["run", "--output", str(out), "seeds=[0]"]) == 2
        assert f"is in use by pid {holder.pid}" in capsys.readouterr().err
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # the kernel drops the lock with the process
        holder.wait()
    assert main(["generate", str(recipe), "--no-progress"]) == 0
    assert len(load_records(out / "rationales.jsonl")) == 3


def test_nested_locks_in_one_process_share_the_lock(tmp_path):
    with output_lock(tmp_path / "d"), output_lock(tmp_path / "d"):
        pass
    with output_lock(tmp_path / "d"):
        pass


def test_a_store_with_twice_written_keys_is_repaired_on_resume(tmp_path, caplog):
    questions = get_task("arith_travel").examples("train", 2, 1)
    cfg = GenerateConfig(keep="all")
    generate_rationales(cfg, questions, tmp_path, show_progress=False)
    store_path = tmp_path / "rationales.jsonl"
    rows = [json.loads(line) for line in store_path.read_text().splitlines()]
    second = dict(rows[0], rationale=rows[0]["rationale"] + " (second writer)")
    with store_path.open("a") as handle:  # what two processes at once used to leave behind
        handle.write(json.dumps(second) + "\n")
    generate_rationales(cfg, questions, tmp_path, show_progress=False)
    assert "stored twice" in caplog.text
    lines = [json.loads(line) for line in store_path.read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["rationale"].endswith("(second writer)")
    assert len(RationaleStore(store_path).records()) == 2


def test_a_source_domain_whose_teacher_produced_nothing_is_refused(tmp_path):
    suite_cfg = {
        "seed": 0,
        "domains": [
            {"task": "arith_shopping", "role": "source", "n_train": 6, "n_dev": 0, "n_test": 2},
            {"task": "gym_chain_sum", "role": "source", "n_train": 3, "n_dev": 0, "n_test": 2},
        ],
    }
    from cotdistill.config import from_dict

    config = from_dict(CotConfig, {"suite": suite_cfg})
    suite = load_suite(make_suite(from_dict(SuiteConfig, suite_cfg), tmp_path / "suite"))
    with pytest.raises(CotDistillError, match=r"source domain\(s\) gym_chain_sum: the teacher kept no rationale"):
        CotPipeline()._training_data(config, suite, tmp_path / "rationales")
