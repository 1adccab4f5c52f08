"""Mixed precision: the components under autocast. CUDA's `use_amp` in AllenNLP's trainer is
fp16 autocast plus a `GradScaler`; the CPU autocast below runs the same casting rules (fp16 and
bf16 matmuls, fp32 layer norms and softmax), so these tests exercise the dtypes the late-prompt
components meet under `use_amp`, including the fp16 attention bias whose minimum becomes -inf.
Parameters, their gradients and the optimizer state stay fp32."""
import pytest
import torch

from models.test_late_prompt_classifier import build, tensors
from modules.test_late_prompt_components import TEXTS, build_pair, tokenize


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("family", ["roberta", "gpt2"])
@pytest.mark.parametrize("generator", ["npg", "mppg"])
def test_autocast_keeps_fp32_parameters_and_gradients(tiny_models, family, generator, dtype):
    torch.manual_seed(0)
    embedder, encoder = build_pair(tiny_models[family], family, generator=generator)
    embedder.eval(), encoder.eval()
    ids, mask = tokenize(tiny_models[family], family, TEXTS)
    reference = encoder(embedder(ids, mask), mask)
    with torch.autocast("cpu", dtype=dtype):
        pooled = encoder(embedder(ids, mask), mask)
    torch.testing.assert_close(pooled.float(), reference, atol=0.1, rtol=0.05)
    (pooled.float() * torch.randn_like(reference)).sum().backward()
    for name, parameter in encoder.generator.named_parameters():
        assert parameter.dtype == torch.float32 and parameter.grad.dtype == torch.float32, name
        assert bool(torch.isfinite(parameter.grad).all()) and bool(parameter.grad.abs().sum() > 0), name


def _train(model_dir, family, *, amp, steps=20):
    """AllenNLP's trainer loop with `use_amp` (autocast forward, scaled backward, `scaler.step`,
    `scaler.update`), or the plain fp32 loop. Returns the model, optimizer, initial and final
    trainable weights (flat), losses and the number of steps the scaler skipped."""
    torch.manual_seed(0)
    reader, vocab, model = build(model_dir, family)
    batch = tensors(reader, vocab, TEXTS, labels=["1", "0"])
    trainable = [p for p in model.parameters() if p.requires_grad]
    initial = torch.cat([p.detach().flatten().clone() for p in trainable])
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    scaler = torch.amp.GradScaler("cpu", enabled=amp)
    model.train()
    losses, skipped = [], 0
    for _ in range(steps):
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16, enabled=amp):
            loss = model(**batch)["loss"]
        scaler.scale(loss).backward()
        scale = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        skipped += scaler.get_scale() < scale  # the scaler lowers its scale after a skipped step
        losses.append(float(loss.detach()))
    final = torch.cat([p.detach().flatten() for p in trainable])
    return model, optimizer, initial, final, losses, skipped


@pytest.mark.parametrize("family", ["roberta", "gpt2"])
def test_fp16_autocast_with_grad_scaler_follows_fp32_training(tiny_models, family):
    """Twenty `use_amp`-style steps land where twenty fp32 steps land, with fp32 weights and Adam
    moments throughout and the frozen backbone untouched."""
    _, _, initial, reference, reference_losses, _ = _train(tiny_models[family], family, amp=False)
    model, optimizer, _, final, losses, skipped = _train(tiny_models[family], family, amp=True)
    assert skipped <= 2, f"the grad scaler skipped {skipped} of 20 steps (non-finite gradients)"
    assert max(abs(a - b) for a, b in zip(losses, reference_losses)) < 1e-2, (losses, reference_losses)
    moved = (reference - initial).norm()
    assert float(moved) > 0.5, "fp32 training did not move the generator: the test would prove nothing"
    assert float((final - reference).norm()) < 0.15 * float(moved)
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            assert parameter.dtype == torch.float32, name
            state = optimizer.state[parameter]
            assert state["exp_avg"].dtype == state["exp_avg_sq"].dtype == torch.float32, name
    # The frozen backbone: the AMP run's weights equal a freshly built model's.
    torch.manual_seed(0)
    _, _, fresh = build(tiny_models[family], family)
    fresh_weights = dict(fresh.named_parameters())
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            assert torch.equal(parameter, fresh_weights[name]), name
