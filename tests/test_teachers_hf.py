"""The hf teacher on a tiny Llama built in the test: batching, padding, n, stop strings, chat."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from cotdistill.teachers import CompletionRequest, TeacherConfig, build_teacher
from doubles import tiny_llama

CORPUS = [
    "Tom has 3 apples and buys 4 more. 3 + 4 = 7. The answer is 7.",
    "Flip a coin twice: heads then tails. The answer is no.",
    "Question: what is 12 times 3? Answer: 12 * 3 = 36. The answer is 36.",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A 2-layer, hidden-32 Llama with a small byte-level BPE tokenizer, saved like a HF checkpoint."""
    raw = Tokenizer(models.BPE(unk_token=None))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = __import__("tokenizers.decoders", fromlist=["ByteLevel"]).ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<pad>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    raw.train_from_iterator(CORPUS * 5, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    tokenizer.chat_template = (
        "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    model = tiny_llama(tokenizer, max_positions=256)
    directory = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def teacher(model_dir):
    return build_teacher(TeacherConfig(backend="hf", model=str(model_dir), batch_size=4, device="cpu"))


PROMPTS = [
    "Tom has 3 apples",
    "Question: what is 12 times 3? Answer:",
    "Flip",
    "The answer is 7. Tom buys 4 more apples",
]


def test_batched_greedy_matches_one_at_a_time(teacher):
    requests = [CompletionRequest(f"r{i}", prompt=p, max_tokens=8) for i, p in enumerate(PROMPTS)]
    batched = teacher.complete(requests)
    single = [teacher.complete([r])[0] for r in requests]
    assert [r.key for r in batched] == [f"r{i}" for i in range(len(PROMPTS))]
    assert all(r.ok for r in batched)
    assert [r.texts for r in batched] == [r.texts for r in single]
    for result, prompt in zip(batched, PROMPTS):
        assert result.usage["prompt_tokens"] == len(teacher.tokenizer(prompt)["input_ids"])
        assert 0 < result.usage["completion_tokens"] <= 8


def test_n_samples_sampling_and_stop_trim(teacher):
    result = teacher.complete([CompletionRequest("s", prompt="Tom has", n=3, temperature=1.0, max_tokens=12)])[0]
    assert result.ok and len(result.texts) == 3
    greedy = teacher.complete([CompletionRequest("g", prompt="Tom has", max_tokens=12)])[0].texts[0]
    stop = greedy[3:5]
    assert stop.strip(), "the greedy continuation must have text to stop at"
    stopped = teacher.complete([CompletionRequest("t", prompt="Tom has", max_tokens=12, stop=[stop])])[0].texts[0]
    assert stop not in stopped and greedy.startswith(stopped)


def test_chat_messages_use_the_template(teacher):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tom has 3 apples"}]
    ids, templated = teacher.render(CompletionRequest("c", messages=messages))
    assert templated
    assert teacher.tokenizer.decode(ids).endswith("assistant:")
    result = teacher.complete([CompletionRequest("c", messages=messages, max_tokens=4)])[0]
    assert result.ok and len(result.texts) == 1


def test_missing_model_is_a_clear_config_error(tmp_path):
    from cotdistill.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot load HF model"):
        build_teacher(TeacherConfig(backend="hf", model=str(tmp_path / "nope"), device="cpu"))


def test_generate_command_with_the_hf_backend(model_dir, tmp_path, capsys):
    import json

    import yaml

    from cotdistill.cli import main
    from cotdistill.distill.store import load_records
    from cotdistill.tasks import get_task

    examples = get_task("arith_sport").examples("train", 3, 0)
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(e.to_dict()) + "\n" for e in examples))
    teacher = {"backend": "hf", "model": str(model_dir), "device": "cpu", "batch_size": 2}
    recipe = {"questions": str(tmp_path / "q.jsonl"), "generate": {"teacher": teacher, "max_tokens": 6, "k": 2}}
    recipe["generate"].update(temperature=1.0, keep="all", num_shots=1)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["generate", str(tmp_path / "recipe.yaml"), "-o", str(tmp_path / "out"), "--no-progress"]) == 0
    assert "arith_sport" in capsys.readouterr().out
    records = load_records(tmp_path / "out" / "rationales.jsonl")
    assert len(records) == 6 and not any(r.error for r in records)
    assert all(r.teacher == f"hf:{model_dir}" and 0 < r.usage["completion_tokens"] <= 12 for r in records)
