"""The fast MLM head: exact max-pooling, the bf16 screen, and MaxPooledProjection's hand-written backward."""

from __future__ import annotations

import pytest
import torch

from encode.activations import activate
from encode.sparse_head import (MaxPooledProjection, SparseMaxHead, _pool_batched, _pool_per_document, mlm_hidden,
                                output_layer, pooled_mlm_logits)


def naive_pooled(hidden, mask, weight, bias):
    """The reference: every logit materialised, padding masked, ``torch.max`` over tokens."""
    logits = hidden @ weight.T + bias
    return logits.masked_fill(~mask.bool()[:, :, None], float("-inf")).max(dim=1).values


def random_case(dtype, batch=3, length=6, width=5, vocab=11, seed=0):
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(batch, length, width, generator=gen, dtype=dtype)
    weight = torch.randn(vocab, width, generator=gen, dtype=dtype)
    bias = torch.randn(vocab, generator=gen, dtype=dtype)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[1, 4:] = 0  # right padding
    mask[2, 1:] = 0  # a single real token
    hidden[mask == 0] += 100.0  # padding would win every max if it were not masked
    return hidden, mask, weight, bias


def test_gradcheck_float64():
    hidden, mask, weight, bias = random_case(torch.float64)
    inputs = tuple(t.clone().requires_grad_() for t in (hidden, weight, bias))
    assert torch.autograd.gradcheck(lambda h, w, b: MaxPooledProjection.apply(h, mask, w, b), inputs)


@pytest.mark.parametrize("with_ties", [False, True])
def test_matches_naive_autograd(with_ties):
    hidden, mask, weight, bias = random_case(torch.float32, batch=4, length=9, width=16, vocab=300, seed=1)
    if with_ties:  # identical tokens give identical logits: the first one must get the whole gradient
        hidden[0, 3] = hidden[0, 1]
        hidden[0, 7] = hidden[0, 1]
        hidden[3, 2] = hidden[3, 0]
    upstream = torch.randn(4, 300, generator=torch.Generator().manual_seed(2))
    grads = []
    for fn in (MaxPooledProjection.apply, naive_pooled):
        inputs = [t.clone().requires_grad_() for t in (hidden, weight, bias)]
        out = fn(inputs[0], mask, inputs[1], inputs[2])
        (out * upstream).sum().backward()
        grads.append([out.detach()] + [t.grad for t in inputs])
    for ours, reference in zip(*grads):
        scale = reference.abs().max()
        assert (ours - reference).abs().max() <= 1e-4 * scale
    if with_ties:  # the duplicates of token 1 of document 0 receive nothing
        assert grads[0][1][0, 3].abs().max() == 0 and grads[0][1][0, 7].abs().max() == 0
        assert grads[0][1][0, 1].abs().max() > 0


@pytest.mark.parametrize("with_bias", [True, False])
def test_per_document_forward_agrees_with_the_batched_one(with_bias):
    """The CPU forward (one document's real tokens, cache-sized slices) against the batched GPU loop: the same token
    wins every max (ties: the first), values equal to float32 rounding; right, left and inner padding (padding rows
    +100 would win if they entered), a document without tokens, several vocabulary slices."""
    hidden, mask, weight, bias = random_case(torch.float32, batch=6, length=9, width=128, vocab=40_000, seed=6)
    hidden[0, 5] = hidden[0, 2]  # a tie: the first token wins in both
    mask[3] = torch.tensor([0, 0, 1, 1, 1, 1, 1, 1, 1])  # left padding
    mask[4] = torch.tensor([1, 0, 1, 1, 0, 1, 1, 1, 1])  # holes
    mask[5] = 0  # no real token
    hidden[mask == 0] += 100.0
    bias = bias - 50.0 if with_bias else None
    results = []
    for pool in (_pool_per_document, _pool_batched):
        pooled, argmax = torch.empty(6, 40_000), torch.empty(6, 40_000, dtype=torch.long)
        pool(hidden, mask, weight, bias, pooled, argmax)
        results.append((pooled, argmax))
    (ours, our_tokens), (batched, batched_tokens) = results
    assert torch.equal(our_tokens, batched_tokens)
    torch.testing.assert_close(ours, batched, rtol=1e-5, atol=1e-4)  # sums of 128 products of norm ~11 x ~11
    assert torch.isneginf(ours[5]).all() and (our_tokens[5] == 0).all()
    assert set(our_tokens[3].tolist()) <= set(range(2, 9)) and 1 not in set(our_tokens[4].tolist())
    assert 5 not in set(our_tokens[0].tolist()) and 2 in set(our_tokens[0].tolist())


def test_no_bias_and_no_grad_inputs():
    hidden, mask, weight, _ = random_case(torch.float64)
    weight.requires_grad_()
    out = MaxPooledProjection.apply(hidden, mask, weight, None)
    out.sum().backward()
    reference = weight.detach().clone().requires_grad_()
    naive_pooled(hidden, mask, reference, torch.zeros(weight.shape[0], dtype=weight.dtype)).sum().backward()
    torch.testing.assert_close(weight.grad, reference.grad)


def test_autocast_runs_products_in_low_precision():
    hidden, mask, weight, bias = random_case(torch.float32, vocab=40)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = MaxPooledProjection.apply(hidden, mask, weight, bias)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, naive_pooled(hidden, mask, weight, bias), rtol=2e-2, atol=5e-2)


@pytest.mark.parametrize("screen", [False, True])
def test_sparse_head_returns_exact_positive_entries(screen):
    hidden, mask, weight, bias = random_case(torch.float32, batch=3, length=7, width=32, vocab=5000, seed=3)
    decoder = torch.nn.Linear(32, 5000)
    decoder.weight.data, decoder.bias.data = weight, bias - 6.0  # most entries negative, as in SPLADE
    reference = naive_pooled(hidden, mask, weight, bias - 6.0)
    for b, (ids, values) in enumerate(SparseMaxHead(decoder, screen=screen)(hidden, mask)):
        expected = (reference[b] > 0).nonzero().squeeze(1)
        assert 0 < len(expected) < 5000
        assert torch.equal(ids, expected)
        torch.testing.assert_close(values, reference[b][expected], rtol=0, atol=1e-5)


@pytest.mark.parametrize("screen", [False, True])
def test_sparse_head_decides_near_zero_entries(screen):
    """Biases put every max logit at +-1e-3, far inside bf16's rounding error: the screen must still be exact."""
    hidden, mask, weight, _ = random_case(torch.float32, batch=3, length=50, width=128, vocab=4000, seed=4)
    sign = torch.tensor([1.0, -1.0]).repeat(2000)
    bias = -naive_pooled(hidden, mask, weight, torch.zeros(4000))[0] + 1e-3 * sign
    decoder = torch.nn.Linear(128, 4000)
    decoder.weight.data, decoder.bias.data = weight, bias
    ids, values = SparseMaxHead(decoder, screen=screen)(hidden, mask)[0]
    assert torch.equal(ids, (sign > 0).nonzero().squeeze(1))
    torch.testing.assert_close(values, torch.full_like(values, 1e-3), rtol=0, atol=1e-5)


@pytest.mark.parametrize("screen", [False, True])
def test_sparse_head_cut_to_a_vocabulary_keeps_exactly_those_entries(screen):
    """``vocabulary``: the entries kept are the whole head's, bit for bit, and ids stay the whole vocabulary's."""
    hidden, mask, weight, bias = random_case(torch.float32, batch=3, length=7, width=32, vocab=5000, seed=5)
    decoder = torch.nn.Linear(32, 5000)
    decoder.weight.data, decoder.bias.data = weight, bias - 6.0
    kept = torch.randperm(5000, generator=torch.Generator().manual_seed(1))[:400]
    whole = SparseMaxHead(decoder, screen=screen)(hidden, mask)
    cut = SparseMaxHead(decoder, screen=screen, vocabulary=kept.tolist() + kept[:10].tolist())(hidden, mask)
    found = 0
    for (ids, values), (cut_ids, cut_values) in zip(whole, cut):
        inside = torch.isin(ids, kept)
        assert torch.equal(cut_ids, ids[inside])  # ascending, whole-vocabulary ids
        torch.testing.assert_close(cut_values, values[inside], rtol=0, atol=1e-6)
        found += len(cut_ids)
    assert found > 0
    empty = SparseMaxHead(decoder, vocabulary=[])(hidden, mask)
    assert all(ids.numel() == 0 for ids, _ in empty)
    with pytest.raises(ValueError, match="vocabulary ids"):
        SparseMaxHead(decoder, vocabulary=[5000])


def test_sparse_head_options():
    decoder = torch.nn.Linear(4, 6)
    with pytest.raises(ValueError, match="float32"):
        SparseMaxHead(decoder, compute_dtype=torch.float16, screen=True)
    ids, values = SparseMaxHead(decoder).positive(torch.empty(0, 4))
    assert ids.numel() == 0 and values.numel() == 0
    with pytest.raises(ValueError, match="masked-language"):
        output_layer(torch.nn.Linear(2, 2))


def test_mlm_hidden_is_the_decoder_input(splade_tiny):
    tokenizer, model = splade_tiny
    batch = tokenizer(["sparse retrieval", "a longer second text about proteins"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        logits = model(**batch).logits
        hidden = mlm_hidden(model, **batch)
        decoder = output_layer(model)
        assert hidden.shape == (*logits.shape[:2], decoder.in_features)
        torch.testing.assert_close(decoder(hidden), logits, rtol=0, atol=1e-5)


def test_training_gradients_match_the_hf_path(splade_tiny):
    """d(loss)/d(parameters) through the fast head equals autograd through model(**batch).logits -> l0 -> max."""
    tokenizer, model = splade_tiny
    batch = tokenizer(["sparse retrieval with inverted indexes", "protein folding"], padding=True, return_tensors="pt")
    mask = batch["attention_mask"][:, :, None]
    losses = {
        "fast": lambda: activate(pooled_mlm_logits(model, **batch), "l0").pow(2).sum(),
        "naive": lambda: (activate(model(**batch).logits, "l0") * mask).max(dim=1).values.pow(2).sum(),
    }
    grads = {}
    for name, loss in losses.items():
        model.zero_grad()
        loss().backward()
        grads[name] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    assert grads["fast"].keys() == grads["naive"].keys() and len(grads["fast"]) > 10
    scale = max(g.abs().max() for g in grads["naive"].values())  # some exact zeros (key biases) are rounding noise
    for n, reference in grads["naive"].items():
        assert (grads["fast"][n] - reference).abs().max() <= 1e-4 * max(reference.abs().max(), 1e-2 * scale), n
