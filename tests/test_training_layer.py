"""The shared training layer: one arguments builder, one row builder, picklable rewards."""

from __future__ import annotations

import pickle

import pytest
import torch
from transformers import TrainingArguments

from cotdistill.errors import ConfigError
from cotdistill.methods import TrainConfig, TrainData
from cotdistill.methods.data import make_row
from cotdistill.methods.lm_guided.reasoner import Reasoner
from cotdistill.methods.lm_guided.rewarder import RewardConfig, Rewarder
from cotdistill.methods.lm_guided.rewards import REWARDS, LengthBounds, NoRepetition
from cotdistill.methods.lm_guided.rl import RLConfig, grpo_config
from cotdistill.methods.redis.pairs import SFTItem
from cotdistill.methods.redis.train import ReDisTrainConfig, tokenize_sft, training_args
from cotdistill.methods.sft import SFT, SFTMethodConfig
from cotdistill.methods.student_trainer import StudentTrainer
from cotdistill.methods.training_args import build_training_args
from cotdistill.models import StudentConfig, TinyConfig, load_student
from cotdistill.tasks import Example
from doubles import FirstWordReasoner

TINY = TinyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, vocab_size=300)
EXAMPLES = [Example(f"t{i}", "toy", f"What is {i} + 2?", str(i + 2), f"{i} plus 2 is {i + 2}.") for i in range(4)]
SHARED = TrainConfig(
    max_steps=7,
    epochs=2.0,
    lr=3e-4,
    batch_size=4,
    grad_accum=2,
    warmup_ratio=0.1,
    weight_decay=0.01,
    max_grad_norm=0.5,
    seed=11,
    save_steps=5,
    save_total_limit=3,
    logging_steps=3,
    precision="bf16",
    progress=False,
)
FIELDS = {
    "max_steps": SHARED.max_steps,
    "num_train_epochs": SHARED.epochs,
    "learning_rate": SHARED.lr,
    "per_device_train_batch_size": SHARED.batch_size,
    "gradient_accumulation_steps": SHARED.grad_accum,
    "warmup_steps": SHARED.warmup_ratio,
    "weight_decay": SHARED.weight_decay,
    "max_grad_norm": SHARED.max_grad_norm,
    "seed": SHARED.seed,
    "save_steps": SHARED.save_steps,
    "save_total_limit": SHARED.save_total_limit,
    "logging_steps": SHARED.logging_steps,
    "bf16": True,
    "fp16": False,
    "disable_tqdm": True,
    "gradient_checkpointing": False,
    "average_tokens_across_devices": True,
    "use_cpu": not torch.accelerator.is_available(),
    "report_to": [],
}
NOT_FOR_GRPO = ("num_train_epochs", "gradient_accumulation_steps", "weight_decay", "max_grad_norm")
"""``RLConfig`` has no such keys (GRPO trains ``max_steps`` steps with TrainConfig's defaults)."""


def student():
    return load_student(StudentConfig(tiny=TINY), [e.question + " " + e.rationale for e in EXAMPLES])


def mapped(args: TrainingArguments, names=FIELDS) -> dict:
    return {name: getattr(args, name) for name in names}


def trl_classes() -> list[type]:
    from trl import DPOConfig, GRPOConfig, SFTConfig
    from trl.experimental.orpo import ORPOConfig

    return [SFTConfig, ORPOConfig, DPOConfig, GRPOConfig]


@pytest.mark.parametrize("args_cls", [TrainingArguments, *trl_classes()], ids=lambda c: c.__name__)
def test_the_builder_maps_the_shared_fields_alike_for_every_arguments_class(tmp_path, args_cls):
    args = build_training_args(SHARED, tmp_path, args_cls=args_cls)
    assert mapped(args) == FIELDS
    assert args.output_dir == str(tmp_path) and args.lr_scheduler_type == "linear"


def test_the_sft_redis_and_grpo_trainers_get_the_same_arguments(tmp_path):
    """The same settings written in each method's config reach its trainer identically."""
    rows = SFT().build_rows(student(), TrainData(EXAMPLES), SFTMethodConfig(), SHARED)
    sft_args = StudentTrainer(student(), rows, SHARED, tmp_path / "sft").args
    redis = ReDisTrainConfig(
        sft_epochs=SHARED.epochs,
        sft_lr=SHARED.lr,
        batch_size=SHARED.batch_size,
        grad_accum=SHARED.grad_accum,
        warmup_ratio=SHARED.warmup_ratio,
        seed=SHARED.seed,
        precision=SHARED.precision,
    )
    from trl import GRPOConfig, SFTConfig

    redis_args, _ = training_args(student(), redis, "sft", tmp_path / "redis", SFTConfig)
    rl = RLConfig(
        max_steps=SHARED.max_steps,
        lr=SHARED.lr,
        prompts_per_step=2,
        num_generations=2,
        warmup_ratio=SHARED.warmup_ratio,
        logging_steps=SHARED.logging_steps,
        save_steps=SHARED.save_steps,
        save_total_limit=SHARED.save_total_limit,
        seed=SHARED.seed,
        precision=SHARED.precision,
        scheduler="linear",
    )
    grpo_args = grpo_config(rl, tmp_path / "rl", [1.0])
    assert isinstance(redis_args, SFTConfig) and isinstance(grpo_args, GRPOConfig)
    assert mapped(sft_args) == FIELDS
    shared_with_redis = ("num_train_epochs", "learning_rate", "per_device_train_batch_size", "warmup_steps", "seed")
    assert mapped(redis_args, shared_with_redis) == mapped(sft_args, shared_with_redis)
    grpo_fields = [name for name in FIELDS if name not in NOT_FOR_GRPO and name != "disable_tqdm"]
    assert mapped(grpo_args, grpo_fields) == mapped(sft_args, grpo_fields)
    for args in (redis_args, grpo_args):  # what the ReDis and GRPO configs leave at TrainConfig's defaults
        assert (args.weight_decay, args.max_grad_norm, args.disable_tqdm) == (0.0, 1.0, False)
        assert (args.bf16, args.fp16, args.gradient_checkpointing) == (True, False, False)
    assert redis_args.max_length == redis.max_length and redis_args.save_strategy == "no"
    assert grpo_args.output_dir == str(tmp_path / "rl" / "checkpoints") and grpo_args.num_generations == 2


def test_method_configs_validate_their_shared_fields_as_train_config_does():
    with pytest.raises(ValueError, match="warmup_ratio must be in"):
        RLConfig(warmup_ratio=1.0)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        ReDisTrainConfig(batch_size=0)
    assert RLConfig(prompts_per_step=3, num_generations=4).train_config().batch_size == 12
    align = ReDisTrainConfig(align_epochs=2.0, align_lr=1e-5).stage("align")
    assert (align.epochs, align.lr, align.max_length) == (2.0, 1e-5, 1024)


def test_extras_cannot_override_a_shared_argument(tmp_path):
    with pytest.raises(TypeError, match="learning_rate come from the TrainConfig"):
        build_training_args(TrainConfig(), tmp_path, learning_rate=1.0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 runs on CUDA")
def test_a_precision_the_device_cannot_run_names_the_configs_key(tmp_path):
    with pytest.raises(ConfigError, match="rl.precision: fp16 needs a CUDA GPU"):
        grpo_config(RLConfig(precision="fp16"), tmp_path, [1.0])


def test_one_row_builder_cuts_the_side_it_is_told():
    s = student()
    full = make_row(s, s.prompt("What is 1 + 2?"), "1 plus 2 is 3.", max_length=512)
    right = make_row(s, s.prompt("What is 1 + 2?"), "1 plus 2 is 3.", max_length=6)
    left = make_row(s, s.prompt("What is 1 + 2?"), "1 plus 2 is 3.", max_length=6, truncation_side="left")
    assert right["input_ids"] == full["input_ids"][:6] and right["labels"] == full["labels"][:6]
    assert left["input_ids"] == full["input_ids"][-6:] and left["labels"] == full["labels"][-6:]
    # the SFT method keeps the prompt's start, ReDis the completion's end (as before)
    data = TrainData(EXAMPLES[:1])
    (sft_row,) = SFT().build_rows(s, data, SFTMethodConfig(), TrainConfig(max_length=6))
    prompt = s.prompt(EXAMPLES[0].question, data.instruction("toy"))
    uncut = make_row(s, prompt, EXAMPLES[0].rationale, max_length=512)
    assert sft_row["input_ids"] == uncut["input_ids"][:6] and sft_row["labels"] == uncut["labels"][:6]
    (redis_row,) = tokenize_sft(s, [SFTItem("io", "t", "d", "What is 1 + 2?", "1 plus 2 is 3.")], 6)
    assert redis_row == {"input_ids": left["input_ids"], "labels": left["labels"]}


def test_parameterised_rewards_are_picklable_callables():
    length = LengthBounds(min_words=2, max_words=3)
    for reward in (length, NoRepetition(ngram=2), REWARDS.get("length"), REWARDS.get("no_repetition")):
        again = pickle.loads(pickle.dumps(reward))
        assert again == reward and again(["a b c d e f g", "a a a a"]) == reward(["a b c d e f g", "a a a a"])
    assert length(["a b c d e f"]) == [0.0] and REWARDS.get("length")(["a b c d e f"]) == [6 / 8]


def test_the_rewarders_trl_functions_pickle_and_keep_their_names_and_parameters():
    weights = {"exact_match": 1.0, "length": 0.5, "no_repetition": 0.2}
    rewarder = Rewarder(Reasoner(FirstWordReasoner()), RewardConfig(weights=weights, min_words=1, max_words=2))
    columns = {"question": ["q", "q"], "context": ["", ""], "answer": ["Paris", "Rome"], "supporting": [[], []]}
    completions = ["Paris is the answer", "Rome"]
    funcs = rewarder.trl_reward_funcs()
    copies = pickle.loads(pickle.dumps(funcs))
    assert [f.__name__ for f in copies] == list(weights)
    for func, copy in zip(funcs, copies):
        assert copy(["p", "p"], completions, **columns) == func(["p", "p"], completions, **columns)
    by_name = {f.__name__: f(["p", "p"], completions, **columns) for f in funcs}
    assert by_name["exact_match"] == [1.0, 1.0] and by_name["length"] == [0.0, 1.0]
    assert rewarder.score(completions, **columns) == by_name
