"""The README's Python API example, taken from README.md itself, runs offline as written."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_python_example() -> str:
    """The first ```python block of the README's "## Python API" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert match, "README.md: the Python API section has no ```python block"
    return match.group(1)


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    code = readme_python_example()
    assert len(code.strip().splitlines()) <= 20  # stays a short example
    script = tmp_path / "readme_example.py"
    script.write_text(code, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        torch.set_num_threads(threads)

    assert "| domain | role | chance | sft | prada |" in capsys.readouterr().out
    runs = tmp_path / "runs" / "api"
    for method in ("sft", "prada"):
        report = json.loads((runs / "eval" / method / "report.json").read_text())
        assert set(report["summary"]["domains"]) == {"arith_shopping", "arith_travel"}
        assert (runs / "train" / method / "final" / "student.json").exists()
    assert (runs / "compare" / "report.html").stat().st_size > 10_000
