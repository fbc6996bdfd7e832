"""The probe on real Hugging Face ``transformers`` models (tiny configs, random weights, nothing
downloaded): the activation each block uses and its role, no false alarm on a learnable task,
training unchanged, and two broken set-ups told with their causes."""

from __future__ import annotations

import warnings

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.integration

from actlab.probe import Probe  # noqa: E402

SMALL = dict(vocab_size=64, hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=128)


def _bert(**kw):
    return transformers.BertForSequenceClassification(transformers.BertConfig(**SMALL, num_labels=2, **kw))


def _llama():
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(**SMALL, num_key_value_heads=2,
                                                                  max_position_embeddings=64))


def _gpt2():
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=64, n_embd=64, n_layer=4, n_head=4,
                                                                n_positions=64, bos_token_id=0, eos_token_id=0))


def _t5():
    return transformers.T5ForConditionalGeneration(transformers.T5Config(
        vocab_size=64, d_model=64, d_kv=16, d_ff=128, num_layers=3, num_heads=4, feed_forward_proj="gated-gelu",
        decoder_start_token_id=0))


def _train(build, lm: bool, steps: int = 60, lr: float = 1e-3, probe: bool = True, seed: int = 0):
    """AdamW on periodic token sequences (learnable); returns (probe or None, losses)."""
    transformers.logging.set_verbosity_error()
    torch.manual_seed(seed)
    model = build()
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    p = Probe(model).attach() if probe else None
    losses = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            x = torch.randint(0, 64, (16, 4), generator=g).repeat(1, 8)
            opt.zero_grad()
            out = model(input_ids=x, labels=x) if lm else model(input_ids=x, labels=x[:, 0] % 2)
            out.loss.backward()
            opt.step()
            if p is not None:
                p.step(loss=out.loss)
            losses.append(out.loss.item())
    if p is not None:
        p.detach()
    return p, losses


@pytest.mark.parametrize("build,lm,acts", [
    (_bert, False, {("gelu", "hidden"), ("tanh", "hidden")}),  # the pooler's tanh feeds the classifier
    (_gpt2, True, {("gelu_tanh", "hidden")}),                    # NewGELUActivation: the tanh form
    (_llama, True, {("silu", "hidden")}),                        # SwiGLU: SiLU is the block's activation
    (_t5, True, {("gelu_tanh", "hidden")}),                      # GeGLU
], ids=["bert", "gpt2", "llama", "t5"])
def test_real_models_activations_roles_and_no_false_alarm(build, lm, acts):
    probe, losses = _train(build, lm)
    assert losses[-1] < losses[0]
    assert {(l.spec.name, l.role) for l in probe.read().layers if l.spec is not None} == acts
    loud = [f for f in probe.findings() if f.severity in ("warning", "error")]
    assert not loud, loud


def test_training_bit_identical_with_the_probe_on_bert_with_dropout():
    _, with_probe = _train(_bert, False, steps=10)
    _, without = _train(_bert, False, steps=10, probe=False)
    assert with_probe == without


def test_gpt2_blown_up_by_its_learning_rate_is_told_so():
    probe, losses = _train(_gpt2, True, lr=5.0)
    assert losses[-1] > 10 * losses[0]
    found = [f for f in probe.findings() if f.kind == "loss_trend"]
    assert found and "diverg" in found[0].message and "learning rate too high" in found[0].cause, probe.findings()


def test_bert_at_a_huge_initializer_range_is_told_too_large():
    probe, _ = _train(lambda: _bert(initializer_range=1.0), False)
    found = {f.kind: f for f in probe.findings() if f.severity in ("warning", "error")}
    assert "exploding_gradients" in found and "too large" in found["exploding_gradients"].cause, found
    assert "intermediate" in found["exploding_gradients"].layers[0]  # within the encoder's GELUs
