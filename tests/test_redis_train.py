"""ReDis stages 3-4 on a tiny model: SFT tokenisation, one ORPO and one DPO step, the pipeline end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cotdistill.methods.redis.pairs import PreferencePair, SFTItem
from cotdistill.methods.redis.train import ReDisTrainConfig, align, preference_rows, sft, tokenize_sft
from cotdistill.models import StudentConfig, TinyConfig, load_student
from cotdistill.pipelines import load_recipe
from cotdistill.report.runs import read_report, runs_of

TINY = TinyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, vocab_size=300)
PROMPT = "Here are input/output examples produced by one hidden rule.\nInput: [1, 2]\nOutput: [2, 1]"
PAIRS = [PreferencePair("t", "list_functions", PROMPT, "Reverse the list.", "Sort the list.", 2, 0)] * 4


def _student(finetune: str = "full"):
    corpus = [PROMPT, "Reverse the list.", "Sort the list.", "Output: [2, 1]"]
    return load_student(StudentConfig(model="tiny", finetune=finetune, tiny=TINY), corpus)


def _weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in model.parameters()])


def test_sft_rows_mask_the_prompt_and_match_generation_ids():
    student = _student()
    [row] = tokenize_sft(student, [SFTItem("rule_generation", "t", "list_functions", PROMPT, "Reverse the list.")], 512)
    prompt_ids = student.encode_prompt(student.prompt(PROMPT))
    assert row["input_ids"][: len(prompt_ids)] == prompt_ids
    assert row["labels"][: len(prompt_ids)] == [-100] * len(prompt_ids)
    assert row["labels"][len(prompt_ids) :] == student.encode_completion("Reverse the list.")
    [short] = tokenize_sft(student, [SFTItem("io", "t", "list_functions", PROMPT, "Output: [2, 1]")], 8)
    assert (
        len(short["input_ids"]) == len(short["labels"]) == 8 and short["labels"][-1] == student.tokenizer.eos_token_id
    )


def test_preference_rows_drop_pairs_that_do_not_fit():
    student = _student()
    [row] = preference_rows(student, PAIRS[:1], 512)
    assert preference_rows(student, PAIRS[:1], 10) == []
    assert row["chosen"] == student.completion("Reverse the list.")
    assert row["rejected"] == student.completion("Sort the list.")


@pytest.mark.parametrize(("method", "finetune"), [("orpo", "full"), ("dpo", "full"), ("dpo", "lora")])
def test_alignment_step_updates_the_student(tmp_path, method, finetune):
    student = _student(finetune)
    settings = ReDisTrainConfig(align_epochs=1, align_lr=1e-2, batch_size=4, max_length=128)
    lora = StudentConfig().lora if finetune == "lora" else None
    before = _weights(student.model.merge_and_unload() if student.is_peft else student.model)
    aligned = align(_student(finetune), PAIRS, settings, tmp_path, lora, method)  # same seed: same initial weights
    assert not aligned.is_peft
    after = _weights(aligned.model)
    assert after.shape == before.shape and torch.isfinite(after).all()
    assert not torch.equal(before, after)


def _completion_nll(student, prompt: str, completion: str) -> float:
    [row] = tokenize_sft(student, [SFTItem("x", "t", "d", prompt, completion)], 512)
    with torch.no_grad():
        out = student.model(input_ids=torch.tensor([row["input_ids"]]), labels=torch.tensor([row["labels"]]))
    return float(out.loss)


def test_sft_lowers_the_loss_of_the_targets(tmp_path):
    items = [SFTItem("rule_generation", "t", "list_functions", PROMPT, "Reverse the list.")] * 8
    before = _completion_nll(_student(), PROMPT, "Reverse the list.")
    student = sft(
        _student(), items, ReDisTrainConfig(sft_epochs=2, sft_lr=1e-2, batch_size=4, max_length=128), tmp_path
    )
    assert _completion_nll(student, PROMPT, "Reverse the list.") < before - 0.5


def test_sft_groups_rows_of_similar_length_so_fewer_batches_pad_to_the_longest(tmp_path, monkeypatch):
    import cotdistill.methods.redis.train as redis_train

    make_trainer = redis_train.make_trainer
    widths: list[int] = []

    def recording(trainer_cls, precision, **kwargs):
        trainer = make_trainer(trainer_cls, precision, **kwargs)
        collate = trainer.data_collator
        trainer.data_collator = lambda rows: widths.append(max(len(r["input_ids"]) for r in rows)) or collate(rows)
        return trainer

    monkeypatch.setattr(redis_train, "make_trainer", recording)
    short = SFTItem("io", "t", "list_functions", "Input: [1]", "Output: [1]")
    long = SFTItem("rule_generation", "t", "list_functions", PROMPT * 3, "Reverse the list.")
    longest = len(tokenize_sft(_student(), [long], 256)[0]["input_ids"])
    padded = {}
    for grouped in (False, True):
        widths.clear()
        settings = ReDisTrainConfig(sft_epochs=1, batch_size=4, max_length=256, group_by_length=grouped)
        sft(_student(), [short, long] * 8, settings, tmp_path / str(grouped))
        assert len(widths) == 4
        padded[grouped] = sum(w == longest for w in widths)
    assert padded[False] == 4 and padded[True] <= 3


def test_pipeline_runs_end_to_end_and_resumes(tmp_path, monkeypatch, capsys):
    recipe = tmp_path / "redis.yaml"
    recipe.write_text(
        """
pipeline: redis
data: {domains: [acre, arc1d], tasks_per_domain: 10}
augment: {num_rules: 8}
filter: {max_pairs_per_task: 2, max_following_per_task: 2}
student: {model: tiny, finetune: full, tiny: {hidden_size: 32, num_heads: 2, intermediate_size: 64, vocab_size: 400}}
train: {sft_epochs: 1, sft_lr: 1.0e-3, align_lr: 1.0e-4, batch_size: 16, max_length: 256}
search: {num_rules: 1, rule_max_tokens: 12, apply_max_tokens: 12, seeds: [0, 1]}
methods: [direct, redis_sft, redis_dpo]
""",
        encoding="utf-8",
    )
    loaded = load_recipe(recipe)
    out = tmp_path / "run"
    loaded.cls().run(loaded.config, out)
    report = json.loads((out / "report.json").read_text())
    assert set(report["table"]) == {"direct", "redis_sft", "redis_dpo"}
    assert report["table"]["direct"]["acre"] == {**report["table"]["direct"]["acre"], "total": 4, "seeds": 1}
    assert report["table"]["redis_dpo"]["acre"]["total"] == 8 and report["table"]["redis_dpo"]["arc1d"]["total"] == 2
    assert report["runs"]["redis_dpo"]["summary"]["domains"]["acre"]["seeds"] == 2
    assert sorted(p.name for p in (out / "eval").iterdir()) == [
        "direct.jsonl",
        "redis_dpo.seed0.jsonl",
        "redis_dpo.seed1.jsonl",
        "redis_sft.seed0.jsonl",
        "redis_sft.seed1.jsonl",
    ]
    gold = [json.loads(line) for line in (out / "eval" / "direct.jsonl").read_text().splitlines()]
    acre = [g for r in gold if r["domain"] == "acre" for g in r["gold"]]
    majority = max(max(acre.count(x) for x in acre), 4 / 3)
    assert report["majority"]["acre"] == {"accuracy": majority / 4, "correct": majority, "total": 4}
    assert report["runs"]["direct"]["summary"]["domains"]["acre"]["chance"] == majority / 4
    assert report["stage2"]["pairs"] > 0 and (out / "augment" / "rules.jsonl").exists()
    assert (out / "students" / "redis_dpo" / "student.json").exists()
    assert "redis_dpo" in capsys.readouterr().out and "majority answer" in (out / "report.md").read_text()
    assert [run.name for run in runs_of(read_report(out), "")] == ["direct", "redis_sft", "redis_dpo"]
    for split in ("train", "test"):
        assert len((out / "data" / "acre" / f"{split}.jsonl").read_text().splitlines()) == (
            9 if split == "train" else 1
        )

    def boom(*args, **kwargs):
        raise AssertionError("resume must not retrain")

    monkeypatch.setattr("cotdistill.pipelines.redis.sft", boom)
    monkeypatch.setattr("cotdistill.pipelines.redis.align", boom)
    loaded.cls().run(loaded.config, out, resume=True)
    assert json.loads((out / "report.json").read_text())["table"] == report["table"]


def test_recipe_errors_name_the_key(tmp_path):
    from cotdistill.errors import ConfigError

    recipe = tmp_path / "bad.yaml"
    recipe.write_text("pipeline: redis\ndata: {domains: [acrre]}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown domain 'acrre'"):
        load_recipe(recipe)
    recipe.write_text("pipeline: redis\nmethods: [direct, redis]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="methods must be a non-empty subset"):
        load_recipe(recipe)
    recipe.write_text("pipeline: redis\nsearch: {seeds: [0, 0]}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="search.*distinct seeds"):
        load_recipe(recipe)


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[1].joinpath("recipes").glob("redis-*.yaml")))
def test_shipped_recipes_load(path):
    recipe = load_recipe(path)
    assert recipe.pipeline == "redis" and recipe.config.teacher.backend == "oracle"


def _pair_student():
    """A tiny student whose tokenizer adds a BOS (the case where TRL's DPO used to get two)."""
    student = _student()
    assert student.encode_prompt(student.prompt(PROMPT))[0] == student.tokenizer.bos_token_id
    return student


@pytest.mark.parametrize("loss", ["orpo", "dpo"])
def test_preference_trainers_tokenise_one_bos_and_the_generation_prompt(tmp_path, loss):
    from cotdistill.methods.redis.train import preference_trainer

    student = _pair_student()
    pairs = [PreferencePair("t", "list_functions", PROMPT, "Reverse the list.", "Sort the list.", 2, 0)]
    trainer = preference_trainer(
        student, preference_rows(student, pairs, 512, loss), ReDisTrainConfig(max_length=512), loss, tmp_path
    )
    row = trainer.train_dataset[0]
    prompt_ids = student.encode_prompt(student.prompt(PROMPT))
    bos = student.tokenizer.bos_token_id
    if loss == "dpo":
        sequences = {
            "chosen": row["prompt_ids"] + row["chosen_ids"],
            "rejected": row["prompt_ids"] + row["rejected_ids"],
        }
    else:
        sequences = {"chosen": row["chosen_input_ids"], "rejected": row["rejected_input_ids"]}
    for name, ids in sequences.items():
        assert ids.count(bos) == 1 and ids[0] == bos, name
        assert ids[: len(prompt_ids)] == prompt_ids, name
    completion = student.encode_completion("Reverse the list.")
    assert sequences["chosen"][len(prompt_ids) :] == completion


def _response_nll(student, prompt: str, completion: str) -> float:
    """Mean NLL of ``completion``'s tokens (EOS included) after the generation prompt, computed here."""
    prompt_ids = student.encode_prompt(student.prompt(prompt))
    completion_ids = student.encode_completion(completion)
    ids = torch.tensor([prompt_ids + completion_ids])
    with torch.no_grad():
        logits = student.model(input_ids=ids).logits[0, :-1].float()
    logprobs = torch.log_softmax(logits, dim=-1)[len(prompt_ids) - 1 :]
    return float(-logprobs.gather(1, torch.tensor(completion_ids)[:, None]).mean())


def test_orpo_nll_is_the_chosen_responses_nll_only(tmp_path):
    from cotdistill.methods.redis.train import preference_trainer

    student = _pair_student()
    student.model.eval()
    pairs = [
        PreferencePair("t", "list_functions", PROMPT, "Reverse the list.", "Sort the list.", 2, 0),
        PreferencePair("t", "list_functions", PROMPT + "\nInput: [3]\nOutput: [3]", "Sort the list.", "Nothing.", 2, 0),
    ]
    settings = ReDisTrainConfig(batch_size=2, max_length=512)
    trainer = preference_trainer(student, preference_rows(student, pairs, 512, "orpo"), settings, "orpo", tmp_path)
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        loss, metrics = trainer.get_batch_loss_metrics(student.model, batch)
    expected = sum(_response_nll(student, p.prompt, p.chosen) for p in pairs) / len(pairs)
    assert metrics["nll_loss"] == pytest.approx(expected, rel=1e-4)
    assert metrics["nll_loss"] == pytest.approx(-metrics["logps/chosen"], rel=1e-5)
    assert float(loss) == pytest.approx(expected - metrics["log_odds_ratio"] * settings.beta, rel=1e-4)


def test_hypothesis_search_is_seeded_and_leaves_the_global_rng_alone():
    from cotdistill.methods.redis.search import SearchConfig, hypothesis_search
    from cotdistill.tasks.inductive import sample_tasks

    tasks = sample_tasks("list_functions", 2, seed=1, n_seen=2, n_test=1)
    student = _student()
    cfg = SearchConfig(num_rules=3, temperature=1.0, rule_max_tokens=6, apply_max_tokens=4)
    state = torch.get_rng_state()
    runs = [hypothesis_search(student, tasks, cfg, seed) for seed in (0, 0, 1)]
    assert torch.equal(torch.get_rng_state(), state)
    assert [r.candidates for r in runs[0]] == [r.candidates for r in runs[1]]
    assert [r.candidates for r in runs[0]] != [r.candidates for r in runs[2]]


@pytest.mark.parametrize(("finetune", "precision", "master_weights"), [("full", "fp32", False), ("lora", "bf16", True)])
def test_a_killed_training_stage_resumes_from_its_last_checkpoint_to_the_same_weights(
    tmp_path, monkeypatch, finetune, precision, master_weights
):
    from transformers import Trainer

    items = [SFTItem("rule_generation", "t", "list_functions", PROMPT, "Reverse the list.")] * 16
    settings = ReDisTrainConfig(
        sft_epochs=2,
        sft_lr=1e-2,
        batch_size=4,
        max_length=128,
        save_steps=2,  # 8 steps, checkpoints at 2, 4, 6
        precision=precision,
        master_weights=master_weights,
    )
    lora = StudentConfig().lora if finetune == "lora" else None

    def train(out: str, resume: bool):
        return sft(_student(finetune), items, settings, tmp_path / out, lora, resume=resume)

    whole = train("whole", False)
    original, steps = Trainer.training_step, []

    def counted(self, *args, **kwargs):
        steps.append(self.state.global_step)
        if len(steps) > 5 and kill:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "training_step", counted)
    kill = True
    with pytest.raises(KeyboardInterrupt):
        train("killed", True)
    assert (tmp_path / "killed" / "checkpoint-4" / "trainer_state.json").is_file()
    kill, steps[:] = False, []
    resumed = train("killed", True)
    assert steps == [4, 5, 6, 7]  # from checkpoint-4, not from the start
    assert torch.allclose(_weights(resumed.model), _weights(whole.model), atol=1e-6)
