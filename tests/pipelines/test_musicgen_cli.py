"""``cuecraft musicgen``: tiny models saved with ``save_pretrained`` generate, through the command,
the waveforms of transformers' ``generate``; bad input is reported all at once and nothing is written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cuecraft.cli import main
from tests.pipelines.musicgen_models import (CODEBOOKS, HOP, SAMPLE_RATE, melody_wave, save, tiny_musicgen,
                                             tiny_musicgen_melody)

pytest.importorskip("transformers")
soundfile = pytest.importorskip("soundfile")

PCM = 1 / 32767  # one step of the 16-bit WAV


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return {"musicgen": save(root / "musicgen", *tiny_musicgen(seed=2)),
            "melody": save(root / "melody", *tiny_musicgen_melody(seed=2))}


@pytest.fixture(scope="module")
def melody_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "tune.wav"
    soundfile.write(path, melody_wave(0.6).numpy(), SAMPLE_RATE, subtype="FLOAT")
    return path


def transformers_audio(folder, prompt, frames, melody=None, seed=0, **settings):
    """transformers' generate of ``frames`` frames on the folder's model (torch seeded with
    ``seed`` just before): [M, T] float32."""
    from cuecraft.pipelines.musicgen import MusicGenPipeline

    pipe = MusicGenPipeline.from_pretrained(folder)
    inputs = pipe.tokenizer([prompt], return_tensors="pt")
    if melody is not None:
        conditioner = pipe.conditioning.provider.conditioners["melody"]
        raw = conditioner.item_features([melody])[0][None]
        inputs["input_features"] = conditioner.one_hot(raw, torch.ones(raw.shape[:2], dtype=torch.bool))
    torch.manual_seed(seed)
    audio = pipe.model.generate(**inputs, max_new_tokens=frames + CODEBOOKS - 1, **settings)
    return audio[:, 0].numpy()


def run(capsys, *argv):
    code = main(["musicgen", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("kind", ["musicgen", "melody"])
def test_greedy_waveform_is_transformers_and_a_png_is_written(models, melody_file, tmp_path, capsys, kind):
    from cuecraft.attributes import WavCondition
    from cuecraft.audio.io import load_audio

    out = tmp_path / "take.wav"
    melody = ["--melody", melody_file] if kind == "melody" else []
    code, stdout, stderr = run(capsys, "warm piano ballad", "--model", models[kind], *melody, "--top-k", "1",
                               "--seconds", 0.4, "--out", out)
    assert code == 0, stderr
    written, rate = soundfile.read(out, dtype="float32")
    expected = transformers_audio(models[kind], "warm piano ballad", 20, do_sample=False, guidance_scale=3.0,
                                  melody=WavCondition(*load_audio(melody_file)) if melody else None)
    assert rate == SAMPLE_RATE and written.shape == (20 * HOP,)
    np.testing.assert_allclose(written, np.clip(expected[0], -1, 1), atol=PCM)
    assert np.abs(written).max() > 0.01
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stdout == f"wrote {out}  0.40 s at {SAMPLE_RATE} Hz (spectrogram {out.with_suffix('.png')})\n"
    assert stderr.endswith(f"musicgen: [{'#' * 30}] 23/23 steps\n")  # one step per token step


def test_sampled_melody_waveform_is_transformers_for_the_seed(models, melody_file, tmp_path, capsys):
    from cuecraft.attributes import WavCondition
    from cuecraft.audio.io import load_audio

    out = tmp_path / "tune.wav"
    code, stdout, _ = run(capsys, "warm piano", "--model", models["melody"], "--melody", melody_file, "--seed", 11,
                          "--top-k", 20, "--temperature", 0.9, "--seconds", 0.4, "--out", out, "--json",
                          "--no-progress")
    assert code == 0
    report = json.loads(stdout)
    assert report["kind"] == "musicgen_melody" and report["layout"] == "transformers" and report["frames"] == 20
    assert report["asked"] == {"prompt": "warm piano", "negative": None, "melody": str(melody_file), "continue": None,
                               "seconds": 0.4}
    assert report["settings"] == {"guidance": 3.0, "guidance_text": 0.0, "two_step_cfg": False, "top_k": 20,
                                  "top_p": 0.0, "temperature": 0.9, "candidates": 1, "seed": 11}
    assert [o["path"] for o in report["outputs"]] == [str(out)]
    melody = WavCondition(*load_audio(melody_file))
    expected = transformers_audio(models["melody"], "warm piano", 20, melody=melody, seed=11, do_sample=True, top_k=20,
                                  temperature=0.9, guidance_scale=3.0)
    np.testing.assert_allclose(soundfile.read(out, dtype="float32")[0], np.clip(expected[0], -1, 1), atol=PCM)
    code, _, _ = run(capsys, "warm piano", "--model", models["melody"], "--seed", 11, "--top-k", 20, "--temperature",
                     0.9, "--seconds", 0.4, "--out", tmp_path / "plain.wav", "--no-progress")
    assert code == 0 and not np.array_equal(soundfile.read(tmp_path / "plain.wav")[0], soundfile.read(out)[0])


def test_candidates_continue_and_double_cfg_write_a_numbered_set(models, melody_file, tmp_path, capsys):
    out = tmp_path / "set.wav"
    code, stdout, _ = run(capsys, "warm piano", "--model", models["melody"], "--melody", melody_file, "--continue",
                          melody_file, "--seconds", 0.2, "--candidates", 2, "--guidance-text", 2, "--two-step-cfg",
                          "--negative", "loud drums", "--out", out, "--no-progress")
    assert code == 0
    for i in range(2):
        audio, _ = soundfile.read(tmp_path / f"set_{i}.wav")
        assert audio.shape == (round(0.6 * SAMPLE_RATE) + round(0.2 * SAMPLE_RATE),)
        assert (tmp_path / f"set_{i}.png").exists()
    assert not out.exists() and len(stdout.splitlines()) == 2


def test_bad_input_is_reported_all_at_once_and_nothing_is_written(models, tmp_path, capsys):
    out = tmp_path / "x.wav"
    code, stdout, stderr = run(capsys, "piano " * 70, "--model", models["musicgen"], "--melody", tmp_path / "no.wav",
                               "--seconds", 0, "--top-p", 2, "--candidates", 0, "--temperature", -1,
                               "--guidance-text", 1, "--out", out)
    assert code == 2 and stdout == "" and not out.exists() and list(tmp_path.iterdir()) == []
    lines = stderr.strip().splitlines()
    assert lines[0] == "cuecraft musicgen: error: invalid generation arguments (7 problems):"
    assert [line.strip().split(":")[0] for line in lines[1:]] == [
        "--melody", "PROMPT", "--seconds", "--guidance-text", "--top-p", "--temperature", "--candidates"]
    assert "is 71 tokens; this model's text encoder takes at most 64" in lines[2]


def test_model_limits_are_clear_errors(models, melody_file, tmp_path, capsys):
    code, _, stderr = run(capsys, "techno", "--model", models["musicgen"], "--melody", melody_file, "--seconds", 6,
                          "--out", tmp_path / "x.wav")
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 3
    assert lines[1].strip() == ("--melody: this model (musicgen) reads text alone; a melody needs a MusicGen-melody "
                                "model (model_type musicgen_melody, e.g. facebook/musicgen-melody)")
    assert lines[2].strip() == ("--seconds: 6 s needs 300 frames, beyond this model's 256 position embeddings; "
                                "at most 5.06 s")
    code, _, stderr = run(capsys, "techno", "--model", models["melody"], "--seconds", 5, "--out", tmp_path / "x.wav")
    assert code == 2 and "--seconds: 5 s needs 250 frames, beyond this model's 256 position embeddings after its " \
                         "prefix of 26 chroma frames and 2 text tokens; at most 4.50 s" in stderr
    assert list(tmp_path.iterdir()) == []


def test_an_incomplete_model_folder_is_one_line_naming_what_is_missing(models, tmp_path, capsys):
    import shutil

    broken = shutil.copytree(models["musicgen"], tmp_path / "broken")
    (broken / "config.json").unlink()
    code, _, stderr = run(capsys, "techno", "--model", broken, "--out", tmp_path / "x.wav")
    assert code == 2
    assert stderr == (f"cuecraft musicgen: error: MusicGen model: {broken} is incomplete: no config.json "
                      f"(supported layouts: transformers' (config.json with model_type musicgen or musicgen_melody, "
                      "model.safetensors or its index or pytorch_model.bin, tokenizer.json or spiece.model; "
                      "`hf download facebook/musicgen-small --local-dir DIR`); AudioCraft's (state_dict.bin and "
                      "compression_state_dict.bin, the language model and a reference to its EnCodec; the T5 and "
                      "EnCodec it names are read from the Hugging Face cache))\n")
    assert not (tmp_path / "x.wav").exists()


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["musicgen", "--help"])
    text = capsys.readouterr().out
    for option in ("--model", "--melody", "--continue", "--negative", "--seconds", "--guidance", "--guidance-text",
                   "--two-step-cfg", "--top-k", "--top-p", "--temperature", "--candidates", "--seed", "--out",
                   "--json", "--no-progress"):
        assert option in text
