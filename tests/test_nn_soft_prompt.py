"""Soft prompts: shapes, per-domain selection, gradients through a tiny LM (full and LoRA),
gradients through the reversal, and save/load round trips."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

from cotdistill.config import from_dict
from cotdistill.errors import ConfigError
from cotdistill.nn import Reparameterization, SoftPrompt, SoftPromptConfig, grad_reverse

HIDDEN = 32


@pytest.fixture
def tiny_lm() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(config)


def _forward_with_prompt(model, prompt: SoftPrompt, ids: torch.Tensor, domain_ids=None):
    embeds = model.get_input_embeddings()(ids)
    virtual = prompt(ids.shape[0], domain_ids)
    return model(inputs_embeds=torch.cat([virtual, embeds], dim=1), output_hidden_states=True)


def test_shapes_and_per_domain_selection() -> None:
    prompt = SoftPrompt(SoftPromptConfig(num_tokens=3, per_domain_tokens=2), HIDDEN, ["arith", "logic"])
    out = prompt(3, prompt.domain_ids(["logic", "unseen", "arith"]))
    assert out.shape == (3, 5, HIDDEN) and prompt.length == 5
    assert torch.equal(out[0, :3], out[2, :3])  # shared part
    table = torch.stack([prompt(1, torch.tensor([d]))[0, 3:] for d in (0, 1)])
    assert torch.equal(out[0, 3:], table[1]) and torch.equal(out[2, 3:], table[0])
    assert torch.allclose(out[1, 3:], table.mean(dim=0))  # unknown domain -> mean of domain prompts
    assert torch.allclose(prompt(2)[:, 3:], table.mean(dim=0).expand(2, -1, -1))


@pytest.mark.parametrize("kind", list(Reparameterization))
def test_prompt_receives_gradients_with_full_finetuning(tiny_lm, kind) -> None:
    prompt = SoftPrompt(SoftPromptConfig(num_tokens=4, reparameterization=kind), HIDDEN)
    ids = torch.randint(0, 64, (2, 6))
    out = _forward_with_prompt(tiny_lm, prompt, ids)
    out.logits[:, -1].logsumexp(-1).sum().backward()
    for name, param in prompt.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_prompt_and_lora_receive_gradients_through_the_reversal(tiny_lm) -> None:
    lora = get_peft_model(tiny_lm, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))
    # B starts at zero in LoRA; perturb it so A also gets a gradient
    for name, param in lora.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
    prompt = SoftPrompt(SoftPromptConfig(num_tokens=4), HIDDEN, ["a", "b"])
    ids = torch.randint(0, 64, (2, 6))
    hidden = _forward_with_prompt(lora, prompt, ids).hidden_states[-1]
    grad_reverse(hidden.mean(dim=1), 0.5).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in prompt.parameters())
    lora_grads = [p.grad for n, p in lora.named_parameters() if "lora_" in n]
    assert lora_grads and all(g is not None and g.abs().sum() > 0 for g in lora_grads)
    assert all(p.grad is None for n, p in lora.named_parameters() if "lora_" not in n)


@pytest.mark.parametrize("kind", list(Reparameterization))
def test_save_load_round_trip(tmp_path, kind) -> None:
    config = SoftPromptConfig(num_tokens=3, per_domain_tokens=2, reparameterization=kind, encoder_hidden_size=16)
    prompt = SoftPrompt(config, HIDDEN, ["x", "y", "z"])
    prompt.match_scale(torch.randn(50, HIDDEN) * 0.05)
    with torch.no_grad():
        for param in prompt.parameters():
            param.add_(0.01)  # "trained" weights, not the init
    prompt.save(tmp_path)
    assert SoftPrompt.exists(tmp_path)

    loaded = SoftPrompt.load(tmp_path)
    ids = torch.tensor([2, -1, 0])
    assert loaded.domains == ["x", "y", "z"] and loaded.config == config
    assert torch.equal(loaded.output_scale, prompt.output_scale)
    assert torch.equal(loaded.eval()(3, ids), prompt.eval()(3, ids))


def test_match_scale_sets_output_rms() -> None:
    prompt = SoftPrompt(SoftPromptConfig(num_tokens=16), HIDDEN)
    reference = torch.randn(1000, HIDDEN) * 0.02
    prompt.match_scale(reference)
    rms = prompt(1).pow(2).mean().sqrt().item()
    assert rms == pytest.approx(reference.pow(2).mean().sqrt().item(), rel=1e-4)


def test_config_validation_names_the_bad_value() -> None:
    with pytest.raises(ConfigError, match="num_tokens.*0"):
        from_dict(SoftPromptConfig, {"num_tokens": 0}, where="r.yaml")
    with pytest.raises(ConfigError, match="reparameterization"):
        from_dict(SoftPromptConfig, {"reparameterization": "gru"}, where="r.yaml")
    with pytest.raises(ValueError, match="domains"):
        SoftPrompt(SoftPromptConfig(per_domain_tokens=2), HIDDEN)
