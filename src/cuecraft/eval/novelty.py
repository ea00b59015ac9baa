"""Novelty and diversity of generations in an embedding space (cuecraft.eval.embedding).

Notation: N generations, R reference (training) items, E embedding width.

- ``sim_aa(generations, references, threshold)``: MusicLDM's SIM_AA@T (Chen et al., 2023, sec. 4):
  the share of generations whose most similar reference item, by cosine similarity of audio
  embeddings, is above T (the paper reports T = 0.90 and 0.95 over the training set; lower is
  more novel). ``nearest_similarity`` gives each generation's maximum cosine itself.
- ``mean_pairwise_distance(embeddings)``: the mean of ``1 - cosine`` over the N (N - 1) / 2 pairs
  of the generations of one prompt (0 when all are the same; higher is more diverse);
  ``diversity_by_prompt`` computes it per prompt.

Degenerate input gives numbers, never NaN: the cosine of a zero vector with a non-zero one is 0
and of two zero vectors 1 (they are the same point); one generation has a pairwise distance of 0
(there is no pair). Wrong shapes, empty sets, non-finite values and thresholds outside [-1, 1]
are EvaluationInputErrors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cuecraft.errors import EvaluationInputError

SIM_AA_THRESHOLDS = (0.90, 0.95)  # MusicLDM's SIM_AA@90 and SIM_AA@95


def _matrix(x, name: str) -> np.ndarray:
    array = np.asarray(x, dtype=np.float64) if not hasattr(x, "detach") else x.detach().cpu().double().numpy()
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise EvaluationInputError(f"{name}: expected embeddings [N, E] with N >= 1 and E >= 1; got shape "
                                   f"{list(array.shape)}")
    if not np.isfinite(array).all():
        raise EvaluationInputError(f"{name}: holds NaN or infinite values")
    return array


def cosine_matrix(a, b) -> np.ndarray:
    """Cosine similarities [N, R] of a [N, E] and b [R, E] (zero vectors as in the module docstring)."""
    a, b = _matrix(a, "a"), _matrix(b, "b")
    if a.shape[1] != b.shape[1]:
        raise EvaluationInputError(f"embedding widths differ: {a.shape[1]} and {b.shape[1]}")
    norm_a, norm_b = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    unit_a = np.divide(a, norm_a[:, None], out=np.zeros_like(a), where=norm_a[:, None] > 0)
    unit_b = np.divide(b, norm_b[:, None], out=np.zeros_like(b), where=norm_b[:, None] > 0)
    cosine = np.clip(unit_a @ unit_b.T, -1.0, 1.0)
    both_zero = (norm_a[:, None] == 0) & (norm_b[None, :] == 0)
    return np.where(both_zero, 1.0, cosine)


def nearest_similarity(generations, references) -> np.ndarray:
    """[N]: each generation's highest cosine similarity to any reference item."""
    return cosine_matrix(generations, references).max(axis=1)


def sim_aa(generations, references, threshold: float = 0.90) -> float:
    """SIM_AA@threshold: the share of generations [N, E] whose nearest reference [R, E] has a cosine above it."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not -1.0 <= threshold <= 1.0:
        raise EvaluationInputError(f"threshold: expected a cosine similarity in [-1, 1]; got {threshold!r}")
    return float(np.mean(nearest_similarity(generations, references) > threshold))


def mean_pairwise_distance(embeddings) -> float:
    """Mean ``1 - cosine`` over all pairs of the rows of [N, E]; 0.0 for one row."""
    array = _matrix(embeddings, "embeddings")
    count = array.shape[0]
    if count == 1:
        return 0.0
    upper = np.triu_indices(count, k=1)
    return float(np.mean(1.0 - cosine_matrix(array, array)[upper]))


def diversity_by_prompt(embeddings, prompts: Sequence[str]) -> dict[str, float]:
    """{prompt: mean pairwise distance of its generations} for embeddings [N, E] and N prompt names."""
    array = _matrix(embeddings, "embeddings")
    if len(prompts) != array.shape[0]:
        raise EvaluationInputError(f"prompts: {len(prompts)} names for {array.shape[0]} embeddings; give one per row")
    groups: dict[str, list[int]] = {}
    for row, prompt in enumerate(prompts):
        groups.setdefault(str(prompt), []).append(row)
    return {prompt: mean_pairwise_distance(array[rows]) for prompt, rows in groups.items()}
