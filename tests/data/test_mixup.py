"""Beat-synchronous mixup: the mix stays on both sources' beats, only compatible tempos pair, the
generator decides everything, plans replay from JSON, latent mixup follows the same plan, and the
conditions of a mix follow the documented policy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cuecraft.attributes import JointEmbedCondition, Route
from cuecraft.audio.beats import track_beats
from cuecraft.data.item import AudioItem
from cuecraft.data.mixup import BeatSyncMixup, MixupOptions, MixupPlan, _beta_sample, kinds_of
from cuecraft.errors import ConfigError, DatasetError

pytest.importorskip("librosa")

SR = 16000
SECONDS = 8.0


def drum_track(bpm: float, offset: float, seconds: float = SECONDS, seed: int = 0) -> np.ndarray:
    """A 4/4 drum pattern: kick on beat 1 (and a softer one on 3), snare on 2 and 4, a hat on
    every beat; the first downbeat at ``offset`` seconds."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * SR))
    t = np.arange(int(0.12 * SR)) / SR
    kick = np.sin(2 * np.pi * np.cumsum(50 + 90 * np.exp(-t / 0.03)) / SR) * np.exp(-t / 0.07)
    snare = rng.standard_normal(len(t)) * np.exp(-t / 0.03)
    hat = np.diff(rng.standard_normal(len(t) + 1)) * np.exp(-t / 0.008)
    for i, time in enumerate(np.arange(offset, seconds - 0.05, 60.0 / bpm)):
        start = int(round(time * SR))
        hit = {0: 1.5 * kick, 2: 0.8 * kick}.get(i % 4, 0.6 * snare) + 0.3 * hat
        out[start:start + len(t)] += hit[:len(out) - start]
    return (0.4 * out).astype(np.float32)


def grid(bpm: float, offset: float, seconds: float = SECONDS) -> np.ndarray:
    return np.arange(offset, seconds - 0.05, 60.0 / bpm)


def item(bpm: float, offset: float, *, name: str, seek: float = 1.0, labelled: bool = True, seed: int = 0,
         length: int | None = None, silent: bool = False, **metadata) -> AudioItem:
    """An AudioItem of a drum track (its file starts ``seek`` seconds before the segment), with
    its beat grid in the metadata in file seconds when ``labelled``."""
    wav = torch.zeros(1, int(SECONDS * SR)) if silent else torch.from_numpy(drum_track(bpm, offset, seed=seed))[None]
    mask = torch.ones(wav.shape[-1], dtype=torch.bool)
    if length is not None:
        wav[:, length:] = 0
        mask[length:] = False
    beats = grid(bpm, offset)
    if labelled:
        metadata |= {"beats": list(beats + seek), "downbeats": list(beats[::4] + seek), "bpm": bpm}
    return AudioItem(wav, SR, mask, metadata, f"/data/{name}.wav", seek)


def always(**kw) -> BeatSyncMixup:
    return BeatSyncMixup(MixupOptions(p=1.0, **kw), kinds={"prompt": "text", "clap": "joint_embed", "bpm": "number"})


def near(times: np.ndarray, reference: np.ndarray, tolerance: float = 0.03) -> float:
    """Fraction of ``times`` within ``tolerance`` seconds of a time in ``reference``."""
    return float(np.mean([np.min(np.abs(reference - t)) <= tolerance for t in times]))


def test_the_mix_keeps_the_beats_of_both_sources():
    # a labelled source and one whose beats are tracked, same tempo, downbeats 0.7 s apart
    a = item(120, 0.2, name="a", seed=1)
    b = item(120, 0.9, name="b", seed=2, labelled=False)
    mixup = always()
    plan = mixup.sample([a, b], torch.Generator().manual_seed(0))
    pair = plan.pairs[0]
    assert pair.second == 1 and pair.shift_seconds == pytest.approx(-0.7, abs=0.02)
    mix = mixup.apply([a, b], plan)[0]
    tracked = np.array(track_beats(mix.wav, SR).beats)
    assert len(tracked) >= 12
    assert near(tracked, grid(120, 0.2)) >= 0.9  # source a's beats
    assert near(tracked, grid(120, 0.9) + pair.shift_seconds) >= 0.9  # source b's beats, shifted
    # without the shift the two grids disagree by 200 ms on every beat (0.7 s mod 0.5 s)
    assert near(grid(120, 0.9), grid(120, 0.2)) == 0.0


def corpus_segment(seed: int, seek: float) -> tuple[AudioItem, object]:
    """An 8 s segment starting ``seek`` seconds into a rendered 10 s corpus piece, with the
    piece's labelled beats (file seconds) in its metadata, as the corpus sidecars carry them."""
    from cuecraft.data.corpus import render_piece, sample_piece

    spec = sample_piece(seed, seconds=10.0)
    wav = render_piece(spec, sample_rate=SR)[:, int(seek * SR):int(seek * SR) + int(SECONDS * SR)]
    metadata = {"beats": list(spec.beats), "downbeats": list(spec.downbeats), "bpm": spec.bpm}
    return AudioItem(wav, SR, torch.ones(wav.shape[-1], dtype=torch.bool), metadata, f"/corpus/{seed}.wav", seek), spec


def test_on_corpus_pieces_the_mix_keeps_the_beats_of_both_sources():
    pytest.importorskip("cuecraft.data.corpus")
    from cuecraft.data.corpus import sample_piece

    specs = {seed: sample_piece(seed, seconds=10.0) for seed in range(40)}
    pairs = [(s, t) for s in specs for t in specs if s < t and specs[s].bpm == specs[t].bpm
             and specs[s].beats_per_bar == specs[t].beats_per_bar][:2]
    assert len(pairs) == 2
    for seed_a, seed_b in pairs:
        a, spec_a = corpus_segment(seed_a, 0.0)
        b, spec_b = corpus_segment(seed_b, 1.3)  # b's bars do not start where its segment does
        mixup = BeatSyncMixup(MixupOptions(p=1.0))
        plan = mixup.sample([a, b], torch.Generator().manual_seed(0))
        pair = plan.pairs[0]
        downbeat_offset_b = min(t - 1.3 for t in spec_b.downbeats if t >= 1.3)
        assert pair.shift_seconds == pytest.approx(spec_a.downbeats[0] - downbeat_offset_b, abs=1e-9)
        mix = mixup.apply([a, b], plan)[0]
        tracked = np.array(track_beats(mix.wav, SR, beats_per_bar=spec_a.beats_per_bar).beats)
        beats_a = np.array(spec_a.beats)
        beats_b = np.array(spec_b.beats) - 1.3 + pair.shift_seconds
        assert len(tracked) >= 8
        assert near(tracked, beats_a) >= 0.9 and near(tracked, beats_b) >= 0.9


def test_only_compatible_tempos_are_ever_paired():
    bpms = [100, 102, 120, 150, 121.5]
    items = [item(bpm, 0.1, name=f"i{k}", silent=True) for k, bpm in enumerate(bpms)]
    mixup = always()
    partners = {k: set() for k in range(len(items))}
    for seed in range(40):
        for pair in mixup.sample(items, torch.Generator().manual_seed(seed)).pairs:
            if pair is not None:
                a, b = bpms[pair.first], bpms[pair.second]
                assert abs(a - b) <= 0.03 * min(a, b)
                partners[pair.first].add(pair.second)
    assert partners == {0: {1}, 1: {0}, 2: {4}, 3: set(), 4: {2}}
    strict = always(tempo_tolerance=0.01)
    assert all(p is None or {p.first, p.second} == {2, 4}
               for p in strict.sample(items, torch.Generator().manual_seed(0)).pairs)


def test_p_is_the_fraction_of_items_mixed():
    items = [item(120, 0.1, name=f"i{k}", silent=True) for k in range(10)]
    mixup = BeatSyncMixup(MixupOptions(p=0.3))
    mixed = [sum(p is not None for p in mixup.sample(items, torch.Generator().manual_seed(s)).pairs)
             for s in range(60)]
    assert 0.24 < np.mean(mixed) / 10 < 0.36
    assert all(p is None for p in BeatSyncMixup(MixupOptions(p=0.0)).sample(items, torch.Generator()).pairs)


def test_lambda_follows_beta_5_5():
    generator = torch.Generator().manual_seed(0)
    lams = np.array([_beta_sample(5.0, 5.0, generator) for _ in range(4000)])
    assert lams.mean() == pytest.approx(0.5, abs=0.01)
    assert lams.std() == pytest.approx(math.sqrt(25 / (100 * 11)), abs=0.01)


def test_same_generator_same_mixes_and_the_plan_replays_from_json():
    items = [item(120, 0.2, name="a", seed=1), item(121, 0.5, name="b", seed=2), item(119, 0.3, name="c", seed=3)]
    mixup = always()
    plan = mixup.sample(items, torch.Generator().manual_seed(7))
    again = mixup.sample(items, torch.Generator().manual_seed(7))
    assert plan == again
    assert mixup.sample(items, torch.Generator().manual_seed(8)) != plan
    first = mixup(items, torch.Generator().manual_seed(7))
    second = mixup(items, torch.Generator().manual_seed(7))
    assert all(torch.equal(x.wav, y.wav) for x, y in zip(first, second))
    replayed = MixupPlan.from_json(plan.to_json())
    assert replayed == plan
    assert all(torch.equal(x.wav, y.wav) for x, y in zip(first, mixup.apply(items, replayed)))
    with pytest.raises(DatasetError, match="another batch"):
        mixup.apply(items[:2], plan)


def test_padding_masks_are_respected():
    a = item(120, 0.2, name="a", seed=1, length=int(7.0 * SR))
    b = item(120, 0.9, name="b", seed=2, length=int(5.0 * SR))
    mixup = always()
    plan = mixup.sample([a, b], torch.Generator().manual_seed(0))
    mix_a, mix_b = mixup.apply([a, b], plan)
    lam = plan.pairs[0].lam
    assert torch.equal(mix_a.padding_mask, a.padding_mask) and mix_a.length == a.length
    assert torch.all(mix_a.wav[:, a.length:] == 0)  # a's padding stays silent
    # b (5 s) moved 0.7 s earlier covers a's first 4.3 s; after that the mix is lam * a alone
    end = int(round((5.0 - 0.7) * SR))
    assert torch.allclose(mix_a.wav[:, end:a.length], lam * a.wav[:, end:a.length])
    assert not torch.allclose(mix_a.wav[:, :end], lam * a.wav[:, :end])
    # b mixed with a moved 0.7 s later: b's own mask, nothing beyond b's 5 s
    assert torch.equal(mix_b.padding_mask, b.padding_mask) and torch.all(mix_b.wav[:, b.length:] == 0)


def test_conditions_of_a_mix():
    a = item(120, 0.2, name="a", seed=1, prompt="drums a", clap="text of a", title="A")
    b = item(120, 0.9, name="b", seed=2, prompt="drums b", clap="text of b", title="B")
    mixup = always()
    plan = mixup.sample([a, b], torch.Generator().manual_seed(0))
    mixes = mixup.apply([a, b], plan)
    for mix, pair in zip(mixes, plan.pairs):
        first, second = (a, b) if pair.first == 0 else (b, a)
        clap = mix.metadata["clap"]
        assert isinstance(clap, JointEmbedCondition) and clap.text is None and torch.equal(clap.wav, mix.wav)
        assert mix.metadata["prompt"] is None  # text is not mixed
        assert mix.metadata["bpm"] == (first if pair.lam >= 0.5 else second).metadata["bpm"]
        assert mix.metadata["title"] == first.metadata["title"]  # not read by the stack: the first item's
        assert mix.metadata["mixup"] == {"sources": [first.path, second.path], "seek_times": [1.0, 1.0],
                                         "lam": pair.lam, "shift_seconds": pair.shift_seconds}
        assert torch.equal(mix.to_metadata()["self_wav"].wav, mix.wav)
    nulls = BeatSyncMixup(MixupOptions(p=1.0, other_policy="null", text_policy="dominant"),
                          kinds=[Route("bpm", "number", ("bpm",)), Route("prompt", "text", ("prompt", "description"))])
    mix = nulls.apply([a, b], plan)[0]
    dominant = a if plan.pairs[0].lam >= 0.5 else b
    assert mix.metadata["bpm"] is None and mix.metadata["prompt"] == dominant.metadata["prompt"]
    assert kinds_of([Route("prompt", "text", ("prompt", "description"))]) == {"prompt": "text", "description": "text"}


def test_latent_mixup_follows_the_audio_plan():
    hop = 160  # a frame-averaging encoder: [B, C, T] -> [B, C, T / 160], 100 frames per second
    encode = lambda wav: torch.nn.functional.avg_pool1d(wav, hop)  # noqa: E731
    a, b = item(120, 0.2, name="a", seed=1), item(120, 0.9, name="b", seed=2)
    mixup = BeatSyncMixup(MixupOptions(p=1.0), kinds={"bpm": "number"})
    plan = mixup.sample([a, b], torch.Generator().manual_seed(3))
    latent = mixup.apply_latents([a, b], plan, encode, SR / hop)
    audio = mixup.apply([a, b], plan)
    assert latent.plan == plan and latent.latents.shape == (2, 1, int(SECONDS * 100))
    for i, mixed in enumerate(audio):
        assert torch.allclose(latent.latents[i], encode(mixed.wav[None])[0], atol=1e-6)
        assert latent.metadata[i]["mixup"] == mixed.metadata["mixup"]
    assert latent.mask.all()
    with pytest.raises(ConfigError, match="decode"):
        always().apply_latents([a, b], plan, encode, SR / hop)
    decoded = always().apply_latents([a, b], plan, encode, SR / hop,
                                     decode=lambda z: z.repeat_interleave(hop, dim=-1))
    assert isinstance(decoded.metadata[0]["clap"], JointEmbedCondition)


def test_bad_options_name_the_field():
    for kwargs, field in [({"p": 1.5}, "mixup.p"), ({"p": -0.1}, "mixup.p"), ({"tempo_tolerance": 0}, "tempo_tolerance"),
                          ({"alpha": 0}, "mixup.alpha"), ({"beta": -1.0}, "mixup.beta"), ({"align": "last"}, "align"),
                          ({"other_policy": "mean"}, "other_policy")]:
        with pytest.raises(ConfigError, match=field):
            MixupOptions(**kwargs)
    with pytest.raises(ConfigError, match="mixup.kinds.x"):
        BeatSyncMixup(kinds={"x": "melody"})
    with pytest.raises(DatasetError, match="must agree"):
        a = item(120, 0.2, name="a", silent=True)
        BeatSyncMixup().sample([a, AudioItem(torch.zeros(2, 100), SR, torch.ones(100, dtype=torch.bool))],
                               torch.Generator())


def test_it_is_the_collate_functions_augment():
    from cuecraft.data.collate import AudioCollate

    items = [item(120, 0.2, name="a", seed=1), item(120, 0.9, name="b", seed=2), item(150, 0.1, name="c", seed=3)]
    collate = AudioCollate(augment=BeatSyncMixup(MixupOptions(p=1.0)), seed=5)
    batch, again = collate(items), collate(items)
    assert torch.equal(batch.wav, again.wav)  # the batch's seeded generator decides the mix
    assert [m.get("mixup", {}).get("sources") for m in batch.metadata] == [
        ["/data/a.wav", "/data/b.wav"], ["/data/b.wav", "/data/a.wav"], None]
    assert torch.equal(batch.wav[2], items[2].wav)  # 150 bpm has no partner


def test_musical_labels_of_a_mix_keep_the_aligned_rhythm_and_drop_the_harmony():
    from cuecraft.conditioners import BeatsConditioner, ChordsConditioner, NumberConditioner
    from cuecraft.provider import ConditionProvider

    provider = ConditionProvider({"beats": BeatsConditioner(duration=8.0), "chords": ChordsConditioner(duration=8.0),
                                  "bpm": NumberConditioner(4, 0, 300)})
    chords = [{"symbol": "Am", "start": 0.0, "end": 4.0}]
    a = item(120, 0.2, name="a", seed=1, chords=chords, key="A minor", time_signature="4/4", duration=9.0)
    b = item(120, 0.9, name="b", seed=2, chords=[{"symbol": "C", "start": 0.0}], key="A minor", time_signature="3/4")
    c = item(121, 0.5, name="c", seed=3, chords=chords, key="C major", time_signature="4/4")
    mixup = BeatSyncMixup(MixupOptions(p=1.0), kinds=provider.routes)
    assert mixup.kinds["bpm"] == "symbolic" and mixup.kinds["chords"] == "symbolic"
    for first, second in ((a, b), (a, c)):
        plan = mixup.sample([first, second], torch.Generator().manual_seed(0))
        mix = mixup.apply([first, second], plan)[0]
        for key in ("beats", "downbeats", "bpm", "time_signature", "duration"):  # aligned: item i's
            assert mix.metadata[key] == first.metadata[key], key
        assert mix.metadata["chords"] is None  # two progressions at once: dropped
        assert mix.metadata["key"] == ("A minor" if second is b else None)  # kept only when both agree
        assert "seek_time" not in mix.metadata and mix.to_metadata()["seek_time"] == first.seek_time
        conditions = provider.condition([mix.to_metadata()])
        torch.testing.assert_close(conditions["beats"].embedding, provider.condition([first.to_metadata()])["beats"].embedding)
        assert conditions["chords"].mask.any() == (second is b)  # the key alone, or nothing
