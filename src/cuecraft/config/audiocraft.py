"""Read AudioCraft's YAML conditioning configs (as MusicGen's solver configs write them).

    conditioners: {name: {model: t5|lut|chroma_stem|clap, <model>: {...}}}
    fuser: {sum: [...], cross: [...], prepend: [...], input_interpolate: [...],
            cross_attention_pos_emb, cross_attention_pos_emb_scale}
    classifier_free_guidance: {training_dropout, inference_coef}
    attribute_dropout: {text: {...}, wav: {...}}

Conditions are ``transformer_lm.dim`` wide (``dim`` at the top level also works). AudioCraft
always puts a projection after a conditioner, so ``project_out`` is set. ``${a.b}`` references are
resolved within the file. Settings that describe AudioCraft's own machinery are reported as ignored.
"""

from __future__ import annotations

from typing import Any

from cuecraft.config.translate import Translation, check_keys, raise_if, resolve_references

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
                      "kmeans_iters": None, "text_p": None, "batch_size": None, "cache_path": None,
                      "device": None}),
}
FUSER_KEYS = {"sum": "role", "cross": "role", "prepend": "role", "input_interpolate": "role",
              "cross_attention_pos_emb": "flag", "cross_attention_pos_emb_scale": "scale"}
GUIDANCE_KEYS = {"training_dropout": "probability", "inference_coef": "scale"}
ATTRIBUTE_KINDS = ("text", "wav", "joint_embed")


def is_audiocraft(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("conditioners"), dict)


def read_audiocraft(data: dict[str, Any]) -> Translation:
    data = resolve_references(data, data)
    problems: list[str] = []
    ignored = [key for key in data if key not in ("conditioners", "fuser", "classifier_free_guidance",
                                                  "attribute_dropout", "transformer_lm", "dim")]
    translation = Translation({}, "audiocraft", ignored=ignored)
    lm = data.get("transformer_lm")
    dim = lm.get("dim") if isinstance(lm, dict) else data.get("dim")
    if isinstance(lm, dict):
        ignored += [f"transformer_lm.{k}" for k in lm if k != "dim"]
    translation.paths["cond_dim"] = "transformer_lm.dim" if isinstance(lm, dict) else "dim"
    if dim is None:
        problems.append("transformer_lm.dim: required (the width of every condition); not given")

    fuser = check_keys(data.get("fuser", {}), "fuser", FUSER_KEYS, problems)
    roles: dict[str, list[str]] = {}
    for role in ("sum", "cross", "prepend", "input_interpolate"):
        names = fuser.get(role) or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            problems.append(f"fuser.{role}: expected a list of condition names; got {names!r}")
            continue
        for name in names:
            roles.setdefault(name, []).append(role)

    conditioners = []
    for name, entry in data["conditioners"].items():
        path = f"conditioners.{name}"
        model = entry.get("model") if isinstance(entry, dict) else None
        if not isinstance(model, str) or model not in MODELS:
            problems.append(f"{path}.model: unknown conditioner model {model!r}; valid models: {', '.join(MODELS)}")
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
                problems.append(f"{path}.{model}.{peer_key}: unknown setting; valid settings: {', '.join(keys)}")
            elif keys[peer_key] is None:
                ignored.append(f"{path}.{model}.{peer_key}")
            else:
                settings[keys[peer_key]] = value
                translation.paths[f"conditioners[{len(conditioners)}].config.{keys[peer_key]}"] = f"{path}.{model}.{peer_key}"
        if model == "chroma_stem" and "stems" not in settings:
            translation.notes.append(f"{path}: AudioCraft separates stems with demucs; cuecraft uses "
                                     "stems 'hpss' unless the config says otherwise")
        if model == "lut" and settings.get("tokenizer", "whitespace") == "whitespace":
            translation.notes.append(f"{path}: cuecraft's whitespace tokenizer lower-cases words and uses no "
                                     "spaCy lemmas or stop words, so tables trained by AudioCraft's see other "
                                     "tokens (the noop tokenizer is identical)")
        if not roles.get(name):
            problems.append(f"{path}: condition {name!r} is in no fuser list (sum, cross, prepend, input_interpolate)")
        conditioners.append({"id": name, "type": kind, "config": settings, "roles": roles.pop(name, [])})
    for name in roles:
        problems.append(f"fuser: routes {name!r}, which is not among the conditioners {list(data['conditioners'])}")

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
        chosen = {k: v for k, v in attribute.items() if k != "args" and v}
        if chosen:
            dropout["attributes"] = chosen
            translation.paths["dropout.attributes"] = "attribute_dropout"
    if dropout:
        canonical["dropout"] = dropout
    raise_if(problems)
    translation.data = canonical
    return translation
