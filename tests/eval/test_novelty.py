import math

import numpy as np
import pytest
import torch

from cuecraft.errors import EvaluationInputError
from cuecraft.eval.novelty import (
    cosine_matrix, diversity_by_prompt, mean_pairwise_distance, nearest_similarity, sim_aa,
)


def unit(degrees):
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def test_sim_aa_is_the_share_of_generations_whose_nearest_reference_is_above_the_threshold():
    references = np.array([unit(0), unit(90)])
    # nearest cosines: cos 10 = 0.985, cos 20 = 0.940, cos 40 = 0.766, cos 5 = 0.996 (to 90)
    generations = np.array([unit(10), unit(20), unit(40), unit(95)])
    assert np.allclose(nearest_similarity(generations, references),
                       [math.cos(math.radians(a)) for a in (10, 20, 40, 5)])
    assert sim_aa(generations, references, 0.90) == 0.75
    assert sim_aa(generations, references, 0.95) == 0.5
    assert sim_aa(generations, references, 0.999) == 0.0
    assert sim_aa(torch.tensor(generations), torch.tensor(references), -1.0) == 1.0
    # scale does not matter, only direction
    assert sim_aa(generations * 7.0, references * 0.1, 0.95) == 0.5


def test_a_copy_of_a_training_item_counts_and_zero_vectors_give_numbers():
    references = np.random.default_rng(0).standard_normal((5, 8))
    assert sim_aa(references[[2]], references, 0.95) == 1.0
    zeros = np.zeros((2, 8))
    assert np.array_equal(nearest_similarity(zeros, references), [0.0, 0.0])
    assert sim_aa(zeros, np.zeros((1, 8)), 0.95) == 1.0  # silence against silence is a copy
    assert np.array_equal(cosine_matrix(zeros[:1], np.array([[1.0] * 8, [0.0] * 8])), [[0.0, 1.0]])


def test_mean_pairwise_distance():
    embeddings = np.array([unit(0), unit(90), unit(180)])
    # pairs: 1 - cos 90 = 1, 1 - cos 180 = 2, 1 - cos 90 = 1
    assert math.isclose(mean_pairwise_distance(embeddings), 4 / 3)
    assert mean_pairwise_distance(np.ones((4, 3))) == 0.0
    assert mean_pairwise_distance(np.array([unit(30)])) == 0.0  # one generation: no pair
    assert mean_pairwise_distance(np.zeros((3, 4))) == 0.0
    assert math.isclose(mean_pairwise_distance(np.array([[0.0, 0.0], [1.0, 0.0]])), 1.0)
    by_prompt = diversity_by_prompt(np.array([unit(0), unit(90), unit(10), unit(10)]), ["a", "a", "b", "b"])
    assert by_prompt == {"a": pytest.approx(1.0), "b": pytest.approx(0.0, abs=1e-12)}


@pytest.mark.parametrize("call, message", [
    (lambda: sim_aa(np.zeros(3), np.zeros((2, 3))), r"\[N, E\]"),
    (lambda: sim_aa(np.zeros((0, 3)), np.zeros((2, 3))), "N >= 1"),
    (lambda: sim_aa(np.zeros((1, 3)), np.zeros((2, 4))), "widths differ"),
    (lambda: sim_aa(np.full((1, 3), np.nan), np.zeros((2, 3))), "NaN"),
    (lambda: sim_aa(np.zeros((1, 3)), np.zeros((2, 3)), 1.5), "threshold"),
    (lambda: diversity_by_prompt(np.zeros((2, 3)), ["a"]), "one per row"),
])
def test_bad_input_is_a_typed_error(call, message):
    with pytest.raises(EvaluationInputError, match=message):
        call()


def test_classifier_embedding_of_audio(tmp_path):
    from cuecraft.eval.embedding import audio_embeddings
    from cuecraft.eval.instrument import train_classifier
    from tests.eval.test_instrument import RATE, tone, two_timbre_corpus
    from cuecraft.eval.instrument import InstrumentClassifier

    train_classifier(two_timbre_corpus(tmp_path, per_class=4, heldout_per_class=1), tmp_path / "c", epochs=1,
                     seed=0, evaluate_roundtrip=False)
    classifier = InstrumentClassifier.load(tmp_path / "c")
    rng = np.random.default_rng(1)
    wavs = [tone("flute", rng), tone("lead synth", rng)]
    embeddings = audio_embeddings(wavs, RATE, classifier=classifier)
    assert embeddings.shape == (2, 64)
    assert sim_aa(embeddings, embeddings, 0.999) == 1.0  # every item is its own nearest reference
    with pytest.raises(EvaluationInputError, match="embedder"):
        audio_embeddings(wavs, RATE, embedder="vggish")


def test_aisfx_embedding_separates_timbres():
    pytest.importorskip("aisfx")
    from cuecraft.eval.embedding import AisfxEmbedder
    from tests.eval.test_instrument import RATE, tone

    rng = np.random.default_rng(2)
    wavs = [tone("flute", rng, 2.0), tone("flute", rng, 2.0), tone("lead synth", rng, 2.0)]
    embeddings = AisfxEmbedder().embed(wavs, RATE)
    assert embeddings.shape == (3, 512) and np.isfinite(embeddings).all()
    similarity = cosine_matrix(embeddings, embeddings)
    assert similarity[0, 1] > similarity[0, 2]  # two sine melodies are closer than a sine and a square one
