"""``train``: the training loop of ``cuecraft train`` (one process, or one rank under torchrun).

1. Check everything before training: the config (``parse_model_config`` / ``build_model``), the
   data folder (``open_dataset``: enough items for a batch), the run directory and, with
   ``resume``, its checkpoint (readable, complete, made with this config).
2. Build the stack, the representation (its statistics fitted on the data, or loaded), the DiT,
   AdamW over the trainable parameters, the EMA, the precision (``choose_precision``).
3. Each optimizer step: ``grad_accum`` micro-batches (``cuecraft.train.data``: the same global
   batches for any world size); each item's timestep and noise come from its own generator,
   seeded by (seed, step, item), so a resumed or distributed run draws exactly the same;
   frames = representation.encode(wav), the padding mask downsampled to frames; the model
   predicts the objective's target under autocast (with ``backbone.inpaint``, given each item's
   known frames, ``cuecraft.train.inpaint``); masked MSE; gradients clipped; AdamW at the
   warm-up + cosine rate; EMA update.
4. Rank 0 writes: metrics JSONL every ``log_every`` steps, checkpoints every ``checkpoint_every``
   steps and when SIGINT / SIGTERM arrives (handlers installed for the call only), demos every
   ``demo_every`` steps, and at the end the exported EMA model (``runs/NAME/model``).
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from cuecraft._files import atomic_write
from cuecraft.config.model import (ModelConfig, build_model, inpaint_options, parse_model_config, timestep_sampler,
                                   training_problems)
from cuecraft.data.collate import AudioCollate
from cuecraft.data.segments import stable_seed
from cuecraft.errors import CheckpointError, ConfigError, DatasetError, TrainingError
from cuecraft.train import checkpoint as ckpt
from cuecraft.train.data import BatchPlan, StepBatches, epoch_loader, frame_mask
from cuecraft.train.distributed import all_reduce_mean, any_rank, barrier, start_distributed, stop_distributed
from cuecraft.train.ema import EMA
from cuecraft.train.inpaint import item_known
from cuecraft.train.module import DiffusionModule, load_trainable, trainable_shapes, trainable_state
from cuecraft.train.precision import Precision, choose_precision, cpu_bf16_flags
from cuecraft.train.schedule import learning_rate
from cuecraft.train.setup import open_training_data, precision_probe, prepare_module, prepare_representation

Log = Callable[[str], None]


@dataclass
class TrainResult:
    out: Path
    step: int  # optimizer steps done
    interrupted: bool  # stopped by SIGINT / SIGTERM (a checkpoint was written)
    precision: str
    losses: list[float] = field(default_factory=list)  # every step's loss (mean over ranks)
    model_dir: Path | None = None  # the exported EMA model (rank 0)


def _stderr_log(message: str) -> None:
    print(f"cuecraft train: {message}", file=sys.stderr, flush=True)


class _StopFlag:
    """SIGINT / SIGTERM set the flag (the loop checkpoints and returns); handlers restored on exit."""

    def __init__(self) -> None:
        self.raised: int | None = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._saved[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame: Any) -> None:
        self.raised = number

    def __exit__(self, *exc: Any) -> None:
        for number, handler in self._saved.items():
            signal.signal(number, handler)


def item_noise(batch: Any, seed: int, step: int, shape: tuple[int, int], sampler: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(t [B], eps [B, D, L]) with each item's draw from its own generator (seed, step, item)."""
    ts, noises = [], []
    for path, seek in zip(batch.paths, batch.seek_times):
        generator = torch.Generator().manual_seed(stable_seed(seed, "noise", step, path, round(seek, 6)))
        ts.append(sampler(1, generator=generator))
        noises.append(torch.randn(shape, generator=generator))
    return torch.cat(ts), torch.stack(noises)


def _metrics_file(out: Path, resume_step: int | None, name: str = "metrics.jsonl") -> Path:
    """A per-step JSONL of the run (``metrics.jsonl``, ``quality.jsonl``), cut back to the lines of
    steps <= ``resume_step`` when resuming, removed when starting afresh."""
    path = out / name
    if resume_step is not None and path.exists():
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["step"] <= resume_step:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a crash
        with atomic_write(path, "w", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in kept))
    elif resume_step is None and path.exists():
        path.unlink()
    return path


def train(config: ModelConfig | str | os.PathLike[str] | Mapping[str, Any], data: str | os.PathLike[str],
          out: str | os.PathLike[str], *, max_steps: int | None = None, resume: bool = False,
          precision: str | None = None, seed: int | None = None, device: str | None = None,
          progress: bool | None = None, log: Log | None = None,
          on_step: Callable[[int, dict], None] | None = None) -> TrainResult:
    """Train the model of ``config`` on ``data`` into the run directory ``out`` (see the module
    docstring). ``max_steps`` / ``precision`` / ``seed`` override the config's training block;
    ``progress``: a tqdm bar (None: when stderr is a terminal); ``on_step(step, metrics)`` after
    each optimizer step. Bad input raises ConfigError / DatasetError / CheckpointError before the
    first step."""
    config = config if isinstance(config, ModelConfig) else parse_model_config(
        config if isinstance(config, Mapping) else Path(config))
    config = config.with_training(max_steps=max_steps, precision=precision, seed=seed)
    if training_problems(config):
        raise ConfigError(training_problems(config))
    training = config.training
    out = Path(out)
    context = start_distributed(device)
    say: Log = (log or _stderr_log) if context.is_main else (lambda message: None)
    runner = forward = sync = prediction = loss = None
    try:
        # 1. everything checked before training
        resumed = None
        if resume:
            if ckpt.latest_checkpoint(out) is None:
                raise CheckpointError(f"{out}: --resume given but the run has no checkpoint "
                                      f"({ckpt.checkpoint_dir(out) / ckpt.LATEST} is missing)")
            resumed = ckpt.load_checkpoint(out)
            if resumed.state.get("fingerprint") != config.fingerprint():
                old = resumed.state.get("config", {})
                changed = sorted(k for k in set(old) | set(config.data) if old.get(k) != config.data.get(k))
                raise CheckpointError(f"{resumed.path / ckpt.STATE_FILE}: was written with another config (differs "
                                      f"in: {', '.join(changed)}); resume with the config it was made with "
                                      "(only training.max_steps may change)")
        elif ckpt.checkpoint_dir(out).exists() and ckpt.latest_checkpoint(out) is not None:
            raise CheckpointError(f"{out}: already holds a run (checkpoints/latest); pass --resume to continue "
                                  "it or choose another --out")
        plan = BatchPlan(training.batch_size, training.grad_accum, context.world_size, context.rank)
        plan.check()
        stack, representation, dit, objective = build_model(config)
        dataset = open_training_data(data, config, representation, context)
        representation = prepare_representation(representation, config, dataset, out, resumed, context, say)
        module = prepare_module(DiffusionModule(stack, dit), config, say).to(context.device)
        representation.to(context.device)
        sampler = timestep_sampler(config)
        inpainting = inpaint_options(config)  # None: the DiT has no known-frame channels
        collate = AudioCollate(stack, train=True, seed=training.seed)
        chosen = _choose_precision(training.precision, context, module, representation, objective, dataset,
                                   collate, plan, training.seed, inpainting)
        say(f"precision: {chosen.name} ({chosen.reason})")
        parameters = [p for p in module.parameters() if p.requires_grad]
        say(f"model: {sum(p.numel() for p in parameters):,} trainable parameters "
            f"({sum(p.numel() for p in module.parameters()):,} in all); world size {context.world_size}, "
            f"{plan.micro} items per rank and micro-batch")
        optimizer = torch.optim.AdamW(parameters, lr=training.lr, betas=tuple(training.betas),
                                      weight_decay=training.weight_decay)
        ema = EMA(module, training.ema_decay)
        scaler = chosen.scaler()
        step = 0
        if resumed is not None:
            shapes = trainable_shapes(module)
            ckpt.check_tensors(resumed.path / "model.safetensors", resumed.model, shapes)
            ckpt.check_tensors(resumed.path / "ema.safetensors", resumed.ema, shapes)
            load_trainable(module, resumed.model)
            ema.load_state_dict(resumed.ema, resumed.state.get("ema_updates", 0))
            try:
                optimizer.load_state_dict(ckpt.unflatten_optimizer(resumed.optimizer, resumed.state["optimizer"]))
            except (ValueError, KeyError, RuntimeError) as error:
                raise CheckpointError(f"{resumed.path / 'optimizer.safetensors'}: does not fit the optimizer "
                                      f"({error})") from None
            if scaler is not None and resumed.state.get("scaler"):
                scaler.load_state_dict(resumed.state["scaler"])
            ckpt.set_rng_state(resumed.state["rng"])
            step = resumed.step
            say(f"resumed from {resumed.path} at step {step}")
        runner = module
        if context.distributed:
            runner = torch.nn.parallel.DistributedDataParallel(
                module, device_ids=[context.device.index] if context.device.type == "cuda" else None)
            # No find_unused_parameters: every trainable parameter is in every step's graph (the
            # provider runs every conditioner's projection, nulls included; the DiT has no branches),
            # so the extra graph traversal is not needed (tests/train/test_ddp.py checks it).
        forward = torch.compile(runner) if training.compile else runner
        metrics_path = _metrics_file(out, step if resumed else None) if context.is_main else None
        if context.is_main:
            _metrics_file(out, step if resumed else None, "quality.jsonl")
        map_style = not isinstance(dataset, torch.utils.data.IterableDataset)
        steps_per_epoch = StepBatches.steps_per_epoch(len(dataset), training.batch_size) if map_style else None
        position = (resumed.state.get("data", {}) if resumed else {}) if not map_style else {}
        epoch = step // steps_per_epoch if map_style else int(position.get("epoch", 0))
        offset = step % steps_per_epoch if map_style else int(position.get("batch", 0))
        bar = _progress(progress, context, training.max_steps, step)
        result = TrainResult(out, step, False, chosen.name)
        window_start, window_items = time.perf_counter(), 0

        def save(at: int) -> None:
            if context.is_main:
                state = {"config": config.data, "fingerprint": config.fingerprint(), "rng": ckpt.rng_state(),
                         "data": {"epoch": epoch, "batch": offset}, "ema_updates": ema.updates,
                         "scaler": scaler.state_dict() if scaler is not None else None,
                         "world_size": context.world_size, "precision": chosen.name}
                path = ckpt.save_checkpoint(out, at, model=trainable_state(module), ema=ema.state_dict(),
                                            optimizer=optimizer.state_dict(), state=state,
                                            keep=training.keep_checkpoints)
                say(f"checkpoint: {path}")
            barrier(context)

        module.train()
        with _StopFlag() as stop:
            while step < training.max_steps:
                batches = iter(epoch_loader(dataset, collate, plan, seed=training.seed, epoch=epoch, start=offset,
                                            num_workers=training.num_workers))
                skip = offset if not map_style else 0
                for _ in range(skip * plan.grad_accum):
                    next(batches, None)
                exhausted = False
                while step < training.max_steps:
                    micro = []
                    for _ in range(plan.grad_accum):
                        batch = next(batches, None)
                        if batch is None:
                            exhausted = True
                            break
                        micro.append(batch)
                    if exhausted:
                        break
                    lr = learning_rate(step, lr=training.lr, warmup_steps=training.warmup_steps,
                                       max_steps=training.max_steps, min_lr_ratio=training.min_lr_ratio)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    optimizer.zero_grad(set_to_none=True)
                    total = torch.zeros((), device=context.device)
                    for a, batch in enumerate(micro):
                        batch = batch.to(context.device)
                        with torch.no_grad():
                            x0 = representation.encode(batch.wav)  # [B, D, L]
                            mask = frame_mask(batch.padding_mask, x0.shape[-1], representation.hop)
                        t, eps = item_noise(batch, training.seed, step, tuple(x0.shape[1:]), sampler)
                        t, eps = t.to(context.device), eps.to(context.device)
                        known = None if inpainting is None else item_known(batch, training.seed, step, x0, mask,
                                                                           inpainting)
                        x_t, target = objective.noise(x0, eps, t), objective.target(x0, eps, t)
                        sync = runner.no_sync() if context.distributed and a < len(micro) - 1 else nullcontext()
                        with sync:
                            with chosen.autocast():
                                prediction = forward(x_t, t, batch.tokens, mask, known)
                            loss = objective.loss(prediction.float(), target, mask, t) / len(micro)
                            (scaler.scale(loss) if scaler is not None else loss).backward()
                        total += loss.detach()
                    if scaler is not None:
                        scaler.unscale_(optimizer)
                    norm = torch.nn.utils.clip_grad_norm_(parameters, training.grad_clip if training.grad_clip > 0
                                                          else float("inf"))
                    _check_finite(total, norm, scaler is not None, step + 1, context, training)
                    if scaler is not None:
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        optimizer.step()
                    ema.update(module)
                    step += 1
                    offset += 1
                    window_items += training.batch_size
                    loss_value = float(all_reduce_mean(total, context))
                    result.losses.append(loss_value)
                    metrics = {"step": step, "epoch": epoch, "loss": loss_value, "lr": lr, "grad_norm": float(norm)}
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
                    if step % training.log_every == 0 or step == training.max_steps:
                        elapsed = time.perf_counter() - window_start
                        metrics["items_per_s"] = window_items / max(elapsed, 1e-9)
                        window_start, window_items = time.perf_counter(), 0
                        if metrics_path is not None:
                            with open(metrics_path, "a", encoding="utf-8") as handle:
                                handle.write(json.dumps(metrics) + "\n")
                        if bar is not None:
                            bar.set_postfix(loss=f"{loss_value:.4f}", items_s=f"{metrics['items_per_s']:.1f}")
                    if on_step is not None:
                        on_step(step, metrics)
                    stopping = any_rank(stop.raised is not None, context)
                    if stopping or (training.checkpoint_every and step % training.checkpoint_every == 0) \
                            or step == training.max_steps:
                        save(step)
                    if training.quality_every and step % training.quality_every == 0 and context.is_main:
                        _quality(out, step, stack, module, ema, objective, x0, config, say)
                    if training.demo_every and (step % training.demo_every == 0) and context.is_main:
                        _demo(out, step, stack, module, ema, objective, representation, config, context, say)
                    if stopping:
                        result.interrupted = True
                        say(f"stopped by signal {stop.raised} at step {step}; resume with --resume")
                        break
                if result.interrupted:
                    break
                if exhausted:
                    if offset == 0:
                        raise DatasetError(f"{data}: an epoch gave no full batch of {plan.micro} items per rank")
                    epoch, offset = epoch + 1, 0
        if bar is not None:
            bar.close()
        result.step = step
        if context.is_main:
            result.model_dir = _export(out, step, config, module, ema, representation)
            say(f"model (EMA weights): {result.model_dir}")
        barrier(context)
        return result
    finally:
        # DDP sits in a reference cycle (its reducer's hooks): without this the cyclic GC frees it
        # whenever it runs, possibly after the process group is gone or during interpreter exit,
        # where gloo's threads still hold work and the process aborts ("terminate called without
        # an active exception", SIGABRT). Free it now, while the group is alive, then leave it.
        runner = forward = sync = prediction = loss = None  # every reference to the DDP wrapper
        gc.collect()
        stop_distributed(context)


def _choose_precision(requested: str, context: Any, module: DiffusionModule, representation: Any, objective: Any,
                      dataset: Any, collate: AudioCollate, plan: BatchPlan, seed: int,
                      inpainting: Any = None) -> Precision:
    """``choose_precision``, deciding ``auto`` on a CPU with bfloat16 units by timing a forward +
    backward of this model on its first batch in both precisions; under DDP every rank takes
    bfloat16 only if all measured it faster."""
    probe = None
    if requested == "auto" and context.device.type == "cpu" and cpu_bf16_flags():
        with torch.random.fork_rng(devices=[]):
            first = next(iter(epoch_loader(dataset, collate, plan, seed=seed, epoch=0, start=0, num_workers=0)), None)
        if first is not None:
            probe = precision_probe(module, representation, objective, first, context.device, inpainting)
    chosen = choose_precision(requested, context.device, probe=probe)
    if requested == "auto" and any_rank(chosen.name == "float32", context) and chosen.name != "float32":
        chosen = Precision("float32", chosen.device_type, f"auto: another rank measured float32 faster ({chosen.reason} "
                                                           "here); every rank runs float32")
    return chosen


def _progress(progress: bool | None, context: Any, total: int, initial: int):
    show = sys.stderr.isatty() if progress is None else progress
    if not show or not context.is_main:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr)


def _check_finite(total: torch.Tensor, norm: torch.Tensor, scaled: bool, step: int, context: Any,
                  training: Any) -> None:
    """TrainingError, before the optimizer step, when this step's loss (on any rank) or, without a
    gradient scaler (which skips such steps itself), its gradient norm is not finite: a diverged
    run stops with nothing exported instead of writing a model of NaN weights."""
    bad_loss = any_rank(not bool(torch.isfinite(total).all()), context)
    if bad_loss or (not scaled and not bool(torch.isfinite(norm).all())):
        what = f"loss is {float(total):g}" if bad_loss else f"gradient norm is {float(norm):g}"
        raise TrainingError(f"step {step}: the training {what}; the model diverged and the run stops with nothing "
                            f"exported (the checkpoints written before this step are kept). Start again with a "
                            f"lower training.lr (now {training.lr:g}) or training.grad_clip > 0 "
                            f"(now {training.grad_clip:g})")


def _export(out: Path, step: int, config: ModelConfig, module: DiffusionModule, ema: EMA, representation: Any) -> Path:
    from cuecraft.train.export import export_model

    averaged = ema.state_dict()
    broken = next((name for name, tensor in averaged.items()
                   if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())), None)
    if broken is not None:
        raise TrainingError(f"step {step}: the averaged weight {broken} is not finite; nothing is exported")
    if config.training.lora is not None:
        return export_model(out / "model", config_data=config.data, step=step, weights=averaged,
                            representation=representation, lora_dit=module.dit,
                            lora_weights={k.removeprefix("dit."): v for k, v in averaged.items()})
    return export_model(out / "model", config_data=config.data, step=step, weights=averaged,
                        representation=representation)


def _quality(out: Path, step: int, stack: Any, module: DiffusionModule, ema: EMA, objective: Any,
             data: torch.Tensor, config: ModelConfig, say: Log) -> None:
    """Sample ``quality_samples`` unconditional latents (EMA weights, fixed noises, no guidance,
    25 dpmpp_2m steps, one training segment long) and append their statistics against the last
    batch's latents ``data`` [B, D, L] to ``out/quality.jsonl`` (``cuecraft.eval.sample_stats``)."""
    from cuecraft.eval.sample_stats import sample_quality
    from cuecraft.train.demos import sample_latents

    training = config.training
    was_training = module.training
    module.eval()
    try:
        with ema.applied(module):
            null = {key: None for route in stack.provider.routes for key in route.keys}  # every condition's null
            latents = sample_latents(stack, module.dit, objective, [null] * training.quality_samples,
                                     frames=data.shape[-1], steps=25, seed=training.seed, device=data.device,
                                     guidance_scale=1.0)
    finally:
        module.train(was_training)
    summary = {"step": step, **sample_quality(latents.float().cpu(), data.float().cpu()).summary()}
    with open(out / "quality.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(summary) + "\n")
    say(f"samples at step {step}: roughness x{summary['roughness_ratio']:.2f}, std x{summary['std_ratio']:.2f} "
        "of the data's")


def _demo(out: Path, step: int, stack: Any, module: DiffusionModule, ema: EMA, objective: Any,
          representation: Any, config: ModelConfig, context: Any, say: Log) -> None:
    from cuecraft.train.demos import sample_latents, write_demos
    from cuecraft.train.media import png_backend

    training = config.training
    seconds = training.demo_seconds or training.segment_seconds
    frames = representation.frames(max(1, round(seconds * representation.sample_rate)))
    was_training = module.training
    module.eval()
    try:
        with ema.applied(module):
            latents = sample_latents(stack, module.dit, objective, list(training.demo_prompts), frames=frames,
                                     steps=training.demo_steps, seed=training.seed, device=context.device)
        paths = write_demos(out / "demos", step, latents, representation)
        say(f"demos: {len(paths)} WAV + PNG (PNG by {png_backend()}) in {out / 'demos'}")
    finally:
        module.train(was_training)
