"""Read stable-audio-tools' ``model_config.json`` (whole, or its ``model.conditioning`` block).

The peer's own key names are accepted as they are. Routing comes from ``model.diffusion``:
``cross_attention_cond_ids`` -> cross, ``global_cond_ids`` -> global, ``input_concat_ids`` ->
input_concat, ``prepend_cond_ids`` -> prepend. Blocks cuecraft does not use (pretransform,
training, ...) are reported as ignored.
"""

from __future__ import annotations

from typing import Any

from cuecraft._text import short_repr
from cuecraft.config.translate import Translation, check_keys
from cuecraft.errors import ConfigError

ROLE_KEYS = {
    "cross_attention_cond_ids": "cross",
    "global_cond_ids": "global",
    "input_concat_ids": "input_concat",
    "prepend_cond_ids": "prepend",
}
CONDITIONING_KEYS = {"configs": "conditioners", "cond_dim": "width", "default_keys": "fallback keys",
                     "pre_encoded_keys": "pre-encoded ids"}
ITEM_KEYS = {"id": "name", "type": "conditioner type", "config": "settings"}
# Backbone widths checked against the routed conditions: peer key -> cuecraft backbone key.
BACKBONE_KEYS = {"cond_token_dim": "cross_attention_dim", "global_cond_dim": "global_dim",
                 "prepend_cond_dim": "prepend_dim", "input_concat_dim": "input_concat_dim"}
# Peer settings with another name here: type -> {peer key: cuecraft key}.
RENAMED = {
    "clap_text": {"clap_ckpt_path": "clap_model_name", "finetune": "enable_grad"},
    "clap_audio": {"clap_ckpt_path": "clap_model_name", "finetune": "enable_grad"},
}
# Peer settings that describe the laion_clap architecture; transformers reads it from the model.
NOT_USED = {"clap_text": ("audio_model_type", "enable_fusion"), "clap_audio": ("audio_model_type", "enable_fusion")}


def is_stable_audio(data: Any) -> bool:
    return isinstance(data, dict) and (
        isinstance(data.get("model"), dict) and "conditioning" in data["model"]
        or "configs" in data and "cond_dim" in data and "model" not in data
        or isinstance(data.get("conditioning"), dict) and "model" not in data)


def read_stable_audio(data: dict[str, Any]) -> Translation:
    problems: list[str] = []
    ignored: list[str] = []
    notes: list[str] = []
    if "model" in data:
        ignored += [key for key in data if key != "model"]
        model = check_keys(data["model"], "model", {}, [])  # any key: the unused ones are reported
        if not isinstance(data["model"], dict) or "conditioning" not in model:
            raise ConfigError("model.conditioning: required (the conditioning block); not given")
        ignored += [f"model.{key}" for key in model if key not in ("conditioning", "diffusion")]
        conditioning, base = model["conditioning"], "model.conditioning"
        diffusion = model.get("diffusion")
        if diffusion is not None and not isinstance(diffusion, dict):
            problems.append(f"model.diffusion: expected a mapping; got {type(diffusion).__name__}")
            diffusion = {}
    elif isinstance(data.get("conditioning"), dict):  # the block as the documentation shows it
        ignored += [key for key in data if key != "conditioning"]
        conditioning, base, diffusion = data["conditioning"], "conditioning", None
    else:
        conditioning, base, diffusion = data, "", None
    conditioning = check_keys(conditioning, base or "(top level)", CONDITIONING_KEYS, problems)
    prefix = f"{base}." if base else ""

    roles: dict[str, list[str]] = {}
    backbone: dict[str, int] = {}
    backbone_paths: dict[str, str] = {}
    if isinstance(diffusion, dict):
        for key, role in ROLE_KEYS.items():
            ids = diffusion.get(key) or []
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                problems.append(f"model.diffusion.{key}: expected a list of condition ids; got {short_repr(ids)}")
                continue
            for condition_id in ids:
                roles.setdefault(condition_id, []).append(role)
        ignored += [f"model.diffusion.{k}" for k in diffusion if k not in ROLE_KEYS and k != "config"]
        backbone_config = diffusion.get("config", {}) if isinstance(diffusion.get("config"), dict) else {}
        for peer_key, value in backbone_config.items():
            if peer_key in BACKBONE_KEYS and isinstance(value, int) and not isinstance(value, bool) and value > 0:
                backbone[BACKBONE_KEYS[peer_key]] = value
                backbone_paths[f"backbone.{BACKBONE_KEYS[peer_key]}"] = f"model.diffusion.config.{peer_key}"
            else:
                ignored.append(f"model.diffusion.config.{peer_key}")
    else:
        notes.append("no model.diffusion block: every condition is routed to cross-attention")

    translation = Translation({}, "stable-audio-tools", paths={}, ignored=ignored, notes=notes)
    conditioners = []
    items = conditioning.get("configs", []) if isinstance(conditioning, dict) else []
    if not isinstance(items, list):
        problems.append(f"{prefix}configs: expected a list; got {type(items).__name__}")
        items = []
    for i, item in enumerate(items):
        item_path = f"{prefix}configs[{i}]"
        translation.paths[f"conditioners[{i}]"] = item_path
        if not check_keys(item, item_path, ITEM_KEYS, problems):
            continue
        kind, settings = item.get("type"), item.get("config") or {}
        if not isinstance(kind, str) or not isinstance(settings, dict):
            problems.append(f"{item_path}: expected a str type and a mapping config; got type {short_repr(kind)}, "
                            f"config {type(settings).__name__}")
            continue
        settings = dict(settings)
        for peer_key, key in RENAMED.get(kind, {}).items():
            if peer_key in settings:
                settings[key] = settings.pop(peer_key)
                translation.paths[f"conditioners[{i}].config.{key}"] = f"{item_path}.config.{peer_key}"
        for unused in NOT_USED.get(kind, ()):
            if unused in settings:
                settings.pop(unused)
                ignored.append(f"{item_path}.config.{unused}")
        condition_id = item.get("id")
        if not isinstance(condition_id, str):
            problems.append(f"{item_path}.id: expected a str; got {short_repr(condition_id)}")
            continue
        item_roles = roles.pop(condition_id, []) if diffusion is not None else ["cross"]
        if not item_roles:
            problems.append(f"{item_path}: condition {short_repr(condition_id)} is routed to no role by "
                            f"model.diffusion ({', '.join(ROLE_KEYS)})")
            translation.unresolved.add(f"{item_path}.roles")
        conditioners.append({"id": condition_id, "type": kind, "config": settings, "roles": item_roles})
    for condition_id in roles:
        problems.append(f"model.diffusion: routes {short_repr(condition_id)}, which no conditioner in "
                        f"{prefix}configs has as its id")
    translation.problems = problems
    translation.paths.update(backbone_paths)
    canonical: dict[str, Any] = {"cond_dim": conditioning.get("cond_dim"), "conditioners": conditioners}
    for key in ("default_keys", "pre_encoded_keys"):
        if key in conditioning:
            canonical[key] = conditioning[key]
            translation.paths[key] = prefix + key
    if backbone:
        canonical["backbone"] = backbone
    translation.paths["cond_dim"] = f"{prefix}cond_dim"
    translation.paths["conditioners"] = f"{prefix}configs"
    translation.data = canonical
    return translation
