"""Training losses (train.losses): hand-computed values and agreement with sentence-transformers' implementations."""

from __future__ import annotations

import math

import pytest
import torch

from train.losses import (
    VARIANTS,
    SparseDistillLoss,
    batch_scores,
    doc_l0,
    flops_loss,
    infonce_loss,
    kl_loss,
    l0_mask,
    margin_mse_loss,
    own_doc_scores,
    variant_vectors,
    warmup_lambda,
)

# 3 docs x 4 terms with l0 norms 2, 1, 4.
W = torch.tensor([[1.0, 2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0], [1.0, 1.0, 1.0, 1.0]])


def _random_batch(n_queries: int = 3, n_docs: int = 3, vocab: int = 40, seed: int = 0):
    """Sparse non-negative query/doc vectors and teacher scores, docs of query q in rows q*D.. (positive first)."""
    gen = torch.Generator().manual_seed(seed)
    queries = (torch.rand(n_queries, vocab, generator=gen) > 0.6).float() * torch.rand(n_queries, vocab, generator=gen)
    n = n_queries * n_docs
    docs = torch.relu(torch.randn(n, vocab, generator=gen) - 0.5 + 0.8 * torch.rand(n, 1, generator=gen))
    teacher = 5 * torch.randn(n_queries, n_docs, generator=gen)
    return queries, docs.requires_grad_(), teacher


def _columns(queries, docs, n_docs):
    """sentence-transformers' layout: [queries, positives, negatives_1, ...], each [Q, V]."""
    grouped = docs.reshape(queries.shape[0], n_docs, -1)
    return [queries] + [grouped[:, k] for k in range(n_docs)]


# ---------------------------------------------------------------- ranking: hand-computed values


def test_kl_two_by_three_by_hand():
    student = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    teacher = torch.tensor([[3.0, 2.0, 1.0], [5.0, 5.0, 5.0]])
    # Row 1: log p_t - log p_s = t - s = (2, 0, -2) (equal normalizers), so KL = (2e^2 - 2) / (e^2 + e + 1).
    # Row 2: both uniform, KL = 0. Mean over the 2 queries.
    e = math.e
    expected = (2 * e**2 - 2) / (e**2 + e + 1) / 2
    assert kl_loss(student, teacher).item() == pytest.approx(expected, rel=1e-6)


def test_kl_is_zero_for_shifted_teacher_and_has_no_teacher_gradient():
    student = torch.tensor([[1.0, -2.0, 0.5]], requires_grad=True)
    teacher = (student.detach() + 7.0).requires_grad_()
    loss = kl_loss(student, teacher)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    loss.backward()
    assert teacher.grad is None


def test_margin_mse_by_hand():
    student = torch.tensor([[3.0, 1.0, 2.0], [0.0, 0.0, 1.0]])
    teacher = torch.tensor([[5.0, 1.0, 5.0], [2.0, 1.0, 2.0]])
    # margins student (2, 1), (0, -1); teacher (4, 0), (1, 0); squared errors 4, 1, 1, 1.
    assert margin_mse_loss(student, teacher).item() == pytest.approx(7 / 4)


def test_infonce_own_docs_by_hand():
    scores = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    assert infonce_loss(scores).item() == pytest.approx((math.log1p(math.exp(-2)) + math.log(2)) / 2)
    assert infonce_loss(scores, temperature=2.0).item() == pytest.approx((math.log1p(math.exp(-1)) + math.log(2)) / 2)


def test_infonce_in_batch_targets_each_query_own_positive():
    # Q=2, D=2: query 0's positive is column 0, query 1's is column 2; each row: -log(e / (e + 3)).
    scores = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    assert infonce_loss(scores, in_batch=True).item() == pytest.approx(math.log1p(3 / math.e))


def test_scores_are_query_doc_inner_products():
    queries = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])
    docs = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0], [2.0, 3.0, 0.0], [0.0, 0.0, 5.0]])
    assert own_doc_scores(queries, docs).tolist() == [[3.0, 2.0], [3.0, 0.0]]
    assert batch_scores(queries, docs).tolist() == [[3.0, 2.0, 2.0, 10.0], [1.0, 0.0, 3.0, 0.0]]


@pytest.mark.parametrize(
    "call",
    [
        lambda: kl_loss(torch.zeros(2, 3), torch.zeros(2, 2)),
        lambda: margin_mse_loss(torch.zeros(2, 1), torch.zeros(2, 1)),
        lambda: infonce_loss(torch.zeros(2, 3), temperature=0.0),
        lambda: infonce_loss(torch.zeros(2, 3), in_batch=True),
        lambda: own_doc_scores(torch.zeros(2, 4), torch.zeros(5, 4)),
        lambda: own_doc_scores(torch.zeros(2, 4), torch.zeros(4, 3)),
    ],
)
def test_ranking_rejects_bad_shapes_and_options(call):
    with pytest.raises(ValueError):
        call()


# ---------------------------------------------------------------- ranking: agreement with sentence-transformers


def test_kl_and_margin_mse_match_sentence_transformers():
    from sentence_transformers.sparse_encoder.losses import SparseDistillKLDivLoss, SparseMarginMSELoss

    queries, docs, teacher = _random_batch(n_queries=4, n_docs=3)
    columns = _columns(queries, docs, 3)
    student = own_doc_scores(queries, docs)
    theirs_kl = SparseDistillKLDivLoss(None, temperature=1.0).compute_loss_from_embeddings(columns, teacher)
    theirs_mse = SparseMarginMSELoss(None).compute_loss_from_embeddings(columns, teacher)
    assert kl_loss(student, teacher).item() == pytest.approx(theirs_kl.item(), rel=1e-5)
    assert margin_mse_loss(student, teacher).item() == pytest.approx(theirs_mse.item(), rel=1e-5)


def test_in_batch_infonce_matches_multiple_negatives_ranking_loss():
    from sentence_transformers.sparse_encoder.losses import SparseMultipleNegativesRankingLoss
    from sentence_transformers.util import dot_score

    queries, docs, _ = _random_batch(n_queries=3, n_docs=2)
    theirs = SparseMultipleNegativesRankingLoss(None, scale=1 / 0.5, similarity_fct=dot_score)
    expected = theirs.compute_loss_from_embeddings(_columns(queries, docs, 2), None)
    ours = infonce_loss(batch_scores(queries, docs), temperature=0.5, in_batch=True)
    assert ours.item() == pytest.approx(expected.item(), rel=1e-5)


# ---------------------------------------------------------------- FLOPS and the l0 mask


def test_flops_by_hand_without_mask():
    # column means (2/3, 1, 1/3, 4/3) -> (4 + 9 + 1 + 16) / 9
    assert flops_loss(W).item() == pytest.approx(30 / 9)


def test_masked_flops_divides_by_all_documents():
    # t=2 keeps only doc 3 (l0 = 4 > 2; doc 1 has l0 = 2, not > 2): means (1/3,)*4 -> 4/9, not 4 (divisor 1).
    assert flops_loss(W, threshold=2).item() == pytest.approx(4 / 9)
    # t=1 keeps docs 1 and 3: column sums (2, 3, 1, 1) / 3 -> 15/9.
    assert flops_loss(W, threshold=1).item() == pytest.approx(15 / 9)
    # t=4 masks every document.
    assert flops_loss(W, threshold=4).item() == 0.0


def test_l0_mask_and_doc_l0():
    assert doc_l0(W).tolist() == [2.0, 1.0, 4.0]
    assert l0_mask(W, 2).tolist() == [0.0, 0.0, 1.0]
    assert l0_mask(W, None).tolist() == [1.0, 1.0, 1.0]


def test_masked_flops_gradient_is_exactly_zero_for_masked_documents():
    w = W.clone().requires_grad_()
    flops_loss(w, threshold=2).backward()
    assert torch.equal(w.grad[:2], torch.zeros(2, 4))
    # kept doc: d/dw_3j (w_3j / 3)^2 summed = 2 * (1/3) / 3 = 2/9 per term
    assert w.grad[2].tolist() == pytest.approx([2 / 9] * 4)


def test_flops_rejects_bad_input():
    with pytest.raises(ValueError):
        flops_loss(W, threshold=-1)
    with pytest.raises(ValueError):
        flops_loss(torch.zeros(4))


@pytest.mark.parametrize("threshold", [None, 0, 18, 22, 1000])
def test_flops_matches_sentence_transformers_flops_loss(threshold):
    from sentence_transformers.sparse_encoder.losses import FlopsLoss

    # Gradients are compared w.r.t. the logits: at a weight of exactly 0, |w| has gradient 0 and w has 1, but
    # relu passes no gradient there, so through SPLADE's activation both losses give the same gradient.
    logits = torch.randn(12, 40, generator=torch.Generator().manual_seed(3)).requires_grad_()
    theirs_logits = logits.detach().clone().requires_grad_()
    ours = flops_loss(torch.log1p(torch.relu(logits)), threshold)
    theirs = FlopsLoss(None, threshold=threshold).compute_loss_from_embeddings(torch.log1p(torch.relu(theirs_logits)))
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)
    ours.backward()
    theirs.backward()
    assert torch.allclose(logits.grad, theirs_logits.grad)
    assert logits.grad.abs().sum() > 0 or threshold == 1000


def test_flops_differs_from_sentence_transformers_only_on_negative_weights():
    """Documented difference: eq. 3 averages |w|; FlopsLoss averages w (same for SPLADE's non-negative vectors)."""
    from sentence_transformers.sparse_encoder.losses import FlopsLoss

    signed = torch.tensor([[1.0], [-1.0]])
    assert flops_loss(signed).item() == 1.0
    assert FlopsLoss(None).compute_loss_from_embeddings(signed).item() == 0.0


# ---------------------------------------------------------------- lambda warm-up


def test_warmup_is_quadratic():
    lam, T = 0.08, 100
    assert [warmup_lambda(lam, s, T) for s in (0, T // 2, T, 2 * T)] == pytest.approx([0.0, 0.02, 0.08, 0.08])
    assert warmup_lambda(lam, 0, 0) == lam


@pytest.mark.parametrize("args", [(-0.1, 0, 10), (float("nan"), 0, 10), (0.1, -1, 10), (0.1, 0, -1)])
def test_warmup_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        warmup_lambda(*args)


def test_warmup_matches_sentence_transformers_quadratic_callback():
    from sentence_transformers.sparse_encoder.callbacks.splade_callbacks import SpladeRegularizerWeightSchedulerCallback
    from sentence_transformers.sparse_encoder.losses import SparseMarginMSELoss, SpladeLoss
    from transformers import TrainerState

    lam = 0.04
    splade = SpladeLoss(
        None, SparseMarginMSELoss(None), document_regularizer_weight=lam, use_document_regularizer_only=True
    )
    callback = SpladeRegularizerWeightSchedulerCallback(splade, scheduler_type="quadratic", warmup_ratio=0.5)
    state = TrainerState(max_steps=200)
    callback.on_train_begin(None, state, None)
    assert callback.warmup_steps == 100
    for step in (1, 25, 50, 99, 100, 150):
        state.global_step = step
        callback.on_step_begin(None, state, None)
        assert warmup_lambda(lam, step, 100) == pytest.approx(splade.document_regularizer_weight, abs=1e-12)


# ---------------------------------------------------------------- activation variants (Table 3)

E1 = math.e - 1  # log1p(relu(e - 1)) = 1
LOG1P_CHAIN = {  # activation name -> its value at x = e - 1
    "relu": 1.0,
    "l0": math.log(2),
    "l0x2": math.log1p(math.log(2)),
    "l0x3": math.log1p(math.log1p(math.log(2))),
}


@pytest.mark.parametrize(
    ("variant", "rank", "flops"),
    [
        ("baseline", "relu", "relu"),
        ("l0", "l0", "l0"),
        ("de-l0", "relu", "l0"),
        ("inv-de-l0", "l0", "relu"),
        ("l0x2", "l0x2", "l0x2"),
        ("l0x3", "l0x3", "l0x3"),
    ],
)
def test_variant_vectors_by_hand(variant, rank, flops):
    x = torch.tensor([[E1, -3.0, 0.0]])
    rank_vectors, flops_vectors = variant_vectors(x, variant)
    assert rank_vectors[0].tolist() == pytest.approx([LOG1P_CHAIN[rank], 0.0, 0.0])
    assert flops_vectors[0].tolist() == pytest.approx([LOG1P_CHAIN[flops], 0.0, 0.0])


def test_variants_table_is_complete():
    assert set(VARIANTS) == {"baseline", "l0", "de-l0", "inv-de-l0", "l0x2", "l0x3"}


@pytest.mark.parametrize("name", ["relu", "l0x4", "", "L0"])
def test_unknown_variant_is_rejected(name):
    with pytest.raises(ValueError, match="baseline"):
        variant_vectors(torch.zeros(1, 2), name)


@pytest.mark.parametrize(("variant", "activation_function"), [("baseline", "relu"), ("l0", "log1p_relu")])
def test_variants_match_splade_pooling(variant, activation_function):
    from sentence_transformers.sparse_encoder.modules import SpladePooling

    gen = torch.Generator().manual_seed(1)
    logits = 3 * torch.randn(3, 6, 30, generator=gen)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4])
    max_logits = logits.masked_fill(mask.unsqueeze(-1) == 0, float("-inf")).amax(dim=1)
    pooling = SpladePooling(pooling_strategy="max", activation_function=activation_function)
    expected = pooling({"token_embeddings": logits.clone(), "attention_mask": mask})["sentence_embedding"]
    rank_vectors, flops_vectors = variant_vectors(max_logits, variant)
    assert torch.allclose(rank_vectors, expected, atol=1e-6)
    assert flops_vectors is rank_vectors


# ---------------------------------------------------------------- the combined loss


def test_combined_loss_returns_named_terms_by_hand():
    queries = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    docs = W.clone().requires_grad_()  # one query, D = 3
    teacher = torch.tensor([[2.0, 0.0, 1.0]])
    loss_fn = SparseDistillLoss(lambda_d=0.5, ranking="margin_mse", threshold=2, warmup_steps=10)
    out = loss_fn(queries, docs, docs, teacher, step=5)
    assert set(out) == {"loss", "ranking", "flops", "lambda", "doc_l0", "masked_fraction"}
    # student scores (1, 3, 2): margins (-2, -1) vs teacher (2, 1) -> (16 + 4) / 2
    assert out["ranking"].item() == pytest.approx(10.0)
    assert out["flops"].item() == pytest.approx(4 / 9)
    assert out["lambda"].item() == pytest.approx(0.5 * 0.25)
    assert out["loss"].item() == pytest.approx(10.0 + 0.125 * 4 / 9)
    assert out["doc_l0"].item() == pytest.approx(7 / 3)
    assert out["masked_fraction"].item() == pytest.approx(2 / 3)
    assert not out["doc_l0"].requires_grad and not out["lambda"].requires_grad
    out["loss"].backward()
    assert docs.grad is not None


def test_combined_loss_matches_sentence_transformers_components():
    from sentence_transformers.sparse_encoder.losses import FlopsLoss, SparseDistillKLDivLoss

    queries, docs, teacher = _random_batch(n_queries=4, n_docs=3)
    loss_fn = SparseDistillLoss(lambda_d=0.04, ranking="kl", threshold=15, warmup_steps=0)
    out = loss_fn(queries, docs, docs, teacher, step=0)
    columns = _columns(queries, docs, 3)
    base = SparseDistillKLDivLoss(None, temperature=1.0).compute_loss_from_embeddings(columns, teacher)
    # SpladeLoss regularizes torch.cat(embeddings[1:]): every document of the batch, column by column.
    reg = FlopsLoss(None, threshold=15).compute_loss_from_embeddings(torch.cat(columns[1:]))
    assert 0 < out["masked_fraction"].item() < 1  # the mask is actually exercised
    assert out["loss"].item() == pytest.approx((base + 0.04 * reg).item(), rel=1e-5)


def test_combined_loss_warmup_starts_at_ranking_only():
    queries, docs, teacher = _random_batch()
    loss_fn = SparseDistillLoss(lambda_d=1.0, warmup_steps=100)
    out = loss_fn(queries, docs, docs, teacher, step=0)
    assert out["lambda"].item() == 0.0
    assert out["loss"].item() == out["ranking"].item()


def test_combined_infonce_in_batch_and_decoupled_flops_vectors():
    queries, docs, _ = _random_batch(n_queries=2, n_docs=2)
    flops_docs = 2 * docs
    loss_fn = SparseDistillLoss(lambda_d=0.1, ranking="infonce", temperature=0.5, in_batch_negatives=True)
    out = loss_fn(queries, docs, flops_docs)
    assert out["ranking"].item() == pytest.approx(infonce_loss(batch_scores(queries, docs) / 0.5, in_batch=True).item())
    assert out["flops"].item() == pytest.approx(flops_loss(flops_docs).item())
    assert out["masked_fraction"].item() == 0.0


def test_kl_plus_in_batch_is_the_kl_term_plus_in_batch_infonce():
    queries, docs, teacher = _random_batch(n_queries=3, n_docs=2)
    out = SparseDistillLoss(lambda_d=0.1, ranking="kl+inbatch")(queries, docs, docs, teacher)
    kl = kl_loss(own_doc_scores(queries, docs), teacher)
    nce = infonce_loss(batch_scores(queries, docs), in_batch=True)
    assert out["ranking"].item() == pytest.approx((kl + nce).item())
    assert nce.item() > infonce_loss(own_doc_scores(queries, docs)).item()  # more negatives, harder
    with pytest.raises(ValueError, match="teacher_scores"):
        SparseDistillLoss(lambda_d=0.1, ranking="kl+inbatch")(queries, docs, docs)


def test_combined_loss_doc_vectors_follow_its_variant():
    x = torch.tensor([[E1, -1.0]])
    rank_vectors, flops_vectors = SparseDistillLoss(lambda_d=0.1, variant="de-l0").doc_vectors(x)
    assert rank_vectors[0].tolist() == pytest.approx([1.0, 0.0])
    assert flops_vectors[0].tolist() == pytest.approx([math.log(2), 0.0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lambda_d": 0.1, "ranking": "listnet"},
        {"lambda_d": 0.1, "variant": "l0x9"},
        {"lambda_d": -0.1},
        {"lambda_d": 0.1, "warmup_steps": -5},
        {"lambda_d": 0.1, "threshold": -1},
        {"lambda_d": 0.1, "ranking": "kl", "temperature": 2.0},
        {"lambda_d": 0.1, "ranking": "margin_mse", "in_batch_negatives": True},
        {"lambda_d": 0.1, "ranking": "kl+inbatch", "in_batch_negatives": True},
        {"lambda_d": 0.1, "ranking": "infonce", "temperature": 0.0},
    ],
)
def test_combined_loss_rejects_bad_options(kwargs):
    with pytest.raises(ValueError):
        SparseDistillLoss(**kwargs)


def test_combined_loss_rejects_missing_teacher_and_mismatched_vectors():
    queries, docs, teacher = _random_batch()
    loss_fn = SparseDistillLoss(lambda_d=0.1)
    with pytest.raises(ValueError, match="teacher_scores"):
        loss_fn(queries, docs, docs)
    with pytest.raises(ValueError, match="same shape"):
        loss_fn(queries, docs, docs[:-1], teacher)
