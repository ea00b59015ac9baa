"""AudioCraft's MusicGen checkpoint folders, mapped onto transformers' MusicGen model.

AudioCraft (``MusicGen.get_pretrained``) reads two files from a folder::

    state_dict.bin              {"best_state": the LM's weights, "xp.cfg": its config as YAML, ...}
    compression_state_dict.bin  {"pretrained": "facebook/encodec_32khz", ...}, a reference to
                                transformers' EnCodec

Both are read with ``torch.load(weights_only=True)``. The LM's config names the T5 it reads
text with (``conditioners.description.t5.name``, e.g. t5-base); the T5 and the EnCodec are read
from a local directory of that name or from the Hugging Face cache, never downloaded.

The weights map onto transformers' ``MusicgenForCausalLM`` / ``MusicgenMelodyForCausalLM`` as
transformers' own conversion script maps them (``emb.k`` -> ``embed_tokens.k``, the fused
``in_proj_weight`` split into q, k, v, ``norm1`` / ``norm_cross`` / ``norm2`` -> the layer norms,
``linear1`` / ``linear2`` -> ``fc1`` / ``fc2``, ``out_norm``, ``linears.k`` -> ``lm_heads.k``, the
conditioners' ``output_proj`` -> ``enc_to_dec_proj`` and ``audio_enc_to_dec_proj``). Only what
transformers' model can represent is accepted: a pre-norm transformer without biases, sinusoidal
positions, the delay pattern, a frozen T5 and, for melody models, chroma ``self_wav``; anything
else is refused with every unsupported setting named. An EnCodec trained with AudioCraft
(its weights inside compression_state_dict.bin) is refused too.
"""

from __future__ import annotations

import math
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cuecraft._optional import require
from cuecraft.conditioners.pretrained import load_pretrained
from cuecraft.errors import PretrainedModelNotFoundError
from cuecraft.pipelines.musicgen.loading import LAYOUTS, MusicGenFolder
from cuecraft.pipelines.musicgen.spec import ChromaSettings, MusicGenSpec, text_limit

FILES = ("state_dict.bin", "compression_state_dict.bin")
# AudioCraft's transformer_lm defaults (config/model/lm/default.yaml) for keys a config leaves out.
LM_DEFAULTS = {"hidden_scale": 4, "activation": "gelu", "norm_first": False, "bias_ff": True, "bias_attn": True,
               "bias_proj": True, "past_context": None, "causal": True, "layer_scale": None,
               "positional_embedding": "sin", "xpos": False, "norm": "layer_norm", "cross_attention": False,
               "qk_layer_norm": False, "qk_layer_norm_cross": False, "kv_repeat": 1, "max_period": 10000,
               "positional_scale": 1.0}
# What transformers' MusicGen decoder is: the only values it can represent.
LM_REQUIRED = {"norm_first": True, "bias_ff": False, "bias_attn": False, "bias_proj": False, "past_context": None,
               "causal": True, "layer_scale": None, "positional_embedding": "sin", "xpos": False,
               "norm": "layer_norm", "qk_layer_norm": False, "qk_layer_norm_cross": False, "kv_repeat": 1,
               "max_period": 10000, "positional_scale": 1.0}
MAX_POSITIONS = 2048  # transformers' MusicGen configs (AudioCraft's sinusoidal positions have no limit)
# Per-layer renames, AudioCraft -> transformers (inside model.decoder.layers.N.).
LAYER_RENAMES = {"self_attn.out_proj": "self_attn.out_proj", "cross_attention.out_proj": "encoder_attn.out_proj",
                 "linear1": "fc1", "linear2": "fc2", "norm1": "self_attn_layer_norm",
                 "norm_cross": "encoder_attn_layer_norm", "norm2": "final_layer_norm"}
FUSED = {"self_attn.in_proj_weight": "self_attn", "cross_attention.in_proj_weight": "encoder_attn"}
PROJECTIONS = {"description": "enc_to_dec_proj", "self_wav": "audio_enc_to_dec_proj"}


@dataclass
class AudioCraftCheckpoint:
    """AudioCraft's files, parsed. state: the LM's weights; text_model, codec_model: the T5 and
    EnCodec they name; lm: transformer_lm settings; chroma: the melody's (None for MusicGen)."""

    path: Path
    state: dict[str, torch.Tensor]
    lm: dict[str, Any]
    text_model: str
    codec_model: str
    chroma: ChromaSettings | None


def _load(file: Path) -> Any:
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        raise PretrainedModelNotFoundError(
            f"MusicGen model: {file} cannot be read with torch.load(weights_only=True) ({type(error).__name__}: "
            f"{str(error)[:300]})") from None


def _section(data: Any, *keys: str) -> Any:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def read_audiocraft(path: Path) -> MusicGenFolder:
    """Read an AudioCraft MusicGen folder (its config, the tokenizer and EnCodec config it names)."""
    missing = [name for name in FILES if not (path / name).is_file()]
    if missing:
        raise PretrainedModelNotFoundError(f"MusicGen model: {path} is incomplete: no {' and no '.join(missing)} "
                                           f"(supported layouts: {'; '.join(LAYOUTS)})")
    package, compression = _load(path / FILES[0]), _load(path / FILES[1])
    problems: list[str] = []
    state, cfg = _section(package, "best_state"), _section(package, "xp.cfg")
    if isinstance(cfg, str):
        yaml = require("yaml", extra="text", purpose="reading AudioCraft configs")
        try:
            cfg = yaml.safe_load(cfg)
        except yaml.YAMLError as error:
            raise PretrainedModelNotFoundError(f"MusicGen model: {path / FILES[0]}: xp.cfg is not YAML "
                                               f"({error})") from None
    if not isinstance(state, dict) or not isinstance(cfg, dict):
        raise PretrainedModelNotFoundError(f"MusicGen model: {path / FILES[0]} is not an exported AudioCraft LM "
                                           "(a dict with best_state and xp.cfg)")
    lm = {**LM_DEFAULTS, **(_section(cfg, "transformer_lm") or {})}
    problems += _check_lm(cfg, lm)
    conditioners = _section(cfg, "conditioners") or {}
    text_model = _section(conditioners, "description", "t5", "name")
    if _section(conditioners, "description", "model") != "t5" or not isinstance(text_model, str):
        problems.append("conditioners.description: MusicGen's text is read by a T5 (model: t5, t5.name)")
    for option in ("finetune", "normalize_text"):
        if _section(conditioners, "description", "t5", option):
            problems.append(f"conditioners.description.t5.{option}: true is not supported")
    others = sorted(set(conditioners) - {"description", "self_wav"})
    if others:
        problems.append(f"conditioners: {others} are not supported (MusicGen's description and MusicGen-melody's "
                        "self_wav are)")
    melody = "self_wav" in conditioners
    chroma = _chroma(cfg, conditioners, problems) if melody else None
    if bool(lm["cross_attention"]) == melody:
        problems.append(f"transformer_lm.cross_attention: {lm['cross_attention']} with "
                        f"{'a melody (prepended)' if melody else 'text alone (read by cross-attention)'} is not "
                        "a layout transformers' MusicGen has")
    codec_model = _section(compression, "pretrained")
    if not isinstance(codec_model, str):
        problems.append(f"{FILES[1]}: holds an EnCodec trained with AudioCraft (its weights); supported: a "
                        "reference to transformers' EnCodec ({'pretrained': 'facebook/encodec_32khz'})")
    if problems:
        raise PretrainedModelNotFoundError(f"MusicGen model: {path} (AudioCraft layout) cannot be mapped onto "
                                           "transformers' MusicGen: " + "; ".join(problems))
    codec_model = codec_model.removeprefix("//pretrained/")
    transformers = require("transformers", extra="text", purpose="MusicGen")
    tokenizer = load_pretrained(transformers.AutoTokenizer.from_pretrained, text_model,
                                what=f"MusicGen model {path}: its T5 tokenizer (conditioners.description.t5.name)")
    codec = load_pretrained(transformers.EncodecConfig.from_pretrained, codec_model,
                            what=f"MusicGen model {path}: its EnCodec ({FILES[1]})")
    if melody and chroma is not None and _section(cfg, "sample_rate") not in (None, codec.sampling_rate):
        raise PretrainedModelNotFoundError(f"MusicGen model: {path}: sample_rate {_section(cfg, 'sample_rate')} "
                                           f"differs from its EnCodec's {codec.sampling_rate}")
    spec = MusicGenSpec(kind="musicgen_melody" if melody else "musicgen", sample_rate=int(codec.sampling_rate),
                        hop_length=int(math.prod(codec.upsampling_ratios)), num_codebooks=int(lm["n_q"]),
                        vocab_size=int(lm["card"]), max_positions=MAX_POSITIONS, max_text_tokens=text_limit(tokenizer),
                        chroma=chroma)
    checkpoint = AudioCraftCheckpoint(path, state, lm, text_model, codec_model, chroma)
    return MusicGenFolder(path, "audiocraft", spec, tokenizer, checkpoint)


def _check_lm(cfg: dict[str, Any], lm: dict[str, Any]) -> list[str]:
    problems = []
    if _section(cfg, "lm_model") not in (None, "transformer_lm"):
        problems.append(f"lm_model: {_section(cfg, 'lm_model')!r} is not supported (transformer_lm is)")
    for key in ("dim", "num_heads", "num_layers", "n_q", "card"):
        if isinstance(lm.get(key), bool) or not isinstance(lm.get(key), int) or lm[key] < 1:
            problems.append(f"transformer_lm.{key}: expected a positive int; got {lm.get(key)!r}")
    for key, value in LM_REQUIRED.items():
        if lm[key] != value:
            problems.append(f"transformer_lm.{key}: {lm[key]!r} is not supported (transformers' MusicGen has "
                            f"{value!r})")
    pattern = _section(cfg, "codebooks_pattern") or {}
    delays = _section(pattern, "delay", "delays")
    n_q = lm.get("n_q")
    if (pattern.get("modeling") != "delay" or delays != list(range(n_q if isinstance(n_q, int) else 0))
            or _section(pattern, "delay", "flatten_first") or _section(pattern, "delay", "empty_initial")):
        problems.append(f"codebooks_pattern: {pattern.get('modeling')!r} with delays {delays!r} is not supported "
                        "(the delay pattern with delays 0..n_q-1 is)")
    if _section(cfg, "interleave_stereo_codebooks", "use") or _section(cfg, "channels") not in (None, 1):
        problems.append("channels: stereo models are not supported")
    if _section(cfg, "fuser", "cross_attention_pos_emb"):
        problems.append("fuser.cross_attention_pos_emb: true is not supported")
    return problems


def _chroma(cfg: dict[str, Any], conditioners: dict[str, Any], problems: list[str]) -> ChromaSettings | None:
    settings = _section(conditioners, "self_wav", "chroma_stem") or {}
    if _section(conditioners, "self_wav", "model") != "chroma_stem":
        problems.append("conditioners.self_wav: MusicGen-melody's melody is a chroma_stem")
        return None
    if settings.get("argmax") is False:
        problems.append("conditioners.self_wav.chroma_stem.argmax: false is not supported (MusicGen-melody's is true)")
    duration = _section(cfg, "dataset", "segment_duration")
    sample_rate, radix2_exp = settings.get("sample_rate", 32000), settings.get("radix2_exp", 14)
    if not isinstance(duration, (int, float)) or duration <= 0:
        problems.append(f"dataset.segment_duration: expected the melody's length in seconds; got {duration!r}")
        return None
    hop = 2 ** radix2_exp // 4
    return ChromaSettings(sample_rate=int(sample_rate), n_chroma=int(settings.get("n_chroma", 12)),
                          radix2_exp=int(radix2_exp), chroma_length=1 + round(duration * sample_rate) // hop)


Weights = dict[str, torch.Tensor]


def transformers_state(state: Weights, dim: int) -> tuple[Weights, dict[str, Weights], list[str]]:
    """AudioCraft's LM weights -> (the decoder's ``MusicgenForCausalLM`` state dict, the
    projections ``{enc_to_dec_proj | audio_enc_to_dec_proj: state}``, keys that map to nothing)."""
    decoder: Weights = {}
    projections: dict[str, Weights] = {}
    unexpected = []
    for key, value in state.items():
        if match := re.fullmatch(r"emb\.(\d+)\.weight", key):
            decoder[f"model.decoder.embed_tokens.{match[1]}.weight"] = value
        elif match := re.fullmatch(r"linears\.(\d+)\.weight", key):
            decoder[f"lm_heads.{match[1]}.weight"] = value
        elif match := re.fullmatch(r"out_norm\.(weight|bias)", key):
            decoder[f"model.decoder.layer_norm.{match[1]}"] = value
        elif match := re.fullmatch(r"transformer\.layers\.(\d+)\.(.+)", key):
            prefix, rest = f"model.decoder.layers.{match[1]}", match[2]
            if rest in FUSED:  # [3 D, D]: q, k and v stacked
                for name, part in zip(("q_proj", "k_proj", "v_proj"), value.split(dim)):
                    decoder[f"{prefix}.{FUSED[rest]}.{name}.weight"] = part
            elif (found := re.fullmatch(r"(.+)\.(weight|bias)", rest)) and found[1] in LAYER_RENAMES:
                decoder[f"{prefix}.{LAYER_RENAMES[found[1]]}.{found[2]}"] = value
            else:
                unexpected.append(key)
        elif match := re.fullmatch(r"condition_provider\.conditioners\.(\w+)\.(.+)", key):
            name, rest = match[1], match[2]
            if name in PROJECTIONS and rest in ("output_proj.weight", "output_proj.bias"):
                projections.setdefault(PROJECTIONS[name], {})[rest.split(".")[1]] = value
            elif not (name == "self_wav" and rest.startswith("chroma.")):  # the chroma's filter bank and window
                unexpected.append(key)
        else:
            unexpected.append(key)
    return decoder, projections, unexpected


def build_model(checkpoint: AudioCraftCheckpoint) -> Any:
    """transformers' MusicGen (or MusicGen-melody) with the checkpoint's weights, its T5 and EnCodec."""
    transformers = require("transformers", extra="text", purpose="MusicGen")
    where = f"MusicGen model {checkpoint.path}"
    text_encoder = load_pretrained(transformers.T5EncoderModel.from_pretrained, checkpoint.text_model,
                                   what=f"{where}: its T5 (conditioners.description.t5.name)")
    codec = load_pretrained(transformers.EncodecModel.from_pretrained, checkpoint.codec_model,
                            what=f"{where}: its EnCodec ({FILES[1]})")
    lm, melody = checkpoint.lm, checkpoint.chroma is not None
    settings = dict(vocab_size=lm["card"], max_position_embeddings=MAX_POSITIONS, num_hidden_layers=lm["num_layers"],
                    ffn_dim=int(lm["dim"] * lm["hidden_scale"]), num_attention_heads=lm["num_heads"],
                    hidden_size=lm["dim"], num_codebooks=lm["n_q"], activation_function=lm["activation"],
                    pad_token_id=lm["card"], bos_token_id=lm["card"], dropout=0.0, tie_word_embeddings=False)
    decoder_class = transformers.MusicgenMelodyForCausalLM if melody else transformers.MusicgenForCausalLM
    config_class = transformers.MusicgenMelodyDecoderConfig if melody else transformers.MusicgenDecoderConfig
    decoder = decoder_class(config_class(**settings))
    state, projections, unexpected = transformers_state(checkpoint.state, lm["dim"])
    own = set(decoder.state_dict())
    derived = {key for key in own if key.endswith("embed_positions.weights")}  # sinusoidal, not learnt
    missing = sorted(own - set(state) - derived)
    unexpected += sorted(set(state) - own)
    needed = {"enc_to_dec_proj"} if text_encoder.config.d_model != lm["dim"] else set()
    if melody and checkpoint.chroma.n_chroma != lm["dim"]:
        needed.add("audio_enc_to_dec_proj")
    missing += [f"condition_provider.conditioners.*.output_proj ({name})" for name in sorted(needed - set(projections))]
    unexpected += [f"condition_provider output_proj for {name} (transformers' model has none: equal widths)"
                   for name in sorted(set(projections) - needed)]
    if missing or unexpected:
        raise PretrainedModelNotFoundError(
            f"{where}: its weights do not fit transformers' MusicGen decoder: missing {missing[:8]}"
            f"{' ...' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
    decoder.load_state_dict(state, strict=False)  # strict but for the derived positions, checked above
    if melody:
        chroma = checkpoint.chroma
        config = transformers.MusicgenMelodyConfig(text_encoder=text_encoder.config, audio_encoder=codec.config,
                                                   decoder=decoder.config, num_chroma=chroma.n_chroma,
                                                   chroma_length=chroma.chroma_length)
        model = transformers.MusicgenMelodyForConditionalGeneration(config, text_encoder=text_encoder,
                                                                    audio_encoder=codec, decoder=decoder)
    else:
        model = transformers.MusicgenForConditionalGeneration(text_encoder=text_encoder, audio_encoder=codec,
                                                              decoder=decoder)
    for name, weights in projections.items():
        getattr(model, name).load_state_dict(weights)
    model.generation_config.decoder_start_token_id = lm["card"]
    model.generation_config.pad_token_id = lm["card"]
    for part in (model.decoder, model.text_encoder):  # the attention from_pretrained would choose
        try:
            part.set_attn_implementation("sdpa")
        except (AttributeError, ValueError, ImportError):
            pass
    return model
