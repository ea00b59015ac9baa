"""LoRA: only the adapters train, and saved adapters reload onto the base to the same outputs."""

from __future__ import annotations

import copy

import torch

from cuecraft.config.model import build_model
from cuecraft.train.lora import add_lora, load_lora, save_lora
from tests.train.helpers import fast_config


def test_only_adapters_train_and_reload(tmp_path):
    stack, _, dit, _ = build_model(fast_config())
    with torch.no_grad():
        for p in dit.parameters():  # a non-trivial base (adaLN-zero starts at exactly zero output)
            torch.nn.init.normal_(p, std=0.05)
    base = copy.deepcopy(dit)
    add_lora(dit, r=4, alpha=8, targets=["self_attention", "cross_attention", "mlp"])
    trainable = [name for name, p in dit.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    assert any("cross_attention.kv.lora_A" in n for n in trainable) and any("mlp.0.lora_B" in n for n in trainable)
    assert not any(n.startswith("out.") for n in trainable)  # the output layer is no projection of a block
    frozen = {n: p.detach().clone() for n, p in dit.named_parameters() if not p.requires_grad}
    with torch.no_grad():
        fused = stack.fuser(stack.provider(stack.provider.tokenize([{"name": "piece_000001", "bpm": 90}] * 2)))
    x, t = torch.randn(2, 16, 10), torch.rand(2)
    optimizer = torch.optim.AdamW([p for p in dit.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        dit(x, t, fused).square().mean().backward()
        optimizer.step()
    for name, p in dit.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), name
    with torch.no_grad():
        tuned, plain = dit(x, t, fused), base(x, t, fused)
    assert (tuned - plain).abs().max() > 1e-4  # the adapters changed the output
    save_lora(dit, tmp_path / "lora")
    reloaded = load_lora(copy.deepcopy(base), tmp_path / "lora")
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x, t, fused), tuned, atol=1e-6, rtol=0)
