"""MusicGen model folders: transformers' layout, AudioCraft's mapped onto it, and what is refused."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch

from cuecraft.errors import PretrainedModelNotFoundError
from tests.pipelines.musicgen_models import CODEBOOKS, CODES, SAMPLE_RATE, save, tiny_musicgen, tiny_musicgen_melody

pytest.importorskip("transformers")
yaml = pytest.importorskip("yaml")

# transformers -> AudioCraft, inside a layer (the inverse of transformers' conversion script)
LAYER_NAMES = {"self_attn.out_proj": "self_attn.out_proj", "encoder_attn.out_proj": "cross_attention.out_proj",
               "fc1": "linear1", "fc2": "linear2", "self_attn_layer_norm": "norm1",
               "encoder_attn_layer_norm": "norm_cross", "final_layer_norm": "norm2"}


def audiocraft_state(model) -> dict[str, torch.Tensor]:
    """The LM state dict AudioCraft's MusicGen would hold for ``model``'s decoder and projections."""
    state, fused = {}, {}
    for key, value in model.decoder.state_dict().items():
        if "embed_positions" in key:
            continue
        if key.startswith("model.decoder.embed_tokens."):
            state["emb." + key.split(".", 3)[3]] = value
        elif key.startswith("lm_heads."):
            state["linears." + key.split(".", 1)[1]] = value
        elif key.startswith("model.decoder.layer_norm."):
            state["out_norm." + key.rsplit(".", 1)[1]] = value
        else:
            layer, rest = key.split(".")[3], key.split(".", 4)[4]
            module, parameter = rest.rsplit(".", 1)
            attention, _, projection = module.partition(".")
            if projection in ("q_proj", "k_proj", "v_proj"):
                name = "self_attn" if attention == "self_attn" else "cross_attention"
                fused.setdefault(f"transformer.layers.{layer}.{name}.in_proj_weight", {})[projection] = value
            else:
                state[f"transformer.layers.{layer}.{LAYER_NAMES[module]}.{parameter}"] = value
    for key, parts in fused.items():
        state[key] = torch.cat([parts["q_proj"], parts["k_proj"], parts["v_proj"]])
    for name, module in (("description", "enc_to_dec_proj"), ("self_wav", "audio_enc_to_dec_proj")):
        if hasattr(model, module):
            for parameter, value in getattr(model, module).state_dict().items():
                state[f"condition_provider.conditioners.{name}.output_proj.{parameter}"] = value
    if hasattr(model, "audio_enc_to_dec_proj"):  # AudioCraft's chroma keeps its filter bank as a buffer
        state["condition_provider.conditioners.self_wav.chroma.fbanks"] = torch.zeros(12, 257)
    return state


def audiocraft_folder(directory, model, tokenizer, **changes):
    """``model`` as AudioCraft exports it: state_dict.bin (LM weights + YAML config) and
    compression_state_dict.bin (a reference to its EnCodec); the T5 and EnCodec in folders beside."""
    melody = hasattr(model, "audio_enc_to_dec_proj")
    model.text_encoder.save_pretrained(directory / "t5")
    tokenizer.save_pretrained(directory / "t5")
    model.audio_encoder.save_pretrained(directory / "encodec")
    cfg = {"lm_model": "transformer_lm", "sample_rate": SAMPLE_RATE, "channels": 1,
           "dataset": {"segment_duration": 1.0},
           "transformer_lm": {"dim": 32, "num_heads": 4, "num_layers": 2, "hidden_scale": 2, "n_q": CODEBOOKS,
                              "card": CODES, "activation": "gelu", "norm_first": True, "bias_ff": False,
                              "bias_attn": False, "bias_proj": False, "cross_attention": not melody,
                              "positional_embedding": "sin", "layer_scale": None, "custom": False,
                              "memory_efficient": True, "two_step_cfg": False},
           "codebooks_pattern": {"modeling": "delay", "delay": {"delays": list(range(CODEBOOKS)), "flatten_first": 0,
                                                                "empty_initial": 0}},
           "conditioners": {"description": {"model": "t5", "t5": {"name": str(directory / "t5"), "finetune": False,
                                                                  "word_dropout": 0.3, "normalize_text": False}}},
           "fuser": {"cross_attention_pos_emb": False, "sum": [], "input_interpolate": [],
                     **({"prepend": ["self_wav", "description"], "cross": []} if melody else
                        {"prepend": [], "cross": ["description"]})}}
    if melody:
        cfg["conditioners"]["self_wav"] = {"model": "chroma_stem", "chroma_stem": {
            "sample_rate": SAMPLE_RATE, "n_chroma": 12, "radix2_exp": 9, "argmax": True, "match_len_on_eval": True}}
    for path, value in changes.items():
        *parents, last = path.split(".")
        section = cfg
        for parent in parents:
            section = section.setdefault(parent, {})
        section[last] = value
    folder = directory / "audiocraft"
    folder.mkdir()
    torch.save({"best_state": audiocraft_state(model), "xp.cfg": yaml.safe_dump(cfg), "version": "1.3.0",
                "exported": True}, folder / "state_dict.bin")
    torch.save({"pretrained": str(directory / "encodec"), "exported": True, "version": "1.3.0"},
               folder / "compression_state_dict.bin")
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """The tiny MusicGen in both layouts, and the tiny MusicGen-melody in both."""
    root = tmp_path_factory.mktemp("layouts")
    out = {}
    for kind, build in (("musicgen", tiny_musicgen), ("melody", tiny_musicgen_melody)):
        model, tokenizer = build(seed=1)
        (root / kind).mkdir()
        out[kind] = (save(root / kind / "transformers", model, tokenizer),
                     audiocraft_folder(root / kind, model, tokenizer))
    return out


@pytest.mark.parametrize("kind", ["musicgen", "melody"])
def test_audiocraft_folders_give_the_tokens_of_the_same_model_in_transformers_layout(folders, kind):
    from cuecraft.attributes import WavCondition
    from cuecraft.pipelines.musicgen import MusicGenPipeline, read_folder
    from tests.pipelines.musicgen_models import melody_wave

    transformers_dir, audiocraft_dir = folders[kind]
    folder = read_folder(audiocraft_dir)
    expected = dataclasses.replace(read_folder(transformers_dir).spec, max_positions=2048)  # transformers' default
    assert folder.layout == "audiocraft" and folder.spec == expected
    ours, theirs = MusicGenPipeline.from_pretrained(audiocraft_dir), MusicGenPipeline.from_pretrained(transformers_dir)
    melody = WavCondition(melody_wave(0.6), SAMPLE_RATE) if kind == "melody" else None
    for settings in (dict(top_k=1), dict(top_k=20, generator=torch.Generator().manual_seed(4))):
        a = ours(["warm piano", "techno"], melody=melody, seconds=0.3, **settings)
        settings.get("generator", torch.Generator()).manual_seed(4)
        b = theirs(["warm piano", "techno"], melody=melody, seconds=0.3, **settings)
        assert torch.equal(a.tokens, b.tokens)


def test_audiocraft_settings_transformers_cannot_represent_are_listed(folders, tmp_path):
    model, tokenizer = tiny_musicgen(seed=1)
    folder = audiocraft_folder(tmp_path, model, tokenizer, **{"transformer_lm.bias_ff": True,
                                                               "transformer_lm.layer_scale": 0.1,
                                                               "codebooks_pattern.modeling": "parallel"})
    from cuecraft.pipelines.musicgen import read_folder

    with pytest.raises(PretrainedModelNotFoundError) as caught:
        read_folder(folder)
    message = str(caught.value)
    assert "(AudioCraft layout) cannot be mapped onto transformers' MusicGen" in message
    for part in ("transformer_lm.bias_ff: True", "transformer_lm.layer_scale: 0.1", "codebooks_pattern: 'parallel'"):
        assert part in message


def test_an_embedded_audiocraft_encodec_is_refused(folders, tmp_path):
    from cuecraft.pipelines.musicgen import read_folder

    folder = shutil.copytree(folders["musicgen"][1], tmp_path / "copy")
    torch.save({"best_state": {"encoder.weight": torch.zeros(1)}, "xp.cfg": "sample_rate: 32000\n"},
               folder / "compression_state_dict.bin")
    with pytest.raises(PretrainedModelNotFoundError, match="holds an EnCodec trained with AudioCraft"):
        read_folder(folder)


def test_pickled_code_is_not_run(tmp_path):
    from cuecraft.pipelines.musicgen import read_folder

    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"best_state": Payload()}, tmp_path / "state_dict.bin")
    torch.save({"pretrained": "x"}, tmp_path / "compression_state_dict.bin")
    with pytest.raises(PretrainedModelNotFoundError, match=r"cannot be read with torch.load\(weights_only=True\)"):
        read_folder(tmp_path)


def test_incomplete_transformers_folders_are_refused_naming_what_is_missing(folders, tmp_path):
    from cuecraft.pipelines.musicgen import read_folder

    broken = shutil.copytree(folders["musicgen"][0], tmp_path / "broken")
    (broken / "model.safetensors").unlink()
    (broken / "tokenizer.json").unlink()
    with pytest.raises(PretrainedModelNotFoundError) as caught:
        read_folder(broken)
    assert str(caught.value) == (
        f"MusicGen model: {broken} is incomplete: no weights (none of model.safetensors, "
        "model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json); no tokenizer file "
        "(none of tokenizer.json, spiece.model, vocab.json, vocab.txt, sentencepiece.bpe.model, tokenizer.model)")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors"}}
    (broken / "model.safetensors.index.json").write_text(json.dumps(index))
    shutil.copy(folders["musicgen"][0] / "tokenizer.json", broken)
    with pytest.raises(PretrainedModelNotFoundError, match=r"no model-00001-of-00002.safetensors \(listed in "):
        read_folder(broken)


def test_folders_of_other_models_and_missing_ones_say_what_is_supported(folders, tmp_path):
    from cuecraft.pipelines.musicgen import read_folder

    other = shutil.copytree(folders["musicgen"][0], tmp_path / "other")
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "t5"}))
    with pytest.raises(PretrainedModelNotFoundError, match="has model_type 't5'; cuecraft musicgen runs musicgen, "
                                                           "musicgen_melody"):
        read_folder(other)
    with pytest.raises(PretrainedModelNotFoundError, match="no such directory: .*supported layouts: transformers'"):
        read_folder(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PretrainedModelNotFoundError, match="is incomplete: no config.json; .*supported layouts"):
        read_folder(tmp_path / "empty")
    with pytest.raises(PretrainedModelNotFoundError, match="neither a directory nor a model in the Hugging Face cache"):
        read_folder("facebook/musicgen-nonexistent-xyz")
    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(folders["musicgen"][1] / "state_dict.bin", half)
    with pytest.raises(PretrainedModelNotFoundError, match="is incomplete: no compression_state_dict.bin"):
        read_folder(half)


def test_melody_folders_read_their_chroma_settings(folders):
    from cuecraft.pipelines.musicgen import ChromaSettings, read_folder

    spec = read_folder(folders["melody"][0]).spec
    assert spec.kind == "musicgen_melody" and spec.chroma == ChromaSettings(3200, 12, 9, 26)
    assert (spec.sample_rate, spec.hop_length, spec.num_codebooks, spec.max_positions) == (3200, 64, 4, 256)
    assert read_folder(folders["musicgen"][0]).spec.chroma is None
