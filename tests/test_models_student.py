"""Student: prompt format, batched generation, soft prompts, save/load (tiny models built in the test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from cotdistill.errors import ConfigError, CotDistillError
from cotdistill.methods.data import Collator, make_row
from cotdistill.methods.student_module import StudentModule
from cotdistill.models import Student, StudentConfig, StudentLoRAConfig, TinyConfig, load_student
from cotdistill.models.student import plain_prompt
from cotdistill.nn.soft_prompt import register_soft_prompt

CORPUS = [f"What is {a} + {b}? {a} + {b} = {a + b}. The answer is {a + b}." for a in range(12) for b in range(12)]
TINY = TinyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, vocab_size=300)
PROMPTS = ["What is 3 + 4?", "What is 10 + 11? Show the steps carefully please.", "x", "What is 7 + 1?"]


@register_soft_prompt("toy_test")
class ToySoftPrompt(nn.Module):
    """A minimal soft prompt honouring the Student contract: (B, P, H), save/load, registered."""

    def __init__(self, length: int, hidden: int):
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(length, hidden))

    def forward(self, batch_size: int, domain_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.embedding.unsqueeze(0).expand(batch_size, -1, -1)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.embedding.detach(), directory / "embedding.pt")
        (directory / "shape.json").write_text(json.dumps(list(self.embedding.shape)))

    @classmethod
    def load(cls, directory: Path) -> ToySoftPrompt:
        length, hidden = json.loads((directory / "shape.json").read_text())
        module = cls(length, hidden)
        module.embedding.data.copy_(torch.load(directory / "embedding.pt"))
        return module


@pytest.fixture(scope="module")
def student() -> Student:
    return load_student(StudentConfig(tiny=TINY), CORPUS)


def test_tiny_student_is_small_and_tokenizes_digits_one_by_one(student):
    assert sum(p.numel() for p in student.model.parameters()) < 100_000
    tokens = student.tokenizer.convert_ids_to_tokens(student.encode_completion("123 + 4 = 127."))
    assert [t for t in tokens if t.isdigit()] == ["1", "2", "3", "4", "1", "2", "7"]
    assert tokens[-1] == student.tokenizer.eos_token


def test_tiny_needs_a_corpus():
    with pytest.raises(ConfigError, match="corpus"):
        load_student(StudentConfig(), None)


def test_plain_prompt_and_completion_format(student):
    assert student.prompt("What is 1 + 1?", "Be brief.") == "Question: What is 1 + 1?\nBe brief.\nAnswer:"
    assert student.completion("2.") == " 2."
    ids = student.encode_prompt(plain_prompt("Hi"))
    assert ids[0] == student.tokenizer.bos_token_id


def test_chat_template_prompt_is_used_when_present(student):
    tokenizer = student.tokenizer
    tokenizer.chat_template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}<|assistant|>"
    try:
        chat = Student(student.model, tokenizer, None, use_chat_template=True)
        assert chat.prompt("Q?", "Do X.") == "<|user|>Q?\nDo X.\n<|assistant|>"
        assert chat.completion("A.") == "A."
        assert Student(student.model, tokenizer, None, use_chat_template=False).prompt("Q?") == "Question: Q?\nAnswer:"
    finally:
        tokenizer.chat_template = None


def test_batched_greedy_generation_equals_one_prompt_at_a_time(student):
    prompts = [student.prompt(p) for p in PROMPTS]
    batched = student.generate(prompts, max_new_tokens=12, batch_size=3, progress=False)
    single = [student.generate([p], max_new_tokens=12, progress=False)[0] for p in prompts]
    assert batched == single
    assert all(len(samples) == 1 for samples in batched)


def test_sampling_returns_num_samples_per_prompt_and_stop_strings_cut(student):
    prompts = [student.prompt(p) for p in PROMPTS[:2]]
    torch.manual_seed(0)
    samples = student.generate(prompts, max_new_tokens=8, temperature=1.0, num_samples=3, progress=False)
    assert [len(s) for s in samples] == [3, 3]
    greedy = student.generate(prompts[:1], max_new_tokens=12, progress=False)[0][0]
    assert len(greedy) > 2
    stop = greedy[1:3]
    cut = student.generate(prompts[:1], max_new_tokens=12, stop=[stop], progress=False)[0][0]
    assert cut == greedy[: greedy.find(stop)].strip()


def test_greedy_generation_with_soft_prompt_matches_training_forward(student):
    torch.manual_seed(1)
    soft = Student(student.model, student.tokenizer, ToySoftPrompt(3, TINY.hidden_size), False)
    assert soft.num_virtual_tokens == 3
    prompts = [soft.prompt(p) for p in PROMPTS]
    generated = soft.generate(prompts, max_new_tokens=1, batch_size=4, progress=False)
    rows = [make_row(soft, p, "x", max_length=64) for p in prompts]
    batch = Collator(soft.tokenizer.pad_token_id)(rows)
    with torch.no_grad():
        out = StudentModule(soft)(**batch)
        head = soft.model.get_output_embeddings()
        for i, prompt in enumerate(prompts):
            last = out.prefix_length + len(soft.encode_prompt(prompt)) - 1
            predicted = int(head(out.last_hidden_state[i, last]).argmax())
            assert soft.tokenizer.decode([predicted], skip_special_tokens=True).strip() == generated[i][0]
        plain = StudentModule(student)(**batch)
    assert plain.prefix_length == 0 and out.prefix_length == 3
    assert not torch.allclose(plain.last_hidden_state, out.last_hidden_state[:, 3:])


def test_save_load_round_trip_full(student, tmp_path):
    student.save(tmp_path / "s")
    assert (tmp_path / "s" / "model.safetensors").exists()
    loaded = Student.load(tmp_path / "s")
    for (name, a), b in zip(student.model.state_dict().items(), loaded.model.state_dict().values()):
        assert torch.equal(a, b), name
    prompts = [student.prompt(p) for p in PROMPTS]
    assert loaded.generate(prompts, max_new_tokens=8, progress=False) == student.generate(
        prompts, max_new_tokens=8, progress=False
    )


def test_save_load_round_trip_lora_with_soft_prompt(tmp_path):
    cfg = StudentConfig(tiny=TINY, finetune="lora", lora=StudentLoRAConfig(r=4, alpha=8))
    lora = load_student(cfg, CORPUS)
    assert lora.is_peft
    trainable = {n for n, p in lora.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():
        for name, param in lora.model.named_parameters():
            if "lora_B" in name:
                param.normal_()
    lora.soft_prompt = ToySoftPrompt(2, TINY.hidden_size)
    lora.save(tmp_path / "l")
    assert (tmp_path / "l" / "adapter_model.safetensors").exists()
    assert (tmp_path / "l" / "base" / "model.safetensors").exists()
    loaded = Student.load(tmp_path / "l")
    assert loaded.is_peft and isinstance(loaded.soft_prompt, ToySoftPrompt)
    assert torch.equal(loaded.soft_prompt.embedding, lora.soft_prompt.embedding)
    prompts = [lora.prompt(p) for p in PROMPTS]
    assert loaded.generate(prompts, max_new_tokens=8, progress=False) == lora.generate(
        prompts, max_new_tokens=8, progress=False
    )


def test_load_rejects_a_directory_without_student_json(tmp_path):
    with pytest.raises(CotDistillError, match="student.json"):
        Student.load(tmp_path)


def test_load_student_continues_from_a_saved_student(student, tmp_path):
    student.save(tmp_path / "s")
    again = load_student(StudentConfig(model=str(tmp_path / "s")))
    assert torch.equal(again.model.get_input_embeddings().weight, student.model.get_input_embeddings().weight)


def test_unknown_model_name_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="student.model"):
        load_student(StudentConfig(model=str(tmp_path / "nope")))
