"""``cuecraft condition``: condition a batch of metadata and print one row per condition; with
``--out FILE.safetensors``, also write every condition's embedding and mask."""

from __future__ import annotations

import argparse
import json
import math
import os

from cuecraft.cli._shared import _format_table, _number, _quiet_model_loading, check_output_file
from cuecraft.cli.options import add_config_arguments
from cuecraft.errors import CuecraftError

CONDITIONS_FORMAT = "cuecraft-conditions"  # the safetensors metadata of --out files
CONDITIONS_VERSION = 1


def write_conditions(path: str, conditions: dict, *, config: str, seed: int) -> None:
    """Write ``{name: Condition}`` to a safetensors file, atomically: ``<name>.embedding`` float
    [B, T, D] and ``<name>.mask`` bool [B, T] per condition; the header's metadata names the
    format, its version, the config and the seed."""
    from safetensors.torch import save

    from cuecraft._files import atomic_write

    tensors = {}
    for name, (embedding, mask) in conditions.items():
        tensors[f"{name}.embedding"] = embedding.detach().cpu().contiguous()
        tensors[f"{name}.mask"] = mask.detach().cpu().contiguous()
    data = save(tensors, metadata={"format": CONDITIONS_FORMAT, "version": str(CONDITIONS_VERSION),
                                   "config": config, "seed": str(seed)})
    with atomic_write(path) as handle:
        handle.write(data)


def run_condition(args: argparse.Namespace) -> int:
    import torch

    from cuecraft.cli.options import config_source, resolve_audio
    from cuecraft.config import DEFAULT_CONFIG, DEFAULT_METADATA, build_stack, load_config, read_file

    if args.out is not None:
        check_output_file(args.out, (".safetensors",))
    config_path = config_source(args.config, DEFAULT_CONFIG)
    metadata_path = args.metadata or DEFAULT_METADATA
    metadata = read_file(metadata_path)
    if not isinstance(metadata, list):
        raise CuecraftError(f"{metadata_path}: expected a list of metadata objects; got {type(metadata).__name__}")
    _quiet_model_loading()
    stack = build_stack(load_config(config_path, overrides=args.overrides), seed=args.seed)
    kinds = {name: conditioner.kind for name, conditioner in stack.provider.conditioners.items()}
    if any("self_wav" in route.keys for route in stack.provider.routes if route.kind == "symbolic"):
        kinds.setdefault("self_wav", "wav")  # beats tracked from the item's audio: read the file it names
    metadata = resolve_audio(metadata, kinds, os.path.dirname(os.path.abspath(metadata_path)))
    weights = None
    if args.weights:
        from cuecraft.config.weights import load_peer_weights

        try:
            weights = load_peer_weights(stack.provider, args.weights)
        except CuecraftError:
            raise
        except Exception as error:  # noqa: BLE001 - torch's refusal of a pickle with code in it, and the like
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CuecraftError(f"--weights {args.weights}: refused ({type(error).__name__}: {first[:200]}); "
                                "a torch file is read with weights_only=True, so one that holds code is not "
                                "loaded; give .safetensors, or a checkpoint of tensors only") from None
    generator = torch.Generator().manual_seed(args.seed)
    with torch.inference_mode():
        conditions = stack.condition(metadata, train=args.train, generator=generator)
        fused = stack.fuse(conditions)
    if args.out is not None:  # every check has passed: nothing is written on an error
        write_conditions(args.out, conditions, config=str(config_path), seed=args.seed)
    rows = stack.summarize(conditions)
    outputs = {
        name: tuple(getattr(fused, name).shape)
        for name in ("cross_attention_src", "cross_attention_mask", "prepend_cond", "prepend_mask", "global_cond")
        if getattr(fused, name) is not None
    }
    if args.json:
        print(json.dumps({
            "config": str(config_path), "metadata": str(metadata_path), "batch": len(metadata),
            "conditions": [
                {**row.__dict__, "mean": None if math.isnan(row.mean) else row.mean,
                 "std": None if math.isnan(row.std) else row.std}
                for row in rows
            ],
            "fused": {name: list(shape) for name, shape in outputs.items()},
            **({"out": args.out} if args.out is not None else {}),
        }, indent=2))
        return 0
    print(f"config:   {config_path}")
    print(f"metadata: {metadata_path} ({len(metadata)} items{', training dropout on' if args.train else ''})")
    if weights is None:
        print(f"weights:  pretrained encoders as the config names them; all other weights random (seed {args.seed})\n")
    else:
        print(f"weights:  {args.weights}: {weights}\n")
    print(_format_table(
        ["condition", "type", "roles", "shape [B, T, D]", "unmasked", "mean", "std"],
        [[r.name, r.type, "+".join(r.roles), str(list(r.shape)), f"{r.unmasked:.0%}", _number(r.mean), _number(r.std).lstrip("+")]
         for r in rows],
    ))
    print("\nfused (what the backbone reads):")
    for name, shape in outputs.items():
        print(f"  {name:<22} {list(shape)}")
    if args.out is not None:
        print(f"\nwrote {args.out} (<id>.embedding and <id>.mask of {len(conditions)} conditions)")
    return 0


def add_parser(commands: argparse._SubParsersAction) -> None:
    condition = commands.add_parser(
        "condition",
        help="condition a batch of metadata and print one row per condition",
        description="Build a conditioning stack from a config, condition a batch of metadata and print, "
                    "per condition, its type, fuser roles, embedding shape, share of unmasked "
                    "positions, and the mean and std over unmasked positions. Without options it runs "
                    "the shipped example config on the shipped example metadata.",
    )
    add_config_arguments(condition, positional=False, required=False, default_help="; default: the shipped example")
    condition.add_argument("--metadata", metavar="FILE", help="JSON or YAML list of metadata objects "
                           "(default: the shipped examples); a wav or joint-embed condition may name an audio "
                           "file, relative to this file: \"self_wav\": \"song.flac\" or {\"path\": ..., "
                           "\"seek_time\": S, \"duration\": S}")
    condition.add_argument("--weights", metavar="CKPT", help="load the conditioners' trained weights from a "
                           "stable-audio-tools or AudioCraft checkpoint (.safetensors, .ckpt, .th); strict")
    condition.add_argument("--seed", type=int, default=0, help="seed for weight initialisation and dropout (default 0)")
    condition.add_argument("--train", action="store_true", help="apply the config's training dropouts")
    condition.add_argument("--json", action="store_true", help="print the result as JSON")
    condition.add_argument("--out", metavar="FILE.safetensors", help="also write every condition's embedding "
                           "[B, T, D] and mask [B, T] as tensors <id>.embedding and <id>.mask (atomically; "
                           "nothing is written when the input has a problem)")
    condition.set_defaults(run=run_condition)
