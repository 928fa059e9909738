"""The offline top-k cache (resume after a crash, keys) and the served teacher's log-probs,
against a fake OpenAI-compatible server on 127.0.0.1 in both reply formats (vLLM
``prompt_logprobs`` and the legacy ``echo`` + ``logprobs`` of llama.cpp's server), and against the
real llama.cpp server when it is installed (slow)."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from cotdistill.errors import CotDistillError
from cotdistill.methods import TrainConfig, TrainData
from cotdistill.methods.data import make_row
from cotdistill.methods.kd.cache import TopKCache, completion_count
from cotdistill.methods.kd.config import KDConfig, KDTeacherConfig
from cotdistill.methods.kd.method import KD
from cotdistill.methods.kd.scoring import LocalScorer
from cotdistill.methods.kd.served import ServedScorer
from cotdistill.methods.kd.teacher import LocalTeacher
from cotdistill.models import StudentConfig, TinyConfig, load_student
from cotdistill.tasks import Example

TINY = TinyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, vocab_size=300)
CORPUS = [f"What is {i} + {i * 3 % 7}? {i} plus {i * 3 % 7} is {i + i * 3 % 7}." for i in range(40)]


@pytest.fixture(scope="module")
def student():
    return load_student(StudentConfig(tiny=TINY), CORPUS)


@pytest.fixture(scope="module")
def teacher(student):
    return LocalTeacher(student.model.eval(), student.tokenizer, "tiny")


@pytest.fixture(scope="module")
def rows(student):
    out = [
        make_row(student, student.prompt(f"What is {i} + 2?"), f"{i} plus 2 is {i + 2}.", max_length=64)
        for i in range(7)
    ]
    return out + [make_row(student, student.prompt("no answer"), None, max_length=64)]  # no completion: skipped


class CountingScorer:
    """Wraps a scorer; fails once ``fail_after`` rows have been scored (a simulated crash)."""

    def __init__(self, inner, fail_after: int | None = None):
        self.inner, self.fail_after, self.scored, self.id = inner, fail_after, 0, inner.id

    def score(self, rows, k):
        if self.fail_after is not None and self.scored + len(rows) > self.fail_after:
            raise RuntimeError("killed")
        self.scored += len(rows)
        return self.inner.score(rows, k)


def test_cache_resumes_after_a_crash_and_matches_an_uninterrupted_build(teacher, rows, tmp_path):
    crashing = CountingScorer(LocalScorer(teacher), fail_after=4)
    cache = TopKCache(tmp_path / "a", rows, crashing, k=5, shard_rows=2)
    assert len(cache.rows) == 7 and cache.num_shards == 4  # the prompt-only row has nothing to score
    with pytest.raises(RuntimeError, match="killed"):
        cache.build(show_progress=False)
    assert cache.missing_shards() == [2, 3]
    resumed = CountingScorer(LocalScorer(teacher))
    TopKCache(tmp_path / "a", rows, resumed, k=5, shard_rows=2).build(show_progress=False)
    assert resumed.scored == 3  # only the rows of the two missing shards
    table = TopKCache(tmp_path / "a", rows, resumed, k=5, shard_rows=2).load()
    whole = TopKCache(tmp_path / "b", rows, LocalScorer(teacher), k=5, shard_rows=2)
    whole.build(show_progress=False)
    reference = whole.load()
    assert table.keys() == reference.keys() and len(table) == 7
    for key, (ids, logprobs) in reference.items():
        assert torch.equal(table[key][0], ids) and torch.equal(table[key][1], logprobs)
    assert not list((tmp_path / "a").rglob("*.partial"))


def test_cache_key_follows_rows_teacher_k_and_temperature_not_row_order(teacher, rows, tmp_path):
    scorer = LocalScorer(teacher)
    base = TopKCache(tmp_path, rows, scorer, k=5).directory
    assert TopKCache(tmp_path, list(reversed(rows)), scorer, k=5).directory == base
    assert TopKCache(tmp_path, rows[:-2], scorer, k=5).directory != base
    assert TopKCache(tmp_path, rows, scorer, k=6).directory != base
    assert TopKCache(tmp_path, rows, scorer, k=5, temperature=2.0).directory != base
    with pytest.raises(CotDistillError, match="build it first"):
        TopKCache(tmp_path, rows, scorer, k=5).load()


def test_a_teacher_retrained_under_the_same_name_gets_its_own_cache(teacher, rows, tmp_path):
    import copy

    same = LocalTeacher(copy.deepcopy(teacher.model), teacher.tokenizer, teacher.name)
    retrained = LocalTeacher(copy.deepcopy(teacher.model), teacher.tokenizer, teacher.name)
    with torch.no_grad():
        next(retrained.model.parameters()).add_(1e-3)
    base = TopKCache(tmp_path, rows, LocalScorer(teacher), k=5).directory
    assert TopKCache(tmp_path, rows, LocalScorer(same), k=5).directory == base
    assert TopKCache(tmp_path, rows, LocalScorer(retrained), k=5).directory != base


def test_local_scorer_gives_top_k_of_the_teacher_distribution(teacher, rows):
    (ids, logprobs), *_ = LocalScorer(teacher, batch_size=3).score(rows[:4], 4)
    batch = torch.tensor([rows[0]["input_ids"]])
    with torch.no_grad():
        full = torch.log_softmax(teacher.model(batch).logits[0, :-1].float(), -1)
    positions = [t for t in range(len(rows[0]["labels"]) - 1) if rows[0]["labels"][t + 1] != -100]
    expected = full[positions].topk(4, -1)
    assert torch.equal(ids.long(), expected.indices) and torch.allclose(logprobs, expected.values, atol=1e-5)


# ---------------------------------------------------------------------------- fake server


class FakeLogprobServer:
    """``/v1/completions`` answering with the tiny teacher's real log-probs in one of two formats."""

    def __init__(self, teacher, tokenizer, legacy: bool):
        self.bodies, self.headers = [], []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.bodies.append(body)
                server.headers.append(dict(self.headers))
                reply = json.dumps({"choices": [server.choice(body)]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.teacher, self.tokenizer, self.legacy = teacher, tokenizer, legacy
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def choice(self, body: dict) -> dict:
        ids = body["prompt"]
        with torch.no_grad():
            logp = torch.log_softmax(self.teacher.model(torch.tensor([ids])).logits[0].float(), -1)
        entries = [None]
        for j in range(1, len(ids)):
            top = logp[j - 1].topk(body["prompt_logprobs"])
            entry = {int(t): float(v) for t, v in zip(top.indices, top.values, strict=True)}
            entry[ids[j]] = float(logp[j - 1, ids[j]])  # vLLM adds the prompt token itself
            entries.append(entry)
        if not self.legacy:
            return {
                "text": "",
                "prompt_logprobs": [
                    None
                    if e is None
                    else {str(t): {"logprob": v, "rank": 1, "decoded_token": "x"} for t, v in e.items()}
                    for e in entries
                ],
            }
        top_logprobs = [None if e is None else {self.tokenizer.decode([t]): v for t, v in e.items()} for e in entries]
        return {"text": "", "logprobs": {"tokens": [], "token_logprobs": [], "top_logprobs": top_logprobs}}

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_served_prompt_logprobs_equal_the_local_teacher(student, teacher, rows, monkeypatch):
    monkeypatch.setenv("KD_TEST_KEY", "sk-secret")
    with FakeLogprobServer(teacher, student.tokenizer, legacy=False) as server:
        cfg = KDTeacherConfig(model="tiny", base_url=server.base_url, api_key_env="KD_TEST_KEY", concurrency=2)
        served = ServedScorer(cfg, student.tokenizer).score(rows[:3], 4)
    local = LocalScorer(teacher).score(rows[:3], 4)
    for (ids, logprobs), (local_ids, local_logprobs) in zip(served, local, strict=True):
        assert torch.equal(ids, local_ids) and torch.allclose(logprobs, local_logprobs, atol=1e-5)
    assert server.bodies[0]["prompt"] in [r["input_ids"] for r in rows[:3]]
    assert server.bodies[0]["prompt_logprobs"] == 4 and server.bodies[0]["max_tokens"] == 1
    assert all(h["Authorization"] == "Bearer sk-secret" for h in server.headers)


def test_served_legacy_logprobs_map_texts_back_to_ids(student, teacher, rows):
    with FakeLogprobServer(teacher, student.tokenizer, legacy=True) as server:
        cfg = KDTeacherConfig(model="tiny", base_url=server.base_url)
        ((ids, logprobs),) = ServedScorer(cfg, student.tokenizer).score(rows[:1], 4)
    assert ids.shape == logprobs.shape == (completion_count(rows[0]), 4)
    with torch.no_grad():
        full = torch.log_softmax(teacher.model(torch.tensor([rows[0]["input_ids"]])).logits[0, :-1].float(), -1)
    positions = [t for t in range(len(rows[0]["labels"]) - 1) if rows[0]["labels"][t + 1] != -100]
    found = logprobs > -math.inf
    assert found.float().mean() > 0.5  # texts that several ids decode to are dropped, the rest map back
    for i, slot in found.nonzero().tolist():
        assert float(logprobs[i, slot]) == pytest.approx(float(full[positions[i], int(ids[i, slot])]), abs=1e-5)
    assert bool((logprobs[:, :-1] >= logprobs[:, 1:]).all())  # most likely first; missing entries last


def test_kd_trains_from_a_served_teacher_through_the_cache(student, teacher, tmp_path):
    data = TrainData(
        [Example(f"t{i}", "toy", f"What is {i} + 2?", str(i + 2), f"{i} plus 2 is {i + 2}.") for i in range(6)]
    )
    fresh = load_student(StudentConfig(tiny=TINY), CORPUS)
    with FakeLogprobServer(teacher, student.tokenizer, legacy=False) as server:
        teacher_cfg = KDTeacherConfig(model="tiny", base_url=server.base_url)
        config = KDConfig(teacher=teacher_cfg, source="topk", top_k=5, cache_dir=str(tmp_path / "cache"))
        train = TrainConfig(max_steps=2, batch_size=3, logging_steps=1, progress=False)
        KD().train(fresh, data, train, config, tmp_path / "run")
        assert len(server.bodies) == 6  # one scoring request per training row, once
    assert (tmp_path / "run" / "final" / "student.json").exists()


def test_unreachable_served_teacher_is_a_one_line_error(student, rows):
    cfg = KDTeacherConfig(model="tiny", base_url="http://127.0.0.1:9/v1", timeout_s=2)
    with pytest.raises(
        CotDistillError, match="served teacher tiny at http://127.0.0.1:9/v1/completions: scoring failed"
    ):
        ServedScorer(cfg, student.tokenizer).score(rows[:1], 4)


# ---------------------------------------------------------------------------- real llama.cpp server


@pytest.mark.slow
def test_llama_cpp_server_top_k_agrees_with_the_hf_teacher(tmp_path):
    from cotdistill.teachers.llama_server import LlamaServer, preset_gguf, server_available

    if not server_available():
        pytest.skip("llama.cpp server not installed: pip install 'llama-cpp-python[server]'")
    try:
        gguf = preset_gguf("smollm2-135m-instruct")
        hf = load_student(StudentConfig(model="smollm2-135m-instruct"))
    except CotDistillError as exc:
        pytest.skip(f"SmolLM2-135M-Instruct unavailable: {exc}")
    rows = [make_row(hf, hf.prompt(f"What is {i} + 2?"), f"{i} plus 2 is {i + 2}.", max_length=64) for i in range(2)]
    args = ("--n_ctx", "512", "--n_threads", "2", "--logits_all", "true")
    with LlamaServer(gguf, extra_args=args) as server:
        served = ServedScorer(KDTeacherConfig(model="smollm2", base_url=server.base_url), hf.tokenizer).score(rows, 5)
    local = LocalScorer(LocalTeacher(hf.model.eval(), hf.tokenizer, "smollm2")).score(rows, 5)
    agree = total = 0
    for (ids, logprobs), (local_ids, _) in zip(served, local, strict=True):
        assert ids.shape == local_ids.shape and bool((logprobs <= 0).all())
        agree += int((ids[:, 0] == local_ids[:, 0]).sum())
        total += ids.shape[0]
    assert agree / total >= 0.8
