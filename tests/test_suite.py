"""Suites: make_suite writes disjoint splits + manifest, is a no-op when up to date, load_suite reads back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from cotdistill import __version__
from cotdistill.cli import main
from cotdistill.config import from_dict
from cotdistill.errors import DataError
from cotdistill.tasks import Example
from cotdistill.tasks.suite import Role, SuiteConfig, check_disjoint, load_suite, make_suite

SUITE = {
    "seed": 4,
    "domains": [
        {"task": "arith_shopping", "n_train": 30, "n_dev": 5, "n_test": 8},
        {"task": "arith_sport", "role": "target_near", "n_train": 10, "n_dev": 3, "n_test": 8},
        {
            "task": "last_letter",
            "name": "letters_long",
            "role": "target_far",
            "n_train": 10,
            "n_dev": 0,
            "n_test": 8,
            "params": {"min_words": 4, "max_words": 4},
        },
    ],
}


def _cfg(data: dict = SUITE) -> SuiteConfig:
    return from_dict(SuiteConfig, data, where="test")


def _write_example(i: int) -> dict:
    return Example(f"f-{i}", "mine", f"Q{i}: what is {i} * 2?", str(2 * i)).to_dict()


def test_make_suite_writes_splits_and_manifest(tmp_path: Path) -> None:
    out = make_suite(_cfg(), tmp_path / "suite")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["cotdistill_version"] == __version__ and manifest["seed"] == 4
    assert list(manifest["domains"]) == ["arith_shopping", "arith_sport", "letters_long"]
    info = manifest["domains"]["letters_long"]
    assert info["task"] == "last_letter" and info["role"] == "target_far" and info["params"]["min_words"] == 4
    assert {s: info["splits"][s]["n"] for s in ("train", "dev", "test")} == {"train": 10, "dev": 0, "test": 8}
    for domain in manifest["domains"].values():
        for entry in domain["splits"].values():
            assert hashlib.sha256((out / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
    assert (out / "suite.yaml").exists()

    suite = load_suite(out)
    assert suite.roles == {
        "arith_shopping": Role.SOURCE,
        "arith_sport": Role.TARGET_NEAR,
        "letters_long": Role.TARGET_FAR,
    }
    assert suite.domains(role="target_far") == ["letters_long"]
    assert suite.domains(Role.SOURCE) == ["arith_shopping"]
    long = suite.examples("letters_long", "test")
    assert len(long) == 8 and all(e.domain == "letters_long" and e.id.startswith("letters_long-") for e in long)
    assert all(len(e.answer) == 4 for e in long)
    assert suite.examples("letters_long", "dev") == []
    task = suite.task("letters_long")
    assert all(task.score(e.rationale, e).strict for e in long)
    for name in suite.domains():
        hashes = [{e.content_hash for e in suite.examples(name, s)} for s in ("train", "dev", "test")]
        assert not (hashes[0] & hashes[1] or hashes[0] & hashes[2] or hashes[1] & hashes[2])


def test_rerun_is_a_noop_and_changes_regenerate(tmp_path: Path) -> None:
    out = make_suite(_cfg(), tmp_path / "s")
    train = out / "arith_shopping" / "train.jsonl"
    before = (train.stat().st_mtime_ns, (out / "manifest.json").read_bytes())
    make_suite(_cfg(), out)
    assert (train.stat().st_mtime_ns, (out / "manifest.json").read_bytes()) == before

    changed = json.loads(json.dumps(SUITE))
    changed["domains"] = changed["domains"][:1]
    changed["domains"][0]["n_train"] = 12
    make_suite(_cfg(changed), out)
    suite = load_suite(out)
    assert suite.domains() == ["arith_shopping"] and len(suite.examples("arith_shopping", "train")) == 12
    assert not (out / "letters_long").exists()  # domains dropped from the config are removed


def test_tampered_file_fails_verification_and_is_regenerated(tmp_path: Path) -> None:
    out = make_suite(_cfg(), tmp_path / "s")
    test_file = out / "arith_sport" / "test.jsonl"
    original = test_file.read_text()
    test_file.write_text(original.splitlines()[0] + "\n")
    with pytest.raises(DataError, match="sha256 mismatch"):
        load_suite(out)
    assert len(load_suite(out, verify=False).examples("arith_sport", "test")) == 1
    make_suite(_cfg(), out)
    assert test_file.read_text() == original


def test_same_seed_same_suite(tmp_path: Path) -> None:
    a = make_suite(_cfg(), tmp_path / "a")
    b = make_suite(_cfg(), tmp_path / "b")
    for rel in ("arith_shopping/train.jsonl", "letters_long/test.jsonl"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()


def test_load_suite_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no manifest.json"):
        load_suite(tmp_path)
    out = make_suite(_cfg(), tmp_path / "s")
    with pytest.raises(DataError, match="no domain 'arith_shop' in this suite; did you mean 'arith_shopping'"):
        load_suite(out).examples("arith_shop", "train")


def test_split_overlap_is_refused(tmp_path: Path) -> None:
    train = tmp_path / "train.jsonl"
    test = tmp_path / "test.jsonl"
    train.write_text("".join(json.dumps(_write_example(i)) + "\n" for i in range(0, 10)))
    test.write_text("".join(json.dumps(_write_example(i)) + "\n" for i in range(8, 14)))
    cfg = _cfg(
        {
            "domains": [
                {
                    "task": "jsonl",
                    "name": "mine",
                    "n_train": -1,
                    "n_dev": 0,
                    "n_test": -1,
                    "params": {"split_files": {"train": str(train), "test": str(test)}, "answer_type": "number"},
                }
            ]
        }
    )
    with pytest.raises(DataError, match="domain 'mine': splits 'train' and 'test' share 2 question"):
        make_suite(cfg, tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_check_disjoint_passes_distinct_splits() -> None:
    check_disjoint("d", {"train": [Example("a", "d", "q1", "1")], "test": [Example("b", "d", "q2", "2")]})


def test_cli_data_make_with_overrides_and_skip_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "mine.jsonl"
    rows = [json.dumps(_write_example(i)) for i in range(40)]
    rows[5] = "{not json"
    rows[9] = json.dumps({"id": "x", "question": "missing domain"})
    data.write_text("\n".join(rows) + "\n")
    suite_yaml = tmp_path / "suite.yaml"
    suite_yaml.write_text(
        "seed: 1\n"
        "domains:\n"
        "  - {task: coin_flip, n_train: 20, n_dev: 4, n_test: 4}\n"
        f"  - {{task: jsonl, name: mine, role: target_near, n_train: -1, n_dev: -1, n_test: -1, params: {{path: '{data}', answer_type: number}}}}\n"
    )
    out = tmp_path / "out"
    assert main(["data", "make", str(suite_yaml), "-o", str(out)]) == 2
    assert f"{data}:6: invalid JSON" in capsys.readouterr().err

    assert main(["data", "make", str(suite_yaml), "-o", str(out), "domains.0.n_train=7", "--skip-invalid"]) == 0
    printed = capsys.readouterr().out
    header, _, coin, mine, *_ = printed.splitlines()
    assert header.split() == ["domain", "task", "role", "answer", "train", "dev", "test", "skipped"]
    assert coin.split()[:7] == ["coin_flip", "coin_flip", "source", "yesno", "7", "4", "4"]
    assert mine.split()[0] == "mine" and mine.split()[-1] == "2"
    suite = load_suite(out)
    assert sum(len(suite.examples("mine", s)) for s in ("train", "dev", "test")) == 38
    assert suite.manifest["domains"]["mine"]["skipped"] == 2

    assert main(["data", "show", str(out)]) == 0
    assert "coin_flip" in capsys.readouterr().out
    assert main(["data", "make", str(suite_yaml), "-o", str(out), "domains.0.rol=source"]) == 2
    assert "did you mean 'role'" in capsys.readouterr().err


def test_cli_tasks_list_shows_rationale_domains_and_gym(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tasks", "list"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    rationale = [r[0] for r in rows if r[2] == "yes" and r[3] == "procedural"]
    gym = [r[0] for r in rows if r[3] == "reasoning-gym"]
    assert len(rationale) >= 8 and len(gym) >= 8
    families = {r[1] for r in rows if r[0] in rationale}
    assert {"arithmetic", "symbolic"} <= families
