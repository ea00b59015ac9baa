"""Load MusicLDM components from a local diffusers-format directory.

The layout is the one the published MusicLDM weights use::

    DIR/model_index.json            {"vae": ["diffusers", "AutoencoderKL"], "scheduler": [...], ...}
    DIR/vae/config.json + weights   AutoencoderKL
    DIR/text_encoder/...            ClapModel
    DIR/tokenizer/...               the CLAP (Roberta) tokenizer
    DIR/feature_extractor/...       ClapFeatureExtractor
    DIR/unet/...                    UNet2DConditionModel
    DIR/scheduler/...               a diffusers scheduler (the class model_index.json names)
    DIR/vocoder/...                 SpeechT5HifiGan

Everything is read from disk (``local_files_only``); nothing is downloaded. A missing directory,
a missing ``model_index.json``, components that are missing from it or from disk, and components
that fail to load all raise PretrainedModelNotFoundError naming what is missing.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
from pathlib import Path
from typing import Any

from cuecraft._optional import require
from cuecraft.errors import PretrainedModelNotFoundError

# component -> (library, class used to load it, file that must exist in its sub-directory)
COMPONENTS: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "vae": ("diffusers", "AutoencoderKL", ("config.json",)),
    "text_encoder": ("transformers", "ClapModel", ("config.json",)),
    "tokenizer": ("transformers", "AutoTokenizer", ("tokenizer.json", "vocab.json")),
    "feature_extractor": ("transformers", "ClapFeatureExtractor", ("preprocessor_config.json",)),
    "unet": ("diffusers", "UNet2DConditionModel", ("config.json",)),
    "scheduler": ("diffusers", None, ("scheduler_config.json",)),  # the class model_index.json names
    "vocoder": ("transformers", "SpeechT5HifiGan", ("config.json",)),
}
_HOW = ("a diffusers-format MusicLDM directory holds model_index.json and one sub-directory per component "
        f"({', '.join(COMPONENTS)}), as `hf download ucsd-reach/musicldm --local-dir DIR` lays it out")


def read_model_index(directory: str | Path) -> tuple[Path, dict[str, Any]]:
    """The resolved directory and its parsed ``model_index.json``, after checking that every
    component is listed there and present on disk (all problems reported together)."""
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise PretrainedModelNotFoundError(f"MusicLDM model: no such directory: {path} ({_HOW})")
    index_file = path / "model_index.json"
    if not index_file.is_file():
        raise PretrainedModelNotFoundError(f"MusicLDM model: {path} has no model_index.json, so it is not a "
                                           f"diffusers-format model directory ({_HOW})")
    try:
        index = json.loads(index_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PretrainedModelNotFoundError(f"MusicLDM model: {index_file} cannot be read as JSON ({error})") from None
    if not isinstance(index, dict):
        raise PretrainedModelNotFoundError(f"MusicLDM model: {index_file} must hold a JSON object; "
                                           f"got {type(index).__name__}")
    problems = []
    for name, (_, _, markers) in COMPONENTS.items():
        entry = index.get(name)
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(e, str) for e in entry)):
            problems.append(f"model_index.json lists no {name} (expected [library, class]; got {entry!r})")
        elif not (path / name).is_dir():
            problems.append(f"{name}/ is missing")
        elif not any((path / name / marker).is_file() for marker in markers):
            problems.append(f"{name}/ holds none of {', '.join(markers)}"
                            + (" (without it the tokenizer would know 5 tokens)" if name == "tokenizer" else ""))
    if problems:
        raise PretrainedModelNotFoundError(f"MusicLDM model: {path} is incomplete: " + "; ".join(problems))
    return path, index


def _scheduler_class(index: dict[str, Any]) -> Any:
    diffusers = require("diffusers", extra="musicldm", purpose="the MusicLDM pipeline")
    library, class_name = index["scheduler"]
    scheduler_class = getattr(diffusers, class_name, None) if library == "diffusers" else None
    if not (isinstance(scheduler_class, type) and issubclass(scheduler_class, diffusers.SchedulerMixin)):
        raise PretrainedModelNotFoundError(f"MusicLDM model: model_index.json names the scheduler "
                                           f"{library}.{class_name}, which is not a diffusers scheduler")
    return scheduler_class


def load_components(directory: str | Path) -> dict[str, Any]:
    """The seven MusicLDM components loaded from ``directory`` (float32, on the CPU)."""
    path, index = read_model_index(directory)
    # diffusers models load faster through accelerate; without it, say so up front (no warning).
    diffusers_options = {"low_cpu_mem_usage": importlib.util.find_spec("accelerate") is not None}
    components = {}
    for name, (library, class_name, _) in COMPONENTS.items():
        if class_name is None:
            loader = _scheduler_class(index)
        else:
            extra = "musicldm" if library == "diffusers" else "text"
            loader = getattr(require(library, extra=extra, purpose="the MusicLDM pipeline"), class_name)
        try:
            options = diffusers_options if library == "diffusers" and class_name is not None else {}
            if library == "transformers":
                options = {**options, "trust_remote_code": False}  # a folder's auto_map never runs code
            component = loader.from_pretrained(str(path / name), local_files_only=True, **options)
        except (OSError, ValueError, KeyError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
            raise PretrainedModelNotFoundError(
                f"MusicLDM model: the {name} in {path / name} cannot be loaded ({type(error).__name__}: {error})"
            ) from None
        components[name] = component.eval() if hasattr(component, "eval") else component
    return components
