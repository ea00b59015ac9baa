"""Reading MusicGen model folders, offline: transformers' layout, or AudioCraft's (see ``audiocraft.py``).

transformers' layout, as ``hf download facebook/musicgen-small`` (or -medium, -large, -melody)
lays it out::

    DIR/config.json                model_type "musicgen" or "musicgen_melody" (text encoder,
                                   EnCodec and decoder configs)
    DIR/model.safetensors          the weights (or model.safetensors.index.json and its shards,
                                   or pytorch_model.bin)
    DIR/tokenizer.json             the T5 tokenizer (or spiece.model)
    DIR/preprocessor_config.json   MusicGen-melody's chroma settings (optional: transformers'
                                   MusicgenMelodyFeatureExtractor defaults otherwise)

A source is a local directory or a hub name found in the Hugging Face cache; nothing is
downloaded. A folder with both layouts (the hub's facebook/musicgen-* repositories hold both) is
read in transformers' layout. Reading a folder (``read_folder``) parses its configuration and
tokenizer only; ``MusicGenFolder.load_model`` reads the weights.
"""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cuecraft._optional import require
from cuecraft._text import short_repr
from cuecraft.conditioners.pretrained import TOKENIZER_FILES, WEIGHT_FILES
from cuecraft.errors import PretrainedModelNotFoundError
from cuecraft.pipelines.musicgen.spec import KINDS, ChromaSettings, MusicGenSpec, spec_from_config

LAYOUTS = (
    "transformers' (config.json with model_type musicgen or musicgen_melody, model.safetensors or its index or "
    "pytorch_model.bin, tokenizer.json or spiece.model; `hf download facebook/musicgen-small --local-dir DIR`)",
    "AudioCraft's (state_dict.bin and compression_state_dict.bin, the language model and a reference to its "
    "EnCodec; the T5 and EnCodec it names are read from the Hugging Face cache)",
)
LOAD_ERRORS = (OSError, ValueError, KeyError, EOFError, RuntimeError, TypeError, pickle.UnpicklingError)


def _layouts() -> str:
    return "supported layouts: " + "; ".join(LAYOUTS)


@dataclass
class MusicGenFolder:
    """A MusicGen model folder read without its weights.

    path: the folder. layout: "transformers" or "audiocraft". spec: the model's kind, rates and
    limits. tokenizer: its text tokenizer (loaded). checkpoint: AudioCraft's parsed files
    (AudioCraft layout only).
    """

    path: Path
    layout: str
    spec: MusicGenSpec
    tokenizer: Any
    checkpoint: Any = field(default=None, repr=False)

    def load_model(self) -> Any:
        """The model (``MusicgenForConditionalGeneration`` or ``MusicgenMelodyForConditionalGeneration``),
        float32, on the CPU, in eval mode."""
        if self.layout == "audiocraft":
            from cuecraft.pipelines.musicgen.audiocraft import build_model

            return build_model(self.checkpoint).eval()
        transformers = require("transformers", extra="text", purpose="MusicGen")
        model_class = (transformers.MusicgenMelodyForConditionalGeneration if self.spec.melody
                       else transformers.MusicgenForConditionalGeneration)
        try:
            model = model_class.from_pretrained(str(self.path), local_files_only=True, trust_remote_code=False)
        except LOAD_ERRORS as error:
            raise PretrainedModelNotFoundError(
                f"MusicGen model: the weights in {self.path} cannot be loaded ({type(error).__name__}: "
                f"{short_repr(str(error), 300)[1:-1]})") from None
        return model.eval()


def resolve(source: Any) -> Path:
    """The folder of ``source``: a local directory, or a hub name in the Hugging Face cache."""
    if not isinstance(source, (str, Path)) or not str(source):
        raise PretrainedModelNotFoundError(f"MusicGen model: expected a directory or a hub name; "
                                           f"got {short_repr(source)}")
    path = Path(source).expanduser()
    try:
        if path.is_dir():
            return path
    except OSError:
        pass
    name = str(source)
    hub_name = not name.startswith((".", "/", "~")) and name.count("/") <= 1 and "\\" not in name
    snapshot = _cached_snapshot(name) if hub_name else None
    if snapshot is not None:
        return snapshot
    if hub_name:
        raise PretrainedModelNotFoundError(
            f"MusicGen model: {name!r} is neither a directory nor a model in the Hugging Face cache, and cuecraft "
            f"does not download: run `hf download {name}` on a machine with network (or give a local directory)")
    raise PretrainedModelNotFoundError(f"MusicGen model: no such directory: {path} ({_layouts()})")


def _cached_snapshot(name: str) -> Path | None:
    try:
        import huggingface_hub
    except ImportError:
        return None
    try:
        return Path(huggingface_hub.snapshot_download(repo_id=name, local_files_only=True))
    except Exception:  # noqa: BLE001 -- not cached, not a valid repo id, an unreadable cache
        return None


def read_folder(source: Any) -> MusicGenFolder:
    """Resolve ``source`` and read its configuration and tokenizer (not its weights). An
    incomplete folder is refused with a PretrainedModelNotFoundError naming everything missing."""
    path = resolve(source)
    if (path / "config.json").is_file() or not (path / "state_dict.bin").is_file():
        return _read_transformers(path)
    from cuecraft.pipelines.musicgen.audiocraft import read_audiocraft

    return read_audiocraft(path)


def _missing_weights(path: Path) -> list[str]:
    """What is missing of the weights: none of WEIGHT_FILES, or shards an index lists."""
    present = [name for name in WEIGHT_FILES if (path / name).is_file()]
    if not present:
        return [f"weights (none of {', '.join(WEIGHT_FILES)})"]
    index = next((name for name in present if name.endswith(".index.json")), None)
    if index is None or any(not name.endswith(".index.json") for name in present):
        return []
    try:
        shards = sorted(set(json.loads((path / index).read_text())["weight_map"].values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        return [f"a readable {index} ({type(error).__name__}: {error})"]
    return [f"{shard} (listed in {index})" for shard in shards if not (path / str(shard)).is_file()]


def _read_transformers(path: Path) -> MusicGenFolder:
    missing = []
    config_data = None
    if not (path / "config.json").is_file():
        missing.append("config.json")
    else:
        try:
            config_data = json.loads((path / "config.json").read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PretrainedModelNotFoundError(f"MusicGen model: {path / 'config.json'} cannot be read as JSON "
                                               f"({error})") from None
        kind = config_data.get("model_type") if isinstance(config_data, dict) else None
        if kind not in KINDS:
            raise PretrainedModelNotFoundError(
                f"MusicGen model: {path / 'config.json'} has model_type {kind!r}; cuecraft musicgen runs "
                f"{', '.join(KINDS)} ({_layouts()})")
    missing += _missing_weights(path)
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        missing.append(f"tokenizer file (none of {', '.join(TOKENIZER_FILES)})")
    if missing:
        found = "" if config_data is not None or (path / "state_dict.bin").is_file() else f" ({_layouts()})"
        raise PretrainedModelNotFoundError(f"MusicGen model: {path} is incomplete: no {'; no '.join(missing)}{found}")
    transformers = require("transformers", extra="text", purpose="MusicGen")
    try:
        config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True,
                                                               trust_remote_code=False)
    except LOAD_ERRORS as error:
        raise PretrainedModelNotFoundError(f"MusicGen model: {path} cannot be read ({type(error).__name__}: "
                                           f"{short_repr(str(error), 300)[1:-1]})") from None
    chroma = _chroma_settings(path, config) if config.model_type == "musicgen_melody" else None
    return MusicGenFolder(path, "transformers", spec_from_config(config, tokenizer, chroma, str(path)), tokenizer)


def _chroma_settings(path: Path, config: Any) -> ChromaSettings:
    """MusicGen-melody's chroma from its preprocessor_config.json (transformers'
    MusicgenMelodyFeatureExtractor; its defaults where the file is absent) and its config."""
    settings: dict[str, Any] = {}
    file = path / "preprocessor_config.json"
    if file.is_file():
        try:
            settings = json.loads(file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PretrainedModelNotFoundError(f"MusicGen model: {file} cannot be read as JSON ({error})") from None
    sample_rate = settings.get("sampling_rate", 32000)
    n_fft, hop = settings.get("n_fft", 16384), settings.get("hop_length", 4096)
    n_chroma = settings.get("num_chroma", settings.get("feature_size", 12))
    exponent = int(round(math.log2(n_fft))) if isinstance(n_fft, int) and n_fft > 0 else -1
    if exponent < 0 or 2 ** exponent != n_fft or hop != n_fft // 4:
        raise PretrainedModelNotFoundError(
            f"MusicGen model: {file} asks for a chroma with n_fft {n_fft!r} and hop_length {hop!r}; cuecraft's chroma "
            "takes n_fft a power of 2 and hop n_fft / 4 (MusicGen-melody's: 16384 and 4096)")
    if n_chroma != config.num_chroma:
        raise PretrainedModelNotFoundError(f"MusicGen model: {file} has {n_chroma} chroma bins; config.json "
                                           f"num_chroma is {config.num_chroma}")
    return ChromaSettings(sample_rate=int(sample_rate), n_chroma=int(n_chroma), radix2_exp=exponent,
                          chroma_length=int(config.chroma_length))
