"""PRADA's adversarial objectives, the discriminator's own optimizer group, round-robin target rows,
and the warning when the reversal relabels the domains instead of mixing them."""

import json
import logging
import math

import pytest
import torch

from cotdistill.config import from_dict
from cotdistill.errors import CotDistillError
from cotdistill.methods import TrainConfig, TrainData
from cotdistill.methods.prada import DISCRIMINATOR, PRADA, MixedBatchSampler, PRADAConfig, PRADATrainer
from cotdistill.models import StudentConfig, load_student
from cotdistill.nn import DomainDiscriminator, Objective, adversarial_terms, confusion_loss, domain_loss
from cotdistill.tasks import Example


def test_confusion_loss_is_ln_k_at_uniform_and_averages_per_domain() -> None:
    classes = torch.tensor([0, 0, 0, 1])
    assert confusion_loss(torch.zeros(4, 3), classes).item() == pytest.approx(math.log(3))
    logits = torch.tensor([[5.0, 0.0], [5.0, 0.0], [5.0, 0.0], [0.0, 0.0]])
    per_row = -torch.log_softmax(logits, -1).mean(-1)
    assert confusion_loss(logits, torch.tensor([0, 0, 0, 1])).item() == pytest.approx(
        (per_row[:3].mean() + per_row[3]).item() / 2
    )


def _terms(objective: Objective, lam: float):
    torch.manual_seed(0)
    disc = DomainDiscriminator(4, 2, hidden_size=8, dropout=0.0)
    features = torch.randn(6, 4, requires_grad=True)
    classes = torch.tensor([0, 0, 0, 1, 1, 1])
    terms = adversarial_terms(disc, features, classes, lam, objective)
    terms.total.backward()
    return disc, features, classes, terms


def test_reversal_flips_the_features_gradient_only() -> None:
    disc, features, classes, _ = _terms(Objective.REVERSAL, 0.5)
    reference = features.detach().clone().requires_grad_(True)
    disc.zero_grad()
    domain_loss(disc(reference), classes).backward()
    assert torch.allclose(features.grad, -0.5 * reference.grad)


def test_confusion_trains_the_discriminator_on_detached_features_and_the_student_towards_uniform() -> None:
    disc, features, classes, terms = _terms(Objective.CONFUSION, 0.5)
    disc_grads = [p.grad.clone() for p in disc.parameters()]
    disc.zero_grad()
    domain_loss(disc(features.detach()), classes).backward()  # the discriminator's gradient: its own CE only
    assert all(torch.allclose(a, p.grad) for a, p in zip(disc_grads, disc.parameters()))
    reference = features.detach().clone().requires_grad_(True)
    confusion_loss(disc(reference), classes).backward()
    assert torch.allclose(features.grad, 0.5 * reference.grad)  # the student's gradient: lambda x confusion
    assert terms.confusion is not None and terms.total.item() == pytest.approx(
        (terms.domain_loss + 0.5 * terms.confusion).item()
    )


def test_target_rows_are_taken_round_robin_over_domains() -> None:
    labelled, unlabelled = list(range(8)), list(range(8, 16))
    groups = [0, 0, 1, 1, 1, 1, 1, 1]  # two rows of one target domain, six of another
    order = list(MixedBatchSampler(labelled, unlabelled, [5] * 16, 2, 2, seed=1, unlabelled_groups=groups))
    batches = [order[i : i + 4] for i in range(0, len(order), 4)]
    assert len(batches) == 4
    for batch in batches:
        assert sorted(groups[i - 8] for i in batch[2:]) == [0, 1]
    with pytest.raises(ValueError, match="unlabelled_groups has 1 entries for 8 rows"):
        MixedBatchSampler(labelled, unlabelled, [5] * 16, 2, 2, seed=1, unlabelled_groups=[0])


def _example(i: int, domain: str, labelled: bool = True) -> Example:
    answer = str(i % 5)
    rationale = f"{i % 5} is it. The answer is {answer}." if labelled else None
    return Example(f"{domain}-{i}", domain, f"[{domain}] what is {i % 5}?", answer if labelled else "", rationale)


def _trainer(tmp_path, **config) -> PRADATrainer:
    data = TrainData([_example(i, "src") for i in range(8)], [_example(i, "tgt", False) for i in range(4)])
    texts = [e.question for e in data.labelled + data.unlabelled] + [e.rationale for e in data.labelled]
    tiny = {"hidden_size": 16, "num_heads": 2, "intermediate_size": 32, "vocab_size": 300}
    student = load_student(from_dict(StudentConfig, {"tiny": tiny}), texts)
    method, prada = PRADA(), PRADAConfig(soft_prompts=False, **config)
    train = TrainConfig(max_steps=10, batch_size=4, warmup_ratio=0.5, lr=1e-2, progress=False)
    rows = method.build_rows(student, data, prada, train)
    return PRADATrainer(
        student,
        rows,
        train,
        tmp_path,
        method_config=prada,
        extra_modules=method.extra_modules(student, data, prada),
        domain_classes=method.domain_classes(data, prada),
    )


def test_discriminator_lr_gives_the_discriminator_a_constant_group(tmp_path) -> None:
    trainer = _trainer(tmp_path, discriminator_lr=2e-3)
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    disc = {id(p) for p in trainer._module().extra[DISCRIMINATOR].parameters()}
    last = trainer.optimizer.param_groups[-1]
    assert {id(p) for p in last["params"]} == disc and last["weight_decay"] == 0.0
    assert not any(id(p) in disc for g in trainer.optimizer.param_groups[:-1] for p in g["params"])
    for _ in range(8):
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
        assert last["lr"] == pytest.approx(2e-3)
    assert trainer.optimizer.param_groups[0]["lr"] < 1e-2  # the student's group decays


def test_default_discriminator_shares_the_students_schedule(tmp_path) -> None:
    trainer = _trainer(tmp_path)
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    disc = {id(p) for p in trainer._module().extra[DISCRIMINATOR].parameters()}
    assert all(any(id(p) not in disc for p in g["params"]) for g in trainer.optimizer.param_groups)


def test_relabelled_domains_warn_once(tmp_path, caplog) -> None:
    trainer = _trainer(tmp_path, objective="reversal")
    with caplog.at_level(logging.WARNING, logger="cotdistill.methods.prada"):
        trainer.log({"domain_loss": 0.5, "domain_acc": 0.9})
        assert "relabelled" not in caplog.text
        trainer.log({"domain_loss": 4.0, "domain_acc": 0.1})
        trainer.log({"domain_loss": 4.0, "domain_acc": 0.1})
    assert caplog.text.count("relabelled") == 1 and "objective=confusion" in caplog.text


def test_family_alignment_shows_the_discriminator_only_families_with_a_source_and_a_target() -> None:
    data = TrainData(
        [_example(i, "arith_a") for i in range(2)] + [_example(i, "coin") for i in range(2)],
        [_example(i, "arith_t", False) for i in range(2)] + [_example(i, "letters", False) for i in range(2)],
        families={"arith_a": "arithmetic", "arith_t": "arithmetic", "coin": "symbolic", "letters": "other"},
    )
    method = PRADA()
    assert method.domains(data) == (["arith_a", "coin"], ["arith_t", "letters"])
    assert method.domain_classes(data, PRADAConfig(align="family")) == [0, -1, 1, -1]
    assert method.domain_classes(data, PRADAConfig(align="family", domain_labels="source_target")) == [0, -1, 1, -1]
    assert method.domain_classes(data, PRADAConfig()) == [0, 1, 2, 3]
    assert method.aligned_domains(data, PRADAConfig(align="family")) == {"arith_a", "arith_t"}


def test_family_alignment_trains_on_the_aligned_rows_only(tmp_path) -> None:
    data = TrainData(
        [_example(i, "arith_a") for i in range(6)] + [_example(i, "coin") for i in range(6)],
        [_example(i, "arith_t", False) for i in range(4)] + [_example(i, "letters", False) for i in range(4)],
        families={"arith_a": "arithmetic", "arith_t": "arithmetic", "coin": "symbolic", "letters": "other"},
    )
    texts = [e.question for e in data.labelled + data.unlabelled] + [e.rationale for e in data.labelled]
    tiny = {"hidden_size": 16, "num_heads": 2, "intermediate_size": 32, "vocab_size": 300}
    student = load_student(from_dict(StudentConfig, {"tiny": tiny}), texts)
    config = PRADAConfig(soft_prompts=False, align="family", objective="confusion")
    rows = PRADA().build_rows(student, data, config, TrainConfig())
    assert sum(1 for r in rows if all(label == -100 for label in r["labels"])) == 4  # no 'letters' rows
    PRADA().train(
        student, data, TrainConfig(max_steps=3, batch_size=4, logging_steps=1, progress=False), config, tmp_path
    )
    log = json.loads((tmp_path / "train_summary.json").read_text())["log"]
    assert all(0.0 <= e["domain_acc"] <= 1.0 and e["confusion_loss"] > 0 for e in log if "domain_acc" in e)


def test_unlabelled_rows_can_be_kept_from_moving_the_input_embeddings(tmp_path) -> None:
    trainer = _trainer(tmp_path, target_embeddings=False)
    module = trainer._module()
    assert module.unlabelled_rows_train_embeddings is False
    rows = [r for r in trainer.train_dataset if all(label == -100 for label in r["labels"])][:2]
    batch = trainer.data_collator(rows)
    embedding = module.model.get_input_embeddings().weight
    for flag, moves in [(False, False), (True, True)]:
        module.unlabelled_rows_train_embeddings = flag
        module.zero_grad()
        out = module(batch["input_ids"], batch["attention_mask"], batch["labels"])
        out.last_hidden_state.pow(2).mean().backward()  # a loss on the unlabelled rows' features only
        assert bool(embedding.grad is not None and embedding.grad.abs().sum() > 0) is moves
        assert any(bool(p.grad is not None and p.grad.abs().sum() > 0) for p in module.model.get_decoder().parameters())


def test_align_domains_names_the_domains_the_discriminator_sees() -> None:
    data = TrainData(
        [_example(i, "arith_a") for i in range(2)] + [_example(i, "coin") for i in range(2)],
        [_example(i, "arith_t", False) for i in range(2)] + [_example(i, "letters", False) for i in range(2)],
    )
    config = PRADAConfig(align_domains=["arith_a", "arith_t"], domain_labels="source_target")
    assert PRADA().domain_classes(data, config) == [0, -1, 1, -1]
    with pytest.raises(CotDistillError, match=r"align_domains names \['nope'\]"):
        PRADA().aligned_domains(data, PRADAConfig(align_domains=["arith_a", "nope"]))
