import pickle

import numpy as np
import pytest
import torch

from cuecraft import AttributeDropout, ClassifierFreeGuidanceDropout, ConditionProvider, WavCondition
from cuecraft.audio.chroma import ChromaExtractor
from cuecraft.audio.resample import resample
from cuecraft.conditioners import ChromaStemConditioner
from cuecraft.config import build_stack
from cuecraft.errors import ConditioningInputError, ConfigError
from cuecraft.guidance import guidance_batch
from tests.audio.synth import C_MAJOR, SCALE, chord, melody

soundfile = pytest.importorskip("soundfile")
pytest.importorskip("librosa")
RATE = 8000
SMALL = {"output_dim": 8, "sample_rate": RATE, "radix2_exp": 9, "duration": 1.0}  # hop 128: 63 frames in 1 s


def wav(array, rate=RATE, **kwargs):
    return WavCondition(torch.from_numpy(np.asarray(array, dtype=np.float32)), sample_rate=rate, **kwargs)


def test_a_stereo_chord_at_another_rate_becomes_its_chroma():
    conditioner = ChromaStemConditioner(output_dim=8, sample_rate=16000, radix2_exp=11, duration=1.0, stems="none")
    left = chord(C_MAJOR, 1.0, 44100)
    stereo = torch.from_numpy(np.stack([left, 0.5 * left]))  # [2, T] at 44.1 kHz
    tokens = conditioner.tokenize([WavCondition(stereo, sample_rate=44100)])
    assert tokens.features.shape == (1, 32, 12) and int(tokens.mask.sum()) == 32  # 1 + 16000 // 512
    expected = ChromaExtractor(16000, radix2_exp=11)(resample(stereo.mean(0), 44100, 16000))
    torch.testing.assert_close(tokens.features[0], expected, rtol=0, atol=1e-6)
    profile = tokens.features[0, 2:-2].mean(0)
    assert sorted(profile.topk(3).indices.tolist()) == [0, 4, 7]


def test_length_mask_follows_the_downsampling_factor():
    conditioner = ChromaStemConditioner(**SMALL)
    assert conditioner.downsampling_factor == 128 and conditioner.frame_rate == 62.5
    short, long = melody((60, 64), 0.15, RATE), melody((67, 72), 0.7, RATE)  # 2400 and 11200 samples
    tokens = conditioner.tokenize([wav(short), None, wav(long, length=9000), wav(long, rate=16000)],
                                  train=True)  # training: lengths as given
    assert tokens.mask.sum(dim=1).tolist() == [1 + 2400 // 128, 0, 1 + 9000 // 128, 1 + 5600 // 128]
    assert tokens.features.shape == (4, 1 + 9000 // 128, 12)  # padded to the longest
    assert torch.count_nonzero(tokens.features[~tokens.mask]) == 0


def test_argmax_gives_one_hot_notes_and_silence_stays_zeros():
    conditioner = ChromaStemConditioner(**SMALL, argmax=True, stems="none")
    tune = melody(SCALE[:4], 0.25, RATE)  # C D E F, 0.25 s each
    silence = np.zeros(4000, np.float32)
    features, mask = conditioner.tokenize([wav(tune), wav(silence)], train=True)
    centres = [round((k + 0.5) * 0.25 * conditioner.frame_rate) for k in range(4)]
    assert features[0, centres].argmax(dim=-1).tolist() == [0, 2, 4, 5]
    assert torch.equal(features[0, mask[0]].sum(dim=-1), torch.ones(int(mask[0].sum())))
    # A silent melody is valid frames of zeros, not a one-hot C (AudioCraft's inference null).
    assert mask[1].sum() == 1 + 4000 // 128 and torch.count_nonzero(features[1]) == 0


def test_evaluation_loops_a_short_melody_and_cuts_a_long_one():
    conditioner = ChromaStemConditioner(**SMALL, stems="none")
    assert conditioner.chroma_len == 63
    short, long = wav(melody((60, 67), 0.2, RATE)), wav(melody(SCALE, 0.25, RATE))  # 26 and 126 frames
    trained = conditioner.tokenize([short, long], train=True)
    assert trained.mask.sum(dim=1).tolist() == [26, 126]
    evaluated = conditioner.tokenize([short, long])  # train=False: evaluation lengths
    assert torch.equal(conditioner.train().tokenize([short, long]).features, evaluated.features)  # mode not read
    assert evaluated.features.shape == (2, 63, 12) and bool(evaluated.mask.all())
    loop = trained.features[0, :26]
    assert torch.equal(evaluated.features[0], torch.cat([loop, loop, loop[:11]]))
    assert torch.equal(evaluated.features[1], trained.features[1, :63])
    free = ChromaStemConditioner(**SMALL, stems="none", match_len_on_eval=False)
    assert free.tokenize([short, long]).mask.sum(dim=1).tolist() == [26, 126]


def test_null_melody_is_one_thing_in_training_and_inference():
    conditioner = ChromaStemConditioner(**SMALL, project_out=True)  # a projection bias must not leak
    provider = ConditionProvider({"melody": conditioner})
    item = {"melody": wav(melody(SCALE[:2], 0.2, RATE))}
    attributes = provider.to_attributes([item])
    generator = torch.Generator().manual_seed(0)
    nulls = {
        "cfg dropout": provider.condition(ClassifierFreeGuidanceDropout(1.0)(attributes, generator), train=True),
        "attribute dropout": provider.condition(AttributeDropout({"wav": {"melody": 1.0}})(attributes, generator),
                                                train=True),
        "None in a training batch": provider.condition([item, {"melody": None}], train=True),
        "empty waveform": provider.condition([{"melody": wav(np.zeros(0))}], train=True),
    }
    nulls["unconditional branch"] = provider.condition(guidance_batch(attributes))
    nulls["None at inference"] = provider.condition([{"melody": None}])
    rows = {name: (c["melody"].embedding[-1], c["melody"].mask[-1]) for name, c in nulls.items()}
    reference = (torch.zeros(63, 8), torch.zeros(63, dtype=torch.bool))
    for name, (embedding, mask) in rows.items():
        assert torch.equal(embedding, reference[0]) and torch.equal(mask, reference[1]), name
    conditional = nulls["unconditional branch"]["melody"]
    assert conditional.mask[0].all() and conditional.embedding.shape == (2, 63, 8)


def test_settings_are_checked_together():
    with pytest.raises(ConfigError) as error:
        ChromaStemConditioner(output_dim=0, radix2_exp=3, duration=-1, stems="spleeter", argmax="no")
    assert error.value.problems == [
        "duration: must be > 0 seconds; got -1",
        "argmax: expected true or false; got 'no'",
        "radix2_exp: must be in [6, 16]; got 3",
        "stems: unknown stem backend 'spleeter'; valid backends: hpss, demucs, none",
        "output_dim: must be >= 1; got 0",
    ]
    with pytest.raises(ConfigError) as error:
        ChromaStemConditioner(output_dim=8, cache_path=3, cache_memory_bytes=-1)
    assert error.value.problems == ["cache_path: expected a folder path; got 3",
                                    "cache_memory_bytes: expected an int >= 0; got -1"]


def test_built_from_a_config_and_fed_metadata():
    stack = build_stack({"cond_dim": 16, "conditioners": [
        {"id": "melody", "type": "chroma_stem", "roles": ["prepend"], "config": {"sample_rate": RATE, "radix2_exp": 9,
                                                                                "duration": 0.5}}]}, seed=0)
    conditions = stack.condition([{"melody": wav(melody((64,), 0.3, RATE))}, {"melody": None}])
    embedding, mask = conditions["melody"]
    assert embedding.shape == (2, 32, 16) and mask.sum(dim=1).tolist() == [32, 0]


def counting(conditioner, monkeypatch):
    calls = []
    original = conditioner.compute_features

    def compute_features(wavs):
        calls.append(len(wavs))
        return original(wavs)

    monkeypatch.setattr(conditioner, "compute_features", compute_features)
    return calls


def test_the_cache_serves_in_memory_audio_without_recomputing(tmp_path, monkeypatch):
    tune = wav(melody((60, 62, 64), 0.2, RATE))
    first = ChromaStemConditioner(**SMALL, cache_path=str(tmp_path))
    calls = counting(first, monkeypatch)
    computed = first.tokenize([tune, None])
    assert calls == [1] and len(list(tmp_path.rglob("*.emb"))) == 1
    second = ChromaStemConditioner(**SMALL, cache_path=str(tmp_path))  # a fresh process would do the same
    second_calls = counting(second, monkeypatch)
    served = second.tokenize([tune, None])
    assert second_calls == [] and torch.equal(served.features, computed.features)
    uncached = ChromaStemConditioner(**SMALL).tokenize([tune, None])
    assert torch.equal(uncached.features, computed.features)


def test_the_cache_takes_an_items_frames_from_its_file(tmp_path, monkeypatch):
    path = tmp_path / "song.wav"
    song = melody(SCALE, 0.25, RATE)  # 2 s
    soundfile.write(path, song, RATE, subtype="FLOAT")
    conditioner = ChromaStemConditioner(**SMALL, cache_path=str(tmp_path / "cache"))
    calls = counting(conditioner, monkeypatch)
    segment = torch.from_numpy(song[4000:8000])  # 0.5 s from 0.5 s
    tokens = conditioner.tokenize([WavCondition(segment, RATE, path=str(path), seek_time=0.5),
                                   WavCondition(segment[:2000], RATE, path=str(path), seek_time=1.0)], train=True)
    assert calls == [1]  # one file, computed once, for both items
    whole = conditioner.file_features(path)
    start = round(0.5 * 62.5)
    assert torch.equal(tokens.features[0, :32], whole[start: start + 1 + 4000 // 128])
    assert torch.equal(tokens.features[1, :16], whole[62: 62 + 1 + 2000 // 128])
    assert tokens.mask.sum(dim=1).tolist() == [32, 16]
    for seek in (5.0, -1.0, float("inf")):
        with pytest.raises(ConditioningInputError, match=rf"item 0: seek_time {seek} s is outside .*song\.wav"):
            conditioner.tokenize([WavCondition(segment, RATE, path=str(path), seek_time=seek)])


def test_feature_settings_name_what_shapes_the_features():
    base = ChromaStemConditioner(**SMALL).feature_settings()
    assert base["stems"]["name"] == "hpss" and base["radix2_exp"] == 9
    for change in ({"radix2_exp": 10}, {"stems": "none"}, {"sample_rate": 16000}, {"n_chroma": 24}):
        assert ChromaStemConditioner(**{**SMALL, **change}).feature_settings() != base, change
    for change in ({"duration": 2.0}, {"argmax": True}, {"output_dim": 4}, {"match_len_on_eval": False}):
        assert ChromaStemConditioner(**{**SMALL, **change}).feature_settings() == base, change


def test_pickles_for_data_loader_workers(tmp_path):
    conditioner = ChromaStemConditioner(**SMALL, cache_path=str(tmp_path))
    tune = wav(melody((65, 69), 0.2, RATE))
    reference = conditioner.tokenize([tune])
    assert conditioner.cache.memory_bytes == 12 * 26 * 4  # one melody of 26 frames
    copy = pickle.loads(pickle.dumps(conditioner))
    assert copy.cache.memory_bytes == 0  # the memory layer is per process; the disk is shared
    assert torch.equal(copy.tokenize([tune]).features, reference.features)
