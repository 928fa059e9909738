"""ReDis stages 1-2 and inference logic: parsers, oracle teacher, scoring, margins, pairs, tie rule."""

from __future__ import annotations

import json

import pytest

from cotdistill.methods.redis.augment import (
    APPLICATIONS_FILE,
    RULES_FILE,
    AugmentConfig,
    ScoredRule,
    TaskRules,
    augment,
)
from cotdistill.methods.redis.oracle import RuleOracle
from cotdistill.methods.redis.pairs import DEFAULT_MARGINS, FilterConfig, build, dedupe, make_pairs
from cotdistill.methods.redis.prompts import apply_prompt, extract_rule, rule_prompt
from cotdistill.methods.redis.requests import ApplyRequest, RuleRequest
from cotdistill.methods.redis.search import SearchConfig, accuracy_table, choose, direct_answers, hypothesis_search
from cotdistill.tasks.inductive import Pair, RuleTask, sample_tasks
from cotdistill.teachers.base import CompletionRequest, CompletionResult


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Rule: Reverse the list.", "Reverse the list."),
        ("  The rule is: add 2 to every element.\n\nExplanation: ...", "add 2 to every element."),
        ("Sort the list\nin ascending order.", "Sort the list in ascending order."),
        ("   \n", None),
    ],
)
def test_extract_rule(text, expected):
    assert extract_rule(text) == expected


def test_paper_margins_are_the_defaults():
    assert DEFAULT_MARGINS == {"arc1d": 1, "acre": 2, "list_functions": 3, "miniscan": 4}
    cfg = FilterConfig()
    assert cfg.margin("miniscan") == 4 and cfg.margin("other") == 1
    with pytest.raises(ValueError, match="margin of acre must be >= 0"):
        FilterConfig(margins={"acre": -1})


def _rule(text: str, score: int, count: int = 1, outputs=None) -> ScoredRule:
    return ScoredRule(text, count, score, outputs or [])


def test_pairs_need_a_difference_above_the_margin():
    rules = [_rule("a", 8), _rule("b", 5), _rule("c", 4), _rule("d", 0)]
    pairs = {(x.rule, y.rule) for x, y in make_pairs(rules, 3)}
    assert pairs == {("a", "c"), ("a", "d"), ("b", "d"), ("c", "d")}  # a-b differ by exactly 3: no pair
    assert make_pairs(rules, 8) == []
    assert {(x.rule, y.rule) for x, y in make_pairs(rules, 0)} >= {("a", "b"), ("b", "c")}


def test_dedupe_merges_exact_duplicates_only():
    rules = dedupe([_rule("a", 1, 2), _rule("A", 1), _rule("a", 3, 1, ["x"])])
    assert [(r.rule, r.count, r.score, r.outputs) for r in rules] == [("a", 3, 3, ["x"]), ("A", 1, 1, [])]


def test_stage2_sets_on_a_hand_made_task():
    task = RuleTask(
        "t1",
        "arc1d",
        (Pair("[1, 0]", "[0, 1]"), Pair("[2, 0]", "[0, 2]"), Pair("[0, 3]", "[3, 0]")),
        (Pair("[4, 0]", "[0, 4]"),),
    )
    record = TaskRules(
        "t1",
        "arc1d",
        3,
        [
            _rule("Mirror the row.", 3, 4, ["[0, 1]", "[0, 2]", "[3, 0]"]),
            _rule("Move right.", 2, 1, ["[0, 1]", "[0, 2]", None]),
            _rule("Recolour.", 0, 2, ["[2, 0]", "[3, 0]", "[0, 4]"]),
        ],
    )
    stage2 = build([record], {"t1": task}, FilterConfig())
    assert {(p.chosen, p.rejected) for p in stage2.pairs} == {
        ("Mirror the row.", "Recolour."),
        ("Move right.", "Recolour."),
    }
    assert [i.completion for i in stage2.rule_generation] == ["Mirror the row.", "Move right.", "Recolour."]
    assert {i.prompt for i in stage2.rule_generation} == {rule_prompt(task.train)}
    best = build([record], {"t1": task}, FilterConfig(rule_generation="best"))
    assert [i.completion for i in best.rule_generation] == ["Mirror the row."]
    assert best.pairs == stage2.pairs and best.rule_following == stage2.rule_following
    assert len(build([record], {"t1": task}, FilterConfig(max_generation_per_task=2)).rule_generation) == 2
    following = {(i.prompt, i.completion) for i in stage2.rule_following}
    assert (apply_prompt("Move right.", "[1, 0]"), "Output: [0, 1]") in following
    assert len(following) == 5  # mirror x3 + move right x2 (its unparsed output is dropped); recolour never chosen
    assert stage2.stats["arc1d"] == {"tasks": 1, "rules": 3, "pairs": 2, "perfect_tasks": 1}
    strict = build([record], {"t1": task}, FilterConfig(margins={"arc1d": 2}))
    assert [(p.chosen, p.rejected) for p in strict.pairs] == [("Mirror the row.", "Recolour.")]


def test_pipeline_stops_before_training_when_no_rule_survives(tmp_path):
    from cotdistill.errors import CotDistillError
    from cotdistill.pipelines.redis import _require_rules

    task = RuleTask("t1", "arc1d", (Pair("[1, 0]", "[0, 1]"),), (Pair("[2, 0]", "[0, 2]"),))
    record = TaskRules("t1", "arc1d", 1, [_rule("Nonsense.", 0, 2, [None]), _rule("Other.", 0, 1, ["[1]"])])
    stage2 = build([record], {"t1": task}, FilterConfig(rule_generation="best"))
    with pytest.raises(CotDistillError, match=r"no rule: none of the teacher's 2 distinct rules for 1 tasks"):
        _require_rules(stage2, ["direct", "redis_sft"], tmp_path)
    _require_rules(stage2, ["direct", "hs_base", "io_sft"], tmp_path)  # baselines alone need no rule


def test_oracle_states_true_and_wrong_rules_and_applies_them():
    task = sample_tasks("list_functions", 1, seed=0)[0]
    oracle = RuleOracle({task.idx: task}, p_true=0.5, seed=1)
    [rules] = oracle.complete([CompletionRequest("r", prompt="x", n=40, subject=RuleRequest(task.idx))])
    assert task.rule.text in rules.texts and len(set(rules.texts)) > 3
    wrong = next(t for t in rules.texts if t != task.rule.text)
    pair = task.train[0]
    results = oracle.complete(
        [
            CompletionRequest(
                "a",
                prompt="x",
                subject=ApplyRequest(task.idx, task.rule.text, pair.input),
            ),
            CompletionRequest("b", prompt="x", subject=ApplyRequest(task.idx, wrong, pair.input)),
            CompletionRequest("c", prompt="x", subject=ApplyRequest(task.idx, "Made up.", pair.input)),
            CompletionRequest("d", prompt="x", subject=ApplyRequest("nope", "x", "[1]")),
        ]
    )
    assert results[0].texts == [f"Output: {pair.output}"]
    assert results[1].ok and results[2].error and results[3].error
    again = RuleOracle({task.idx: task}, p_true=0.5, seed=1).complete(
        [CompletionRequest("r", prompt="x", n=40, subject=RuleRequest(task.idx))]
    )
    assert again[0].texts == rules.texts


def test_augment_scores_rules_by_rule_following_and_resumes(tmp_path):
    tasks = sample_tasks("acre", 3, seed=0) + sample_tasks("miniscan", 2, seed=0)
    oracle = RuleOracle({t.idx: t for t in tasks}, p_true=0.4, seed=0)
    cfg = AugmentConfig(num_rules=12, tasks_per_batch=2)
    records = augment(tasks[:3], oracle, cfg, tmp_path)
    assert [r.task_idx for r in records] == [t.idx for t in tasks[:3]]
    for record, task in zip(records, tasks):
        assert sum(r.count for r in record.rules) == 12
        true = next(r for r in record.rules if r.rule == task.rule.text)
        assert true.score == len(task.train) == record.n_seen
        assert all(0 <= r.score <= record.n_seen for r in record.rules)
    apps = [json.loads(line) for line in (tmp_path / APPLICATIONS_FILE).read_text().splitlines()]
    assert len(apps) == sum(len(r.rules) * r.n_seen for r in records)
    assert all(a["correct"] == (a["parsed"] == a["gold"]) for a in apps)
    # a crash after some application lines of an unfinished task: resume drops them and redoes the task
    with (tmp_path / APPLICATIONS_FILE).open("a") as handle:
        handle.write(json.dumps({"task_idx": tasks[3].idx, "rule": "half"}) + "\n")

    class Counting:
        id = "counting"
        calls: list[str] = []

        def complete(self, requests):
            self.calls += [r.subject.task_idx for r in requests]
            return oracle.complete(requests)

    counting = Counting()
    records = augment(tasks, counting, cfg, tmp_path, resume=True)
    assert len(records) == 5 and set(counting.calls) == {tasks[3].idx, tasks[4].idx}
    rules_lines = (tmp_path / RULES_FILE).read_text().splitlines()
    assert len(rules_lines) == 5
    apps = [json.loads(line) for line in (tmp_path / APPLICATIONS_FILE).read_text().splitlines()]
    assert not any(a.get("rule") == "half" for a in apps)


def test_augment_records_teacher_errors_as_zero_scores(tmp_path):
    task = sample_tasks("arc1d", 1, seed=0)[0]

    class Failing:
        id = "failing"

        def complete(self, requests):
            return [
                CompletionResult(r.key, ["Rule: Mirror the row."] * r.n)
                if isinstance(r.subject, RuleRequest)
                else CompletionResult(r.key, [], error="timeout")
                for r in requests
            ]

    [record] = augment([task], Failing(), AugmentConfig(num_rules=3), tmp_path)
    assert [(r.rule, r.count, r.score) for r in record.rules] == [("Mirror the row.", 3, 0)]


def test_choose_prefers_score_then_count_then_order():
    cands = [
        {"rule": "a", "score": 2, "count": 1, "order": 0},
        {"rule": "b", "score": 3, "count": 1, "order": 1},
        {"rule": "c", "score": 3, "count": 2, "order": 2},
        {"rule": "d", "score": 3, "count": 2, "order": 3},
    ]
    assert choose(cands)["rule"] == "c"
    assert choose([]) is None


class ScriptedStudent:
    """Answers rule prompts with fixed rules and applies them with the real rule of the task."""

    def __init__(self, rules: list[str], apply):
        self.rules, self.apply = rules, apply

    def prompt(self, question, instruction=None):
        return question

    def completion(self, text):
        return text

    def generate(
        self, prompts, *, max_new_tokens=256, temperature=0.0, num_samples=1, batch_size=16, stop=None, progress=True
    ):
        out = []
        for p in prompts:
            assert p.endswith("Output:") != p.startswith("Here are")  # rule following and answers are primed
            p = p.removesuffix("Output:")
            if p.startswith("Rule: "):
                rule, _, rest = p[len("Rule: ") :].partition("\n")
                out.append([f"Output: {self.apply(rule, rest.rsplit('Input: ', 1)[1])}"])
            elif p.startswith("Here are"):
                out.append([self.rules[i % len(self.rules)] for i in range(num_samples)])
            else:
                out.append(["Output: [0]"])
        return out


def test_hypothesis_search_picks_the_rule_that_reproduces_seen_pairs():
    tasks = sample_tasks("list_functions", 2, seed=4)
    truth = {t.rule.text: t.rule for t in tasks}

    def apply(rule, value):
        return truth[rule].apply(value) if rule in truth else "[]"

    student = ScriptedStudent(["Nonsense rule.", tasks[0].rule.text, tasks[1].rule.text], apply)
    results = hypothesis_search(student, tasks, SearchConfig(num_rules=3))
    for result, task in zip(results, tasks):
        assert result.rule == task.rule.text and result.rule_score == len(task.train)
        assert all(result.correct)
    assert accuracy_table(results)["all"] == {"correct": 16, "total": 16, "accuracy": 1.0}
    direct = direct_answers(student, tasks, SearchConfig())
    assert accuracy_table(direct)["list_functions"]["total"] == 16


def test_direct_answers_parse_a_reply_that_continues_the_primed_output():
    [task] = sample_tasks("miniscan", 1, seed=0)
    gold = {p.input: p.output for p in task.test}

    class Continuing(ScriptedStudent):
        def generate(self, prompts, **kwargs):
            # the reply after "Output:", then chatter on a new line (the last line is not the output)
            asked = [p.removesuffix("Output:").rsplit("New input: ", 1)[1].split("\n")[0] for p in prompts]
            return [[f" {gold[value]}\nDone."] for value in asked]

    [result] = direct_answers(Continuing([], None), [task], SearchConfig())
    assert all(result.correct) and len(result.correct) == len(task.test)
