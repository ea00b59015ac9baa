"""A model config: conditioning, representation, backbone, objective and training, checked together.

A model config (JSON or YAML) looks like::

    {
      "conditioning": { ...cuecraft's conditioning config (or a peer's)... },
      "representation": {"type": "mel", "sample_rate": 16000, "n_mels": 64, "hop": 256, "n_fft": 1024},
      "backbone": {"type": "dit", "latent_dim": 64, "dim": 128, "depth": 4, "heads": 4,
                   "cross_attention_dim": 64, "global_dim": 64},
      "objective": {"type": "v", "timesteps": "logit_normal"},
      "training": {"batch_size": 8, "lr": 1e-4, "max_steps": 10000, ...}
    }

``parse_model_config`` checks the structure of every block and reports every problem at once,
each with its field path (``training.lr``, ``backbone.heads``, ``conditioning.conditioners[1].id``);
``build_model`` then builds the parts and checks them against each other: the widths the DiT
reads against the routed conditions (the conditioning builder's dimension bookkeeping, fed the
backbone's widths) and ``latent_dim`` against the representation. ``cuecraft train`` and
validation use the same two functions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import torch
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from cuecraft._text import short_repr, shorten
from cuecraft.config.formats import LoadedConfig, load_config, read_file
from cuecraft.config.schema import BackboneSpec, field_path
from cuecraft.errors import ConfigError

Number = StrictFloat | StrictInt  # finite: every block below sets allow_inf_nan=False
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
LORA_TARGETS = ("self_attention", "cross_attention", "mlp")
REPRESENTATION_EXTRA = ("type", "load", "fit_stats_items")  # representation keys that are not MelOptions
# Bounds checked before anything is allocated or run (README, "Bad input"): a value past one is a
# typo or an attack, not a setting (a million workers fork until the machine dies).
MAX_STEPS = 10**9  # optimizer steps, and every "every N steps"
MAX_BATCH = 65_536  # items per optimizer step
MAX_WORKERS = 64  # DataLoader processes per rank
MAX_SEGMENT_SECONDS = 600.0  # a training item, a demo
MAX_ITEM_SAMPLES = 2**26  # samples of one item: segment_seconds x sample_rate x channels (256 MiB of float32)
MAX_DEMO_PROMPTS = 64
MAX_DEMO_STEPS = 1_000
MAX_LORA_RANK = 4_096
MAX_SEED = 2**62
MAX_FIT_STATS_ITEMS = 1_000_000
MAX_PATH_CHARS = 4_096


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class ObjectiveSpec(_Strict):
    type: Literal["v", "rectified_flow"] = "v"  # the Gaussian path and its quantity (cuecraft.models.objectives)
    output: Literal["target", "x0"] = "target"  # what the network outputs: the path's quantity (v, velocity) or x0
    timesteps: Literal["uniform", "logit_normal"] = "uniform"  # how training draws t
    timestep_mean: Number = Field(default=0.0, ge=-10, le=10)  # logit_normal only: mean before the sigmoid
    timestep_std: Number = Field(default=1.0, gt=0, le=10)  # logit_normal only: std before the sigmoid


class LoraSpec(_Strict):
    r: StrictInt = Field(default=8, ge=1, le=MAX_LORA_RANK)  # adapter rank
    alpha: Number = Field(default=16, gt=0, le=1e6)  # scaling: alpha / r
    dropout: Number = Field(default=0.0, ge=0, lt=1)  # dropout on the adapter input
    targets: list[Literal["self_attention", "cross_attention", "mlp"]] = Field(
        default_factory=lambda: list(LORA_TARGETS), min_length=1)  # which projections get adapters


class InpaintSpec(_Strict):
    """How training draws each item's known frames when ``backbone.inpaint`` is true
    (``cuecraft.train.inpaint``). The three probabilities sum to 1."""

    none: Number = Field(default=0.5, ge=0, le=1)  # nothing known: plain generation
    continuation: Number = Field(default=0.25, ge=0, le=1)  # a known prefix, the rest unknown
    span: Number = Field(default=0.25, ge=0, le=1)  # one unknown span, the frames around it known
    min_fraction: Number = Field(default=0.1, gt=0, lt=1)  # shortest prefix / span, of the item's valid frames
    max_fraction: Number = Field(default=0.9, gt=0, lt=1)  # longest prefix / span, of the item's valid frames


Beta = Annotated[Number, Field(ge=0, lt=1)]


class TrainingSpec(_Strict):
    batch_size: StrictInt = Field(default=8, ge=1, le=MAX_BATCH)  # items per optimizer step (all ranks, accumulation)
    lr: Number = Field(default=1e-4, gt=0, le=1)  # peak learning rate (AdamW)
    weight_decay: Number = Field(default=0.01, ge=0, le=1)
    betas: tuple[Beta, Beta] = Field(default=(0.9, 0.99), strict=False)  # AdamW betas (a JSON list of two)
    warmup_steps: StrictInt = Field(default=100, ge=0, le=MAX_STEPS)  # linear warm-up from 0 to lr
    max_steps: StrictInt = Field(default=10000, ge=1, le=MAX_STEPS)  # optimizer steps; cosine decay ends here
    min_lr_ratio: Number = Field(default=0.1, ge=0, le=1)  # the cosine ends at lr * min_lr_ratio
    grad_clip: Number = Field(default=1.0, ge=0, le=1e6)  # max global gradient norm (0: off)
    ema_decay: Number = Field(default=0.999, ge=0, lt=1)  # EMA of the weights; the exported model
    grad_accum: StrictInt = Field(default=1, ge=1, le=MAX_BATCH)  # micro-batches per optimizer step
    precision: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # see cuecraft.train.precision
    checkpoint_every: StrictInt = Field(default=1000, ge=0, le=MAX_STEPS)  # steps between checkpoints (0: at the end)
    keep_checkpoints: StrictInt = Field(default=2, ge=1, le=1000)  # newest checkpoints kept
    log_every: StrictInt = Field(default=10, ge=1, le=MAX_STEPS)  # steps between metrics lines
    demo_every: StrictInt = Field(default=0, ge=0, le=MAX_STEPS)  # steps between demos (0: none)
    demo_prompts: list[dict[StrictStr, Any]] = Field(default_factory=list,
                                                     max_length=MAX_DEMO_PROMPTS)  # metadata to sample for demos
    demo_steps: StrictInt = Field(default=25, ge=1, le=MAX_DEMO_STEPS)  # sampler steps of a demo
    demo_seconds: Number | None = Field(default=None, gt=0, le=MAX_SEGMENT_SECONDS)  # demo length (None: segment's)
    quality_every: StrictInt = Field(default=0, ge=0, le=MAX_STEPS)  # steps between sample-statistics lines (0: off)
    quality_samples: StrictInt = Field(default=4, ge=1, le=64)  # unconditional samples from fixed noises
    segment_seconds: Number = Field(default=4.0, gt=0, le=MAX_SEGMENT_SECONDS)  # training item length
    num_workers: StrictInt = Field(default=0, ge=0, le=MAX_WORKERS)  # DataLoader workers per rank
    seed: StrictInt = Field(default=0, ge=0, le=MAX_SEED)  # initialisation, data order, noise, dropout
    init_from: StrictStr | None = Field(default=None, max_length=MAX_PATH_CHARS)  # fine-tune: runs/NAME/model
    lora: LoraSpec | None = None  # LoRA adapters instead of full training (needs peft)
    compile: StrictBool = False  # torch.compile the backbone
    inpaint: InpaintSpec | None = None  # known-frame masks (backbone.inpaint only; None: the defaults there)


class _ModelSpec(_Strict):
    conditioning: dict[str, Any]
    representation: dict[str, Any]
    backbone: dict[str, Any]
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)


@dataclass(frozen=True)
class RepresentationSettings:
    kind: str  # "mel"
    options: Any  # MelOptions
    load: str | None  # a saved representation directory (stats, vocoder) used instead of fresh options
    fit_stats_items: int  # items whose log-mel statistics normalise a fresh representation (0: none)


@dataclass(frozen=True)
class ModelConfig:
    """A parsed model config: each block validated, not yet built (``build_model``)."""

    data: dict[str, Any]  # the mapping as given (saved with checkpoints)
    conditioning: LoadedConfig
    representation: RepresentationSettings
    backbone: Any  # DiTConfig
    objective: ObjectiveSpec
    training: TrainingSpec

    def with_training(self, **changes: Any) -> ModelConfig:
        """The config with training fields replaced (the CLI's --max-steps, --precision, --seed)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        training = {**self.data.get("training", {}), **changes}
        return parse_model_config({**self.data, "training": training})

    def fingerprint(self, *, ignore: tuple[str, ...] = ("max_steps",)) -> str:
        """A hash of the config minus the training fields in ``ignore`` (a resumed run may change those)."""
        data = json.loads(json.dumps(self.data))
        for name in ignore:
            data.get("training", {}).pop(name, None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


class ModelParts(NamedTuple):
    """What ``build_model`` makes: ``stack, representation, dit, objective = build_model(config)``."""

    stack: Any  # ConditioningStack
    representation: Any  # Representation
    dit: Any  # DiT
    objective: Any  # Objective


def _problems_of(error: ConfigError, prefix: str) -> list[str]:
    return [p if p.startswith(prefix) else f"{prefix}{p}" for p in error.problems]


def _is_dir(path: str) -> bool:
    """Whether ``path`` is a directory; False for a name the file system refuses (too long, a NUL)."""
    try:
        return len(path) <= MAX_PATH_CHARS and Path(path).expanduser().is_dir()
    except (OSError, ValueError, RuntimeError):
        return False


def _parse_representation(data: Mapping[str, Any]) -> tuple[RepresentationSettings | None, list[str]]:
    from cuecraft.models.representation.mel import MelOptions

    kind = data.get("type")
    if kind != "mel":
        return None, [f"representation.type: expected 'mel'; got {kind!r}"]
    fields = {f.name for f in dataclasses.fields(MelOptions)}
    problems = [f"representation.{key}: unknown key; valid keys: {', '.join([*REPRESENTATION_EXTRA, *fields])}"
                for key in data if key not in fields and key not in REPRESENTATION_EXTRA]
    load = data.get("load")
    if load is not None and not (isinstance(load, str) and _is_dir(load)):
        problems.append(f"representation.load: expected a saved representation directory; got {short_repr(load)}")
    items = data.get("fit_stats_items", 64)
    if isinstance(items, bool) or not isinstance(items, int) or not 0 <= items <= MAX_FIT_STATS_ITEMS:
        problems.append(f"representation.fit_stats_items: expected an integer in [0, {MAX_FIT_STATS_ITEMS:,}]; "
                        f"got {short_repr(items)}")
    options = None
    try:
        options = MelOptions(**{k: v for k, v in data.items() if k in fields})
    except ConfigError as error:
        problems += [p.replace("mel.", "representation.", 1) if p.startswith("mel.") else f"representation.{p}"
                     for p in error.problems]
    except (TypeError, ValueError) as error:
        problems.append(f"representation: {error}")
    if problems:
        return None, problems
    return RepresentationSettings("mel", options, load, items), []


def parse_model_config(source: str | Path | Mapping[str, Any]) -> ModelConfig:
    """Read and validate a model config (a JSON / YAML path or a mapping); every problem of every
    block is one line of the ConfigError, with its field path. Nothing is built."""
    from cuecraft.models.dit_config import DiTConfig

    data = read_file(source) if isinstance(source, (str, Path)) else source
    if not isinstance(data, Mapping):
        raise ConfigError(f"(top level): expected a mapping with conditioning, representation, backbone, "
                          f"objective and training; got {type(data).__name__}")
    data = json.loads(json.dumps(data))  # a plain, private copy (and JSON-serialisable, or an error below)
    problems: list[str] = []
    spec = None
    try:
        spec = _ModelSpec.model_validate(data)
    except ValidationError as error:
        problems += [f"{field_path(e['loc'])}: {e['msg']}; got {short_repr(e.get('input'))}" for e in error.errors()]
    conditioning = representation = backbone = None
    if isinstance(data.get("conditioning"), dict):
        try:
            conditioning = load_config(data["conditioning"])
        except ConfigError as error:
            problems += _problems_of(error, "conditioning.")
    if isinstance(data.get("representation"), dict):
        representation, found = _parse_representation(data["representation"])
        problems += found
    if isinstance(data.get("backbone"), dict):
        block = dict(data["backbone"])
        kind = block.pop("type", None)
        if kind != "dit":
            problems.append(f"backbone.type: expected 'dit'; got {kind!r}")
        try:
            backbone = DiTConfig.from_dict(block, path="backbone")
        except ConfigError as error:
            problems += error.problems
    if spec is not None:
        problems += _cross_field_problems(spec)
        if representation is not None:
            problems += _item_size_problems(spec.training, representation.options)
        if spec.training.inpaint is not None and backbone is not None and not backbone.inpaint:
            problems.append("training.inpaint: is set but backbone.inpaint is false; set backbone.inpaint true "
                            "(continuation and inpainting) or leave training.inpaint out")
    if problems or spec is None:
        raise ConfigError(problems)
    return ModelConfig(data, conditioning, representation, backbone, spec.objective, spec.training)


def _cross_field_problems(spec: _ModelSpec) -> list[str]:
    training = spec.training
    problems = []
    if training.warmup_steps > training.max_steps:
        problems.append(f"training.warmup_steps: {training.warmup_steps} is more than max_steps ({training.max_steps})")
    if training.batch_size % training.grad_accum:
        problems.append(f"training.batch_size: {training.batch_size} is not a multiple of grad_accum "
                        f"({training.grad_accum}); each micro-batch holds batch_size / grad_accum items")
    if training.demo_every and not training.demo_prompts:
        problems.append("training.demo_prompts: demo_every is set but there are no demo prompts (metadata objects)")
    inpaint = training.inpaint
    if inpaint is not None and abs(inpaint.none + inpaint.continuation + inpaint.span - 1.0) > 1e-6:
        problems.append(f"training.inpaint: none + continuation + span must sum to 1; got {inpaint.none:g} + "
                        f"{inpaint.continuation:g} + {inpaint.span:g} = "
                        f"{inpaint.none + inpaint.continuation + inpaint.span:g}")
    if inpaint is not None and inpaint.min_fraction > inpaint.max_fraction:
        problems.append(f"training.inpaint.min_fraction: {inpaint.min_fraction:g} is more than max_fraction "
                        f"({inpaint.max_fraction:g})")
    if spec.objective.timesteps == "uniform" and "timestep_std" in spec.objective.model_fields_set:
        problems.append("objective.timestep_std: only used with timesteps 'logit_normal'")
    return problems


def _item_size_problems(training: TrainingSpec, options: Any) -> list[str]:
    """A training item and a demo are at most MAX_ITEM_SAMPLES samples (seconds x rate x channels)."""
    problems = []
    per_second = options.sample_rate * options.channels
    for name in ("segment_seconds", "demo_seconds"):
        seconds = getattr(training, name)
        if seconds is not None and seconds * per_second > MAX_ITEM_SAMPLES:
            problems.append(f"training.{name}: {seconds:g} s x {options.sample_rate} Hz x {options.channels} "
                            f"channel(s) is {seconds * per_second:,.0f} samples; an item is at most "
                            f"{MAX_ITEM_SAMPLES:,} ({MAX_ITEM_SAMPLES / per_second:,.1f} s here)")
    return problems


def training_problems(config: ModelConfig) -> list[str]:
    """What ``cuecraft train`` and ``cuecraft config validate`` refuse beyond ``parse_model_config``.

    A patch wider than the token: with ``objective.output`` "target" (v or the velocity), a DiT
    whose token (``dim``) is narrower than its patch (``patch_size * latent_dim`` values) cannot
    carry the noise value by value, and what it cannot carry passes through the sampler as noise
    left in every sample (samples six to seven times rougher than the data; README, "Sample
    quality"). ``objective.output: "x0"`` is allowed with any patch: what a narrow token drops
    is then detail, not noise. Exported models trained before this rule still load and generate
    (``parse_model_config`` does not apply it); only new training is refused.
    """
    backbone, objective = config.backbone, config.objective
    values = backbone.latent_dim * backbone.patch_size
    if objective.output == "target" and values > backbone.dim:
        return [f"backbone.patch_size: a patch of {backbone.patch_size} frames x {backbone.latent_dim} channels = "
                f"{values} values is wider than the token (dim {backbone.dim}); with objective.output 'target' "
                "the values a token cannot carry stay noise in every sample. Use objective.output 'x0', "
                f"patch_size <= {max(1, backbone.dim // backbone.latent_dim)}, or dim >= {values}"]
    return []


def inpaint_options(config: ModelConfig) -> InpaintSpec | None:
    """The known-frame mask settings training uses: None when ``backbone.inpaint`` is false, else
    ``training.inpaint`` or its defaults."""
    if not config.backbone.inpaint:
        return None
    return config.training.inpaint or InpaintSpec()


def timestep_sampler(config: ModelConfig):
    """The training timestep sampler of ``config`` (cuecraft.models.objectives)."""
    from cuecraft.models.objectives import get_timestep_sampler

    spec = config.objective
    if spec.timesteps == "uniform":
        return get_timestep_sampler("uniform")
    return get_timestep_sampler("logit_normal", mean=float(spec.timestep_mean), std=float(spec.timestep_std))


def _backbone_widths(backbone: Any) -> BackboneSpec:
    return BackboneSpec(cross_attention_dim=backbone.cross_attention_dim, global_dim=backbone.global_dim,
                        prepend_dim=backbone.prepend_dim, input_concat_dim=backbone.input_concat_dim or None)


def build_representation(settings: RepresentationSettings):
    """A fresh MelRepresentation from the options, or the saved one of ``settings.load``."""
    from cuecraft.models.representation.base import load_representation
    from cuecraft.models.representation.mel import MelRepresentation

    if settings.load is not None:
        return load_representation(Path(settings.load).expanduser())
    return MelRepresentation(settings.options)


def demo_problems(stack: Any, prompts: list[dict[str, Any]]) -> list[str]:
    """``training.demo_prompts`` the stack cannot condition on, checked when the model is built (the
    first demo may be hours into a run): each prompt is tokenized as a demo tokenizes it (every
    value checked), under a forked random state."""
    from cuecraft.errors import CuecraftError

    problems = []
    for index, prompt in enumerate(prompts):
        try:
            with torch.random.fork_rng(devices=[]):
                stack.tokenize([prompt])
        except CuecraftError as error:
            problems.append(f"training.demo_prompts[{index}]: {shorten(str(error), 300)}")
    return problems


def build_model(config: ModelConfig | str | Path | Mapping[str, Any], *, seed: int | None = None,
                dit_device: str | None = None) -> ModelParts:
    """Build ``(stack, representation, dit, objective)`` and check them against each other.

    ``seed`` (default: ``training.seed``) makes the random initialisation of the conditioners and
    the DiT reproducible without touching the global random state. Every problem found is one line
    of the ConfigError: conditioning paths under ``conditioning.``, widths under ``backbone.``,
    demo prompts the stack cannot condition on under ``training.demo_prompts[i]``.
    ``dit_device="meta"`` builds the DiT without allocating its weights (``config validate``
    counts them).
    """
    from cuecraft.config.build import build_stack, routing_of
    from cuecraft.models.dit import DiT
    from cuecraft.models.objectives import get_objective

    config = config if isinstance(config, ModelConfig) else parse_model_config(config)
    seed = config.training.seed if seed is None else seed
    loaded = config.conditioning
    problems = []
    if loaded.config.backbone != BackboneSpec():
        problems.append("conditioning.backbone: leave it out of a model config; the widths come from the "
                        "backbone block")
    backbone = config.backbone
    try:
        backbone.check_routing(routing_of(loaded.config))
    except ConfigError as error:
        problems += [p if p.startswith("backbone.") else f"conditioning.{p}" for p in error.problems]
    representation = None
    try:
        representation = build_representation(config.representation)
    except Exception as error:  # a WeightsError / ConfigError from a saved representation
        problems.append(f"representation.load: {error}")
    if representation is not None and representation.latent_dim != backbone.latent_dim:
        problems.append(f"backbone.latent_dim: is {backbone.latent_dim}, but the representation gives "
                        f"{representation.latent_dim} channels per frame (channels x n_mels)")
    if problems:
        raise ConfigError(problems)
    checked = LoadedConfig(loaded.config.model_copy(update={"backbone": _backbone_widths(backbone)}),
                           loaded.translation)
    try:
        stack = build_stack(checked, seed=seed)
    except ConfigError as error:
        raise ConfigError([p if p.startswith("backbone.") else f"conditioning.{p}" for p in error.problems]) from None
    problems = demo_problems(stack, config.training.demo_prompts)
    if problems:
        raise ConfigError(problems)
    rng = torch.random.fork_rng() if seed is not None else nullcontext()
    with rng, (torch.device(dit_device) if dit_device is not None else nullcontext()):
        if seed is not None:
            torch.manual_seed(seed + 1)
        dit = DiT(backbone)
    return ModelParts(stack, representation, dit, get_objective(config.objective.type, config.objective.output))
