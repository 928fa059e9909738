"""Checkpoints: no code named by a checkpoint runs, a kill mid-write never blocks a resume, a
resume on other data or another model size is refused with one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from cotdistill.cli import main
from cotdistill.errors import CotDistillError, DataError
from cotdistill.methods import TrainConfig, TrainData
from cotdistill.methods.checkpoints import STAGING_DIR
from cotdistill.methods.sft import SFT, SFTMethodConfig
from cotdistill.models import Student
from cotdistill.nn.soft_prompt import SoftPrompt, SoftPromptConfig
from test_sft_cli import write_examples
from test_sft_trainer import examples, fresh_student

TESTS = str(Path(__file__).parent)


def test_a_checkpoint_naming_a_module_is_refused_without_importing_it(tmp_path, monkeypatch):
    (tmp_path / "payload_mod.py").write_text(
        f"open({str(tmp_path / 'ran')!r}, 'w').write('code ran')\n"
        "class Evil:\n    @classmethod\n    def load(cls, directory):\n        return None\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    checkpoint = tmp_path / "ckpt"
    fresh_student().save(checkpoint)
    settings = json.loads((checkpoint / "student.json").read_text())
    (checkpoint / "student.json").write_text(json.dumps({**settings, "soft_prompt": "payload_mod:Evil"}))
    with pytest.raises(
        DataError, match=r"ckpt/student.json: key 'soft_prompt': 'payload_mod:Evil' is not a registered"
    ):
        Student.load(checkpoint)
    assert not (tmp_path / "ran").exists() and "payload_mod" not in sys.modules


def test_registered_soft_prompts_round_trip_by_name_and_by_legacy_path(tmp_path):
    student = fresh_student()
    student.soft_prompt = SoftPrompt(SoftPromptConfig(num_tokens=2), student.model.config.hidden_size)
    student.save(tmp_path / "s")
    settings = json.loads((tmp_path / "s" / "student.json").read_text())
    assert settings["soft_prompt"] == "p_tuning"
    assert isinstance(Student.load(tmp_path / "s").soft_prompt, SoftPrompt)
    legacy = {**settings, "soft_prompt": "cotdistill.nn.soft_prompt:SoftPrompt"}  # written before names
    (tmp_path / "s" / "student.json").write_text(json.dumps(legacy))
    loaded = Student.load(tmp_path / "s")
    assert torch.equal(loaded.soft_prompt(1), student.soft_prompt(1))


KILL_SCRIPT = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from cotdistill.methods import TrainConfig, TrainData
from cotdistill.methods import checkpoints, sft
from cotdistill.methods.sft import SFT, SFTMethodConfig
from cotdistill.methods.student_trainer import StudentTrainer
from cotdistill.models.student import Student
from test_sft_trainer import examples, fresh_student

point, out = {point!r}, {out!r}

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if point == "weights":  # model weights written, student.json not yet
    save = Student.save
    def save_then_die(self, directory):
        if "checkpoint-4" in str(directory):
            self.model.save_pretrained(directory)
            die()
        save(self, directory)
    Student.save = save_then_die
elif point == "state":  # student.json written, RNG and trainer_state.json not yet
    rng = StudentTrainer._save_rng_state
    def rng_then_die(self, output_dir):
        if self.state.global_step == 4:
            die()
        rng(self, output_dir)
    StudentTrainer._save_rng_state = rng_then_die
else:  # everything written in staging, before the rename
    replace = checkpoints.replace_directory
    def die_before_rename(staging, target):
        if str(target).endswith("checkpoint-4"):
            die()
        replace(staging, target)
    checkpoints.replace_directory = die_before_rename
train = TrainConfig(max_steps=6, batch_size=2, save_steps=2, save_total_limit=3, progress=False)
SFT().train(fresh_student(), TrainData(examples(8)), train, SFTMethodConfig(), out)
"""


@pytest.mark.parametrize("point", ["weights", "state", "rename"])
def test_a_kill_while_writing_a_checkpoint_never_blocks_the_resume(tmp_path, point, caplog):
    out = tmp_path / "train"
    script = textwrap.dedent(KILL_SCRIPT.format(tests=TESTS, point=point, out=str(out)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(TESTS).parent / "src"), TESTS])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert (out / "checkpoint-2").is_dir() and not (out / "checkpoint-4").exists()
    assert (out / STAGING_DIR / "checkpoint-4").is_dir(), "the kill hit the half-written checkpoint"

    train = TrainConfig(max_steps=6, batch_size=2, save_steps=2, save_total_limit=3, progress=False)
    with caplog.at_level("INFO"):
        SFT().train(fresh_student(), TrainData(examples(8)), train, SFTMethodConfig(), out, resume=True)
    assert "resuming from" in caplog.text and "checkpoint-2" in caplog.text
    assert json.loads((out / "train_summary.json").read_text())["steps"] == 6
    assert not (out / STAGING_DIR).exists() or not any((out / STAGING_DIR).iterdir())


def test_incomplete_checkpoints_are_skipped_with_a_warning(tmp_path, caplog):
    out = tmp_path / "train"
    train = TrainConfig(max_steps=2, batch_size=2, save_steps=1, progress=False)
    SFT().train(fresh_student(), TrainData(examples(8)), train, SFTMethodConfig(), out)
    (out / "final").rename(out / "old-final")  # as if killed before the end
    (out / "checkpoint-7").mkdir()  # an empty directory
    (out / "checkpoint-5").mkdir()
    (out / "checkpoint-5" / "student.json").write_text("{}")  # no trainer_state.json
    with caplog.at_level("INFO"):
        SFT().train(fresh_student(), TrainData(examples(8)), train, SFTMethodConfig(), out, resume=True)
    assert "skipping" in caplog.text and "checkpoint-7" in caplog.text and "checkpoint-5" in caplog.text
    assert "resuming from" in caplog.text and "checkpoint-2" in caplog.text
    assert (out / "final" / "student.json").exists()


def test_resume_on_other_data_is_refused(tmp_path):
    out = tmp_path / "train"
    train = TrainConfig(max_steps=2, batch_size=2, save_steps=1, progress=False)
    SFT().train(fresh_student(), TrainData(examples(8)), train, SFTMethodConfig(), out)
    with pytest.raises(CotDistillError, match="cannot resume: the training rows changed"):
        SFT().train(fresh_student(), TrainData(examples(9)), train, SFTMethodConfig(), out, resume=True)
    other_tokenizer = fresh_student()
    other_tokenizer.tokenizer.add_tokens(["<extra>"])
    with pytest.raises(CotDistillError, match="cannot resume: the tokenizer changed"):
        SFT().train(other_tokenizer, TrainData(examples(8)), train, SFTMethodConfig(), out, resume=True)


def test_resume_with_another_model_size_is_one_line(tmp_path, capsys):
    write_examples(tmp_path / "data.jsonl")
    recipe = {
        "data": str(tmp_path / "data.jsonl"),
        "student": {"model": "tiny", "tiny": {"hidden_size": 32, "num_heads": 2, "intermediate_size": 64}},
        "train": {"max_steps": 2, "batch_size": 4, "save_steps": 1, "progress": False},
        "output": str(tmp_path / "out"),
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(tmp_path / "r.yaml")]) == 0
    (tmp_path / "out" / "final").rename(tmp_path / "out" / "old-final")  # killed before the end
    capsys.readouterr()
    assert main(["train", str(tmp_path / "r.yaml"), "student.tiny.hidden_size=48", "--resume"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]  # progress bars may precede it
    assert len(errors) == 1 and "checkpoint-2" in errors[0] and "size mismatch" in errors[0]
    assert "Traceback" not in err
