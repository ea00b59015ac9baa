"""The rule for peer configs: a checkpoint a peer trained gets, by default, the inputs it was trained on.

A reader translates a peer's keys; this module then sets the conditioner, fuser and guidance
options that make cuecraft lay the inputs out as the peer does (checked against
stable-audio-tools 0.0.19 and AudioCraft 1.3.0):

stable-audio-tools (``compat="inputs"``, the default):
- ``t5``: ``padding: max_length`` (its T5 always pads to max_length, and its DiT ignores the
  mask) and ``empty_text: embed`` ("" is ``</s>``, one real token);
- ``list``: ``missing: row0`` (None takes the learned row 0, unmasked);
- ``guidance``: ``keep_roles: [global, input_concat]``, ``null: zeros`` (its DiT keeps the
  global condition, seconds_start / seconds_total, in both halves and zeroes cross / prepend).

AudioCraft (``compat="inputs"``):
- conditioners in its provider's order (text, then wav, then joint_embed), which is the order
  its fuser concatenates ``cross`` in; ``fuser.prepend_order: reversed``;
- ``lut``: ``empty_text: embed`` for the noop tokenizer; ``lemmas: true`` for the whitespace
  tokenizer when spaCy and its model are installed (a warning and plain words otherwise);
- ``chroma_stem``: ``pad_mode: reflect``, ``normalized: true``, ``silent_frames: c``,
  ``pad_to_duration: false``.

``compat="exact"`` adds the peers' defects, bit for bit where cuecraft's default deliberately
differs: stable-audio-tools' float16 T5 (also on CPU; no LRU, so no batch re-layout), an unknown
``list`` label as row 0; AudioCraft's dropouts drawn once per batch, its CFG (dropout and the
unconditional branch) never dropping the joint_embed (CLAP) condition
(``dropout.cfg_keep_kinds: [joint_embed]``), and its inference melody layout (``chroma_stem``:
``null_melody: silence``, the projection of a silent frame's chroma, a one-hot C with argmax,
unmasked; ``batch_layout: padded``, a mixed-length batch zero-padded to its longest waveform
and looped with that padding).

A setting the config gives itself is never overridden.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from typing import Any

from cuecraft.config.translate import Translation
from cuecraft.errors import ConfigError

COMPAT = ("inputs", "exact")
KIND_ORDER = ("text", "wav", "joint_embed")  # AudioCraft's provider: text, then wav, then joint_embed
SAT_T5 = {"padding": "max_length", "empty_text": "embed"}
SAT_T5_EXACT = {"encoder_dtype": "float16", "cache_size": 0}
AUDIOCRAFT_CHROMA = {"pad_mode": "reflect", "normalized": True, "silent_frames": "c", "pad_to_duration": False}
# MusicGen at inference (match_len_on_eval, no masking): a null melody is the chroma of silence,
# unmasked (with argmax a one-hot C), and a batch is looped with its zero padding.
AUDIOCRAFT_CHROMA_EXACT = {"null_melody": "silence", "batch_layout": "padded"}
SPACY_MODEL = "en_core_web_sm"  # AudioCraft's WhiteSpaceTokenizer language


def check_compat(compat: Any) -> None:
    if compat not in COMPAT:
        raise ConfigError(f"compat: expected one of {', '.join(COMPAT)}; got {compat!r}")


def spacy_available(model: str = SPACY_MODEL) -> bool:
    """Whether spaCy and the pipeline ``model`` are installed (nothing is loaded or downloaded)."""
    if importlib.util.find_spec("spacy") is None:
        return False
    import spacy.util

    return bool(spacy.util.is_package(model))


def apply_peer_inputs(translation: Translation, compat: str = "inputs") -> Translation:
    """Set the options that give a peer-trained checkpoint its training inputs (see the module).

    ``translation`` is a reader's result (its ``data`` is changed in place and returned);
    cuecraft's own configs are returned as they are.
    """
    check_compat(compat)
    if translation.format == "stable-audio-tools":
        _stable_audio(translation, compat)
    elif translation.format == "audiocraft":
        _audiocraft(translation, compat)
    return translation


def _specs(translation: Translation) -> list[dict[str, Any]]:
    specs = translation.data.get("conditioners")
    if not isinstance(specs, list):
        return []
    for spec in specs:
        if isinstance(spec, dict) and isinstance(spec.get("config"), dict):
            spec["config"] = dict(spec["config"])  # ours to change, not the caller's
    return [s for s in specs if isinstance(s, dict) and isinstance(s.get("config"), dict)]


def _set(translation: Translation, spec: dict[str, Any], settings: dict[str, Any], why: str) -> None:
    """Give ``spec`` the ``settings`` it does not set itself (``why``: the peer behaviour; the
    canonical config, as ``cuecraft config validate`` shows it, names every one)."""
    spec["config"].update({k: v for k, v in settings.items() if k not in spec["config"]})


def _stable_audio(translation: Translation, compat: str) -> None:
    for spec in _specs(translation):
        if spec.get("type") == "t5":
            _set(translation, spec, SAT_T5, "stable-audio-tools' T5 layout")
            if compat == "exact":
                _set(translation, spec, SAT_T5_EXACT, "compat exact: stable-audio-tools' float16 T5")
        elif spec.get("type") == "list":
            _set(translation, spec, {"missing": "row0"}, "stable-audio-tools gives None its learned row 0")
            if compat == "exact":
                _set(translation, spec, {"unknown": "row0"}, "compat exact: an unknown label is row 0")
    guidance = dict(translation.data.get("guidance") or {})
    guidance.setdefault("keep_roles", ["global", "input_concat"])
    guidance.setdefault("null", "zeros")
    translation.data["guidance"] = guidance


def _audiocraft(translation: Translation, compat: str) -> None:
    from cuecraft.conditioners import conditioner_class

    specs = _specs(translation)
    for spec in specs:
        kind, config = spec.get("type"), spec["config"]
        if kind == "lut" and config.get("tokenizer", "whitespace") == "noop":
            _set(translation, spec, {"empty_text": "embed"}, "AudioCraft hashes the empty label")
        elif kind == "lut":
            if spacy_available():
                _set(translation, spec, {"lemmas": True}, "AudioCraft's spaCy lemmas")
            else:
                message = (f"{spec.get('id')}: AudioCraft's whitespace tokenizer uses spaCy lemmas and stop words, "
                           f"but spaCy or its model {SPACY_MODEL!r} is not installed: cuecraft hashes plain "
                           "lower-cased words, so a table trained by AudioCraft sees other tokens")
                warnings.warn(message, stacklevel=3)
                translation.notes.append("warning: " + message)
        elif kind == "chroma_stem":
            _set(translation, spec, AUDIOCRAFT_CHROMA, "AudioCraft's chroma")
    fuser = dict(translation.data.get("fuser") or {})
    fuser.setdefault("prepend_order", "reversed")
    translation.data["fuser"] = fuser
    if compat == "exact":
        dropout = translation.data.get("dropout")
        if dropout is None or isinstance(dropout, dict):
            dropout = dict(dropout or {})
            dropout.setdefault("per", "batch")
            dropout.setdefault("cfg_keep_kinds", ["joint_embed"])  # its CFG never drops CLAP
            translation.data["dropout"] = dropout
        for spec in specs:
            if spec.get("type") == "chroma_stem":
                _set(translation, spec, AUDIOCRAFT_CHROMA_EXACT, "compat exact: AudioCraft's inference melody layout")

    def kind_of(spec: dict[str, Any]) -> int:
        try:
            return KIND_ORDER.index(conditioner_class(spec.get("type")).kind)  # type: ignore[arg-type]
        except (ConfigError, ValueError, TypeError):
            return len(KIND_ORDER)  # an unknown type is reported when building

    all_specs = translation.data.get("conditioners")
    if isinstance(all_specs, list) and all(isinstance(s, dict) for s in all_specs):
        order = sorted(range(len(all_specs)), key=lambda i: kind_of(all_specs[i]))
        if order != list(range(len(all_specs))):
            translation.data["conditioners"] = [all_specs[i] for i in order]
            _renumber(translation, {old: new for new, old in enumerate(order)})


_INDEX = re.compile(r"^conditioners\[(\d+)\]")


def _renumber(translation: Translation, new_index: dict[int, int]) -> None:
    """Move the ``conditioners[i]...`` path mappings to the conditioners' new positions."""
    paths = {}
    for key, value in translation.paths.items():
        match = _INDEX.match(key)
        if match and int(match.group(1)) in new_index:
            key = f"conditioners[{new_index[int(match.group(1))]}]" + key[match.end():]
        paths[key] = value
    translation.paths = paths
