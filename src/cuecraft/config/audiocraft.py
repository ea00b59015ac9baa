"""Read AudioCraft's YAML conditioning configs (as MusicGen's solver configs write them).

    conditioners: {name: {model: t5|lut|chroma_stem|clap, <model>: {...}}}
    fuser: {sum: [...], cross: [...], prepend: [...], input_interpolate: [...],
            cross_attention_pos_emb, cross_attention_pos_emb_scale}
    classifier_free_guidance: {training_dropout, inference_coef}
    attribute_dropout: {text: {...}, wav: {...}, symbolic: {...}}

Besides AudioCraft's models (t5, lut, chroma_stem, clap), ``model: beats`` and ``model: chords``
build cuecraft's frame-aligned conditioners (``fuser: {sum: [...]}`` or ``input_interpolate``);
their dropout is ``attribute_dropout: {symbolic: {name: p}}``, as JASCO names its chords'.

Conditions are ``transformer_lm.dim`` wide (``dim`` at the top level also works). AudioCraft
always puts a projection after a conditioner, so ``project_out`` is set. ``${a.b}`` references are
resolved within the file. Settings that describe AudioCraft's own machinery are reported as ignored.
"""

from __future__ import annotations

from typing import Any

from cuecraft._text import short_name, short_repr
from cuecraft.config.translate import Translation, check_keys, resolve_references
from cuecraft.errors import ConfigError

# model -> (cuecraft type, {peer key: cuecraft key or None when not used})
MODELS: dict[str, tuple[str, dict[str, str | None]]] = {
    "t5": ("t5", {"name": "t5_model_name", "finetune": "enable_grad", "word_dropout": "word_dropout",
                  "normalize_text": "normalize_text", "autocast_dtype": "autocast_dtype", "device": None}),
    "lut": ("lut", {"n_bins": "n_bins", "dim": "dim", "tokenizer": "tokenizer", "pad_idx": None}),
    "chroma_stem": ("chroma_stem", {"sample_rate": "sample_rate", "n_chroma": "n_chroma",
                                    "radix2_exp": "radix2_exp", "argmax": "argmax",
                                    "match_len_on_eval": "match_len_on_eval", "duration": "duration",
                                    "cache_path": "cache_path", "eval_wavs": None, "n_eval_wavs": None,
                                    "device": None}),
    "clap": ("clap", {"checkpoint": "clap_model_name", "model_arch": None, "enable_fusion": None,
                      "sample_rate": None, "max_audio_length": None, "audio_stride": None, "dim": None,
                      "attribute": None, "normalize": None, "quantize": None, "n_q": None, "n_bins": None,
                      "bins": None,
                      "kmeans_iters": None, "text_p": None, "batch_size": None, "cache_path": None,
                      "device": None}),
    # cuecraft's frame-aligned conditioners (no AudioCraft model of these names): settings as
    # cuecraft names them; ``project_out: false`` keeps the raw channels.
    **{name: (name, {key: key for key in ("frame_rate", "duration", "time_signature", "min_bpm", "max_bpm",
                                          "project_out", *extra)})
       for name, extra in (("beats", ("beat_width", "track", "tracker", "cache_path")), ("chords", ()))},
}
FUSER_KEYS = {"sum": "role", "cross": "role", "prepend": "role", "input_interpolate": "role",
              "ignore": "conditions the model reads itself", "cross_attention_pos_emb": "flag",
              "cross_attention_pos_emb_scale": "scale"}
# AudioCraft conditioners cuecraft does not implement (yet): model -> what it is.
UNSUPPORTED = {"chords_emb": "JASCO's chord conditioner", "drum_latents": "JASCO's drum-stem latents",
               "melody": "JASCO's melody salience conditioner", "style": "MusicGen-Style's audio style conditioner",
               "chroma_chord": "JASCO's chroma-chord conditioner"}
GUIDANCE_KEYS = {"training_dropout": "probability", "inference_coef": "scale"}
ATTRIBUTE_KINDS = ("text", "wav", "joint_embed")


def is_audiocraft(data: Any) -> bool:
    return isinstance(data, dict) and (isinstance(data.get("conditioners"), dict) or (
        "conditioners" in data and data["conditioners"] is None
        and ("fuser" in data or "classifier_free_guidance" in data)))


def _unsupported(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("model"), str) and entry["model"] in UNSUPPORTED


def _used_sections(data: dict[str, Any]) -> dict[str, Any]:
    """The parts of an AudioCraft config cuecraft reads: references are resolved in these only."""
    used = {k: data[k] for k in ("fuser", "classifier_free_guidance", "attribute_dropout") if k in data}
    lm = data.get("transformer_lm")
    if isinstance(lm, dict) and "dim" in lm:
        used["transformer_lm"] = {"dim": lm["dim"]}
    if "dim" in data:
        used["dim"] = data["dim"]
    used["conditioners"] = {name: entry for name, entry in data["conditioners"].items()
                            if not _unsupported(entry)}
    return used


def read_audiocraft(data: dict[str, Any]) -> Translation:
    if data["conditioners"] is None:
        raise ConfigError("conditioners: null: this AudioCraft config conditions nothing (as none.yaml, an "
                          "unconditional model), so there is no conditioning to build")
    problems: list[str] = []
    unresolved: set[str] = set()
    raw_conditioners = data["conditioners"]
    resolved = resolve_references(_used_sections(data), data, problems=problems, unresolved=unresolved)
    lm_dim = resolved.pop("transformer_lm", None)
    data = {**data, **resolved}
    if lm_dim is not None:
        data["transformer_lm"] = {**data["transformer_lm"], **lm_dim}
    data["conditioners"] = {name: data["conditioners"].get(name, entry) for name, entry in raw_conditioners.items()}
    ignored = [key for key in data if key not in ("conditioners", "fuser", "classifier_free_guidance",
                                                  "attribute_dropout", "transformer_lm", "dim")]
    translation = Translation({}, "audiocraft", ignored=ignored, unresolved=unresolved)
    lm = data.get("transformer_lm")
    dim = lm.get("dim") if isinstance(lm, dict) else data.get("dim")
    if isinstance(lm, dict):
        ignored += [f"transformer_lm.{k}" for k in lm if k != "dim"]
    translation.paths["cond_dim"] = "transformer_lm.dim" if isinstance(lm, dict) else "dim"
    if dim is None and translation.paths["cond_dim"] not in unresolved:
        problems.append("transformer_lm.dim: required (the width of every condition); not given (Hydra sets it "
                        "from model/lm/model_scale; give it with --set transformer_lm.dim=1024)")
        unresolved.add(translation.paths["cond_dim"])

    fuser = check_keys(data.get("fuser", {}), "fuser", FUSER_KEYS, problems)
    roles: dict[str, list[str]] = {}
    unsupported = {name for name, entry in data["conditioners"].items() if _unsupported(entry)}
    fused_elsewhere = fuser.get("ignore") or []
    if not isinstance(fused_elsewhere, list) or not all(isinstance(n, str) for n in fused_elsewhere):
        problems.append(f"fuser.ignore: expected a list of condition names; got {short_repr(fused_elsewhere)}")
        fused_elsewhere = []
    for role in ("sum", "cross", "prepend", "input_interpolate"):
        names = fuser.get(role) or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            problems.append(f"fuser.{role}: expected a list of condition names; got {short_repr(names)}")
            continue
        for name in names:
            roles.setdefault(name, []).append(role)

    conditioners = []
    for name, entry in data["conditioners"].items():
        path = f"conditioners.{short_name(name)}"
        model = entry.get("model") if isinstance(entry, dict) else None
        if not isinstance(model, str) or model not in MODELS:
            if _unsupported(entry):
                problems.append(f"{path}.model: {model!r} ({UNSUPPORTED[model]}) is not supported by cuecraft "
                                f"yet; supported models: {', '.join(MODELS)}")
                roles.pop(name, None)
            else:
                problems.append(f"{path}.model: unknown conditioner model {short_repr(model)}; valid models: "
                                f"{', '.join(MODELS)}")
            continue
        if name in fused_elsewhere and not roles.get(name):
            translation.notes.append(f"fuser.ignore: {name!r} goes to no fuser role (AudioCraft's model reads it "
                                     "itself); cuecraft leaves it out")
            ignored.append(path)
            continue
        check_keys(entry, path, {"model": "type", model: "settings"}, problems)
        kind, keys = MODELS[model]
        settings: dict[str, Any] = {"project_out": True}
        translation.paths[f"conditioners[{len(conditioners)}]"] = path
        translation.paths[f"conditioners[{len(conditioners)}].config"] = f"{path}.{model}"
        block = entry.get(model) or {}
        if not isinstance(block, dict):
            problems.append(f"{path}.{model}: expected a mapping of settings; got {type(block).__name__}")
            block = {}
        for peer_key, value in block.items():
            if peer_key not in keys:
                problems.append(f"{path}.{model}.{short_name(peer_key)}: unknown setting; valid settings: "
                                f"{', '.join(keys)}")
            elif keys[peer_key] is None:
                ignored.append(f"{path}.{model}.{peer_key}")
            else:
                settings[keys[peer_key]] = value
                translation.paths[f"conditioners[{len(conditioners)}].config.{keys[peer_key]}"] = f"{path}.{model}.{peer_key}"
        if model == "chroma_stem" and "stems" not in settings:
            translation.notes.append(f"{path}: AudioCraft separates stems with demucs; cuecraft uses "
                                     "stems 'hpss' unless the config says otherwise")
        # lut with the whitespace tokenizer: spaCy lemmas when installed (see peer_inputs.py)
        if not roles.get(name):
            problems.append(f"{path}: condition {short_repr(name)} is in no fuser list (sum, cross, prepend, "
                            "input_interpolate, ignore)")
            unresolved.add(f"{path}.roles")
        conditioners.append({"id": name, "type": kind, "config": settings, "roles": roles.pop(name, [])})
    for name in roles:
        if name not in unsupported:
            problems.append(f"fuser: routes {short_repr(name)}, which is not among the conditioners "
                            f"{short_repr(list(data['conditioners']))}")

    canonical: dict[str, Any] = {"cond_dim": dim, "conditioners": conditioners}
    fuser_settings = {k: fuser[k] for k in ("cross_attention_pos_emb", "cross_attention_pos_emb_scale") if k in fuser}
    if fuser_settings:
        canonical["fuser"] = fuser_settings
    guidance = check_keys(data.get("classifier_free_guidance", {}), "classifier_free_guidance", GUIDANCE_KEYS, problems)
    dropout: dict[str, Any] = {}
    if "training_dropout" in guidance:
        dropout["cfg"] = guidance["training_dropout"]
        translation.paths["dropout.cfg"] = "classifier_free_guidance.training_dropout"
    if "inference_coef" in guidance:
        canonical["guidance"] = {"scale": guidance["inference_coef"]}
        translation.paths["guidance.scale"] = "classifier_free_guidance.inference_coef"
    attribute = data.get("attribute_dropout", {})
    if isinstance(attribute, dict):
        if "args" in attribute:
            ignored.append("attribute_dropout.args")
        left_out = unsupported | {n for n in fused_elsewhere if n not in {c["id"] for c in conditioners}}
        chosen = {}
        for kind, names in attribute.items():
            if kind == "args" or not names:
                continue
            if isinstance(names, dict):
                ignored.extend(f"attribute_dropout.{kind}.{n}" for n in names if n in left_out)
                names = {n: p for n, p in names.items() if n not in left_out}
                if not names:
                    continue
            chosen[kind] = names
        if chosen:
            dropout["attributes"] = chosen
            translation.paths["dropout.attributes"] = "attribute_dropout"
    if dropout:
        canonical["dropout"] = dropout
    translation.problems = problems
    translation.data = canonical
    return translation
