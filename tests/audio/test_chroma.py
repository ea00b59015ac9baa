import numpy as np
import pytest
import torch

from cuecraft.audio.chroma import ChromaExtractor, chroma_filter_bank
from cuecraft.errors import ConfigError
from tests.audio.synth import C_MAJOR, SCALE, chord, melody, tone

librosa = pytest.importorskip("librosa")


def test_c_major_chord_peaks_at_c_e_and_g():
    extractor = ChromaExtractor(16000, n_chroma=12, radix2_exp=11)
    chroma = extractor(torch.from_numpy(chord(C_MAJOR, 1.0, 16000)))  # [F, 12]
    profile = chroma[2:-2].mean(dim=0)  # frames fully inside the chord
    assert sorted(profile.topk(3).indices.tolist()) == [0, 4, 7]  # C, E, G
    assert profile[7] == 1.0 and profile[4] > 0.9 and profile[0] > 0.75
    others = profile[[i for i in range(12) if i not in (0, 4, 7)]]
    assert others.max() < 0.2


def test_a_melody_of_known_notes_gives_its_argmax_sequence():
    extractor = ChromaExtractor(8000, radix2_exp=10, argmax=True)  # hop 256: 31.25 frames/s
    chroma = extractor(torch.from_numpy(melody(SCALE, 0.25, 8000)))
    centres = [round((k + 0.5) * 0.25 * extractor.frame_rate) for k in range(len(SCALE))]
    assert chroma[centres].argmax(dim=-1).tolist() == [0, 2, 4, 5, 7, 9, 11, 0]  # C D E F G A B C
    assert torch.equal(chroma.sum(dim=-1), torch.ones(chroma.shape[0]))  # one-hot on every frame
    changes = (chroma.argmax(dim=-1).diff() != 0).sum().item()
    assert changes == len(SCALE) - 1  # one change per note boundary, no flicker


def test_equals_librosa_chroma_stft_with_tuning_zero():
    rng = np.random.default_rng(0)
    clips = np.stack([melody((62, 66, 69), 0.3, 11025) + 0.05 * rng.standard_normal(9924).astype(np.float32)
                      for _ in range(2)])
    extractor = ChromaExtractor(11025, radix2_exp=11)
    ours = extractor(torch.from_numpy(clips)).numpy()  # [2, F, 12]
    for clip, mine in zip(clips, ours):
        reference = librosa.feature.chroma_stft(y=clip, sr=11025, n_fft=2048, hop_length=512, tuning=0.0)
        np.testing.assert_allclose(mine, reference.T, atol=2e-6)


def test_geometry_and_frame_rate():
    extractor = ChromaExtractor(32000, radix2_exp=14)  # MusicGen-Melody's
    assert (extractor.n_fft, extractor.hop_length, extractor.frame_rate) == (16384, 4096, 7.8125)
    assert extractor.num_frames(30 * 32000) == 235
    small = ChromaExtractor(8000, radix2_exp=9)
    assert small(torch.zeros(3, 1000)).shape == (3, 1 + 1000 // 128, 12)
    assert small(torch.zeros(5)).shape == (1, 12)  # shorter than a window: one centred frame
    assert chroma_filter_bank(8000, 512, 24).shape == (24, 257)


def test_batch_equals_items_and_float64_agrees():
    clips = torch.stack([torch.from_numpy(melody(m, 0.2, 8000)) for m in ((60, 64), (65, 69), (71, 62))])
    extractor = ChromaExtractor(8000, radix2_exp=10)
    batch = extractor(clips)
    for clip, row in zip(clips, batch):
        torch.testing.assert_close(extractor(clip), row, rtol=0, atol=1e-6)
    torch.testing.assert_close(extractor(clips.double()).float(), batch, rtol=0, atol=1e-5)


@pytest.mark.parametrize("argmax", [False, True])
def test_silent_frames_are_zeros_never_a_c(argmax):
    extractor = ChromaExtractor(8000, radix2_exp=10, argmax=argmax)
    clip = np.concatenate([np.zeros(4096, np.float32), tone(67, 0.5, 8000)])  # 0.512 s silence, then G
    chroma = extractor(torch.from_numpy(clip))
    assert torch.count_nonzero(chroma[:12]) == 0  # frames 0..11 see only silence
    assert chroma[20].argmax().item() == 7 and chroma[20].max().item() == 1.0


def test_invalid_settings_and_inputs():
    with pytest.raises(ConfigError) as error:
        ChromaExtractor(0, n_chroma=0, radix2_exp=20, argmax="yes")
    assert error.value.problems == [
        "sample_rate: must be >= 1; got 0",
        "n_chroma: must be >= 1; got 0",
        "radix2_exp: must be in [6, 16]; got 20",
        "argmax: expected true or false; got 'yes'",
    ]
    with pytest.raises(ValueError, match=r"float waveform \[B, T\] or \[T\]; got \(2, 3, 4\)"):
        ChromaExtractor(8000)(torch.zeros(2, 3, 4))
