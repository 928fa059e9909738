"""The shared generation engine: stop rule (EOS, end-of-turn, stop strings) on a tiny Llama built here,
and the student, the hf teacher and the reasoner all generating through it."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

from cotdistill.models import Student
from cotdistill.models.generation import GenerationEngine, Sampling, StopText, end_of_turn_id, stop_token_ids
from cotdistill.teachers import CompletionRequest, TeacherConfig
from cotdistill.teachers.hf_local import HFTeacher
from doubles import tiny_llama

CORPUS = ["Tom has 3 apples and buys 4 more. 3 + 4 = 7. The answer is 7.", "Flip a coin: heads. The answer is no."]
CHATML = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    raw = Tokenizer(models.BPE(unk_token=None))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<s>", "</s>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    raw.train_from_iterator(CORPUS * 5, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def tiny_model(tokenizer: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    return tiny_llama(tokenizer).eval()


@pytest.fixture()
def pair():
    tokenizer = tiny_tokenizer()
    return tiny_model(tokenizer), tokenizer


def greedy_ids(engine: GenerationEngine, prompt: list[int], tokens: int = 12) -> list[int]:
    [[completion]] = engine.generate_batch([prompt], Sampling(max_new_tokens=tokens))
    return list(completion.token_ids)


def fresh_token(ids: list[int], specials: set[int]) -> int:
    """Index (>= 2) of the first generated token not seen before it and not special."""
    return next(k for k in range(2, len(ids)) if ids[k] not in ids[:k] and ids[k] not in specials)


def test_end_of_turn_token_is_read_from_the_chat_template(pair):
    _, tokenizer = pair
    assert end_of_turn_id(tokenizer) is None  # no template
    tokenizer.chat_template = CHATML
    assert end_of_turn_id(tokenizer) == tokenizer.convert_tokens_to_ids("<|im_end|>")
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
    assert end_of_turn_id(tokenizer) is None  # nothing special after a turn


def test_generation_stops_at_the_chat_templates_end_of_turn(pair):
    model, tokenizer = pair
    prompt = tokenizer("Tom has 3 apples")["input_ids"]
    baseline = greedy_ids(GenerationEngine(model, tokenizer), prompt)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    k = fresh_token(baseline, set(tokenizer.all_special_ids))
    head = model.lm_head.weight.data
    head[[baseline[k], end]] = head[[end, baseline[k]]].clone()  # the model now says <|im_end|> where it said that

    plain = greedy_ids(GenerationEngine(model, tokenizer), prompt)
    assert plain[:k] == baseline[:k] and plain[k] == end  # not a stop token without a template: generation goes on
    tokenizer.chat_template = CHATML
    engine = GenerationEngine(model, tokenizer)
    assert end in engine.stop_ids and tokenizer.eos_token_id in engine.stop_ids
    [[completion]] = engine.generate_batch([prompt], Sampling(max_new_tokens=12))
    assert list(completion.token_ids) == baseline[:k]
    assert completion.text == tokenizer.decode(baseline[:k], skip_special_tokens=True)


def test_generation_stops_at_every_configured_eos_and_batches_like_single_prompts(pair):
    model, tokenizer = pair
    prompts = [tokenizer(p)["input_ids"] for p in ("Tom has 3 apples", "Flip", "The answer is 7. Tom buys")]
    engine = GenerationEngine(model, tokenizer)
    baseline = greedy_ids(engine, prompts[0])
    k = fresh_token(baseline, set(tokenizer.all_special_ids))
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, baseline[k]]
    engine = GenerationEngine(model, tokenizer)
    assert stop_token_ids(model, tokenizer) == sorted({tokenizer.eos_token_id, baseline[k]})
    assert greedy_ids(engine, prompts[0]) == baseline[:k]
    batched = engine.generate(prompts, Sampling(max_new_tokens=8), batch_size=2)
    single = [engine.generate_batch([p], Sampling(max_new_tokens=8))[0] for p in prompts]
    assert batched == single


def test_stop_strings_cut_the_completion_never_the_prompt(pair):
    _, tokenizer = pair
    prompt = tokenizer("The answer is")["input_ids"]
    new_ids = tokenizer(" 7. Tom", add_special_tokens=False)["input_ids"]
    assert StopText(tokenizer, ["Tom"])(new_ids)
    assert not StopText(tokenizer, ["answer"])(new_ids)  # only in the prompt
    model, _ = pair
    [[completion]] = GenerationEngine(model, tokenizer).generate_batch([prompt], Sampling(max_new_tokens=6))
    assert len(completion.text) > 2, "the greedy continuation must have text to stop at"
    stop = completion.text[1:3]
    [[cut]] = GenerationEngine(model, tokenizer).generate_batch([prompt], Sampling(max_new_tokens=6, stop=(stop,)))
    assert cut.text == completion.text[: completion.text.find(stop)]


def test_greedy_repeats_one_sample_and_sampling_gives_n(pair):
    model, tokenizer = pair
    engine = GenerationEngine(model, tokenizer)
    prompt = tokenizer("Tom has")["input_ids"]
    [greedy] = engine.generate_batch([prompt], Sampling(max_new_tokens=6, n=3))
    assert len(greedy) == 3 and len(set(greedy)) == 1
    torch.manual_seed(0)
    [sampled] = engine.generate_batch([prompt], Sampling(max_new_tokens=6, temperature=1.0, n=4))
    assert len(sampled) == 4
    with pytest.raises(ValueError, match="bad generation settings"):
        Sampling(temperature=-1.0)


def test_student_teacher_and_reasoner_generate_through_the_engine(pair, monkeypatch, tmp_path):
    from cotdistill.methods.lm_guided.reasoner import Query, Reasoner, ReasonerConfig

    calls: list[str] = []
    original = GenerationEngine.generate_batch

    def spy(self, batch, sampling, precision=None):
        calls.append(type(self.model).__name__)
        return original(self, batch, sampling, precision)

    monkeypatch.setattr(GenerationEngine, "generate_batch", spy)
    model, tokenizer = pair
    student = Student(model, tokenizer, None, use_chat_template=False)
    assert len(student.generate([student.prompt("Tom has 3 apples")], max_new_tokens=4, progress=False)) == 1
    assert len(calls) == 1

    teacher = HFTeacher(TeacherConfig(backend="hf", model="in-memory", device="cpu"), model, tokenizer)
    [result] = teacher.complete([CompletionRequest("k", prompt="Tom has", max_tokens=4)])
    assert result.ok and len(calls) == 2

    reasoner = Reasoner(teacher, ReasonerConfig(chat=False, max_answer_tokens=4))
    assert reasoner.answer([Query("How many apples?", "Tom has 3 apples.")])[0] is not None
    assert len(calls) == 3
