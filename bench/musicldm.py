"""Benchmark: cuecraft's MusicLDM pipeline against diffusers' on the same random components.

Run:  .venv/bin/python bench/musicldm.py [--quick] [--compile] [--out PATH]

Two sizes, both with MusicLDM's shapes around the UNet (8 latent channels; a VAE with 3 levels,
scale factor 4; a 64-mel HiFi-GAN upsampling 160x to 16 kHz; CLAP with a 512-wide projection,
a tokenizer padding to 512 tokens and a 48 kHz, 10 s feature extractor), random weights, built in
code with fixed seeds:
- ``musicldm-geometry``: MusicLDM's UNet layout (4 levels, attention in the lower 3) with tiny
  widths (32, 64, 96, 160) instead of (128, 256, 384, 640);
- ``unet-64-128-256``: a 3-level UNet with blocks (64, 128, 256).
Workload: one prompt with a negative prompt, guidance 2.5, 10 DDIM steps, 5 s of audio, 2
waveforms ranked by CLAP. Modes: diffusers' (deprecated) MusicLDMPipeline, with its text call
adapted to transformers 5; cuecraft exact (the default); cuecraft fast bf16 (bfloat16 autocast of
the UNet, VAE and vocoder, forced); cuecraft fast auto (what ``set_fast_mode()`` picks for this
processor: float32 where no reduced precision is faster; the CPU's capability and matrix units are
printed beside the table); with --compile also fast + torch.compile of the UNet (minutes to compile).
Modes run in interleaved rounds (a warm-up round, then 5, each starting with the next mode), so
that load from other processes on the machine falls on all of them alike. Per stage (text, UNet loop, VAE, vocoder, ranking) the
median over the timed rounds, the total, the speed-up over diffusers, and each mode's deviation
from cuecraft exact (max |difference| and relative L2 error of the waveforms). Prints a table and
writes bench/results/musicldm.json.
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import platform
import statistics
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' tiny tokenizer

from _common import RESULTS, median_seconds, print_table, write_json, progress  # isort: skip

import cuecraft  # noqa: E402
from cuecraft.pipelines import MusicLDMPipeline  # noqa: E402
from cuecraft.pipelines.precision import choose_precision, cpu_capability, cpu_units  # noqa: E402
from tests.tiny_models import bpe_roberta_tokenizer  # noqa: E402

SIZES = {"musicldm-geometry": (32, 64, 96, 160), "unet-64-128-256": (64, 128, 256)}
WORKLOAD = dict(audio_length_in_s=5.0, num_inference_steps=10, guidance_scale=2.5, negative_prompt="low quality, noise",
                num_waveforms_per_prompt=2)
PROMPT = "fast techno with deep bass and bright synths"
STAGES = ("text", "unet loop", "vae", "vocoder", "ranking")


def build_components(unet_blocks: tuple[int, ...], seed: int = 0) -> dict[str, Any]:
    """Random MusicLDM components with MusicLDM's shapes and the given UNet widths."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, SpeechT5HifiGan, SpeechT5HifiGanConfig

    levels = len(unet_blocks)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=unet_blocks, layers_per_block=2, sample_size=256, in_channels=8, out_channels=8,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (levels - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (levels - 1) + ("UpBlock2D",), attention_head_dim=8,
        cross_attention_dim=unet_blocks, class_embed_type="simple_projection",
        projection_class_embeddings_input_dim=512, class_embeddings_concat=True)
    scheduler = DDIMScheduler(beta_start=0.0015, beta_end=0.0195, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False)
    vae = AutoencoderKL(block_out_channels=[32, 64, 128], in_channels=1, out_channels=1, latent_channels=8,
                        down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3)
    tokenizer = bpe_roberta_tokenizer(model_max_length=512)
    clap = ClapModel(ClapConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=128, max_position_embeddings=514, pad_token_id=1, projection_dim=512),
        audio_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=[2, 2], depths=[1, 1],
                          patch_embeds_hidden_size=16, spec_size=256, num_mel_bins=64, window_size=8,
                          patch_stride=(4, 4), patch_size=4, projection_dim=512),
        projection_dim=512))
    extractor = ClapFeatureExtractor(feature_size=64, sampling_rate=48000, hop_length=480, fft_window_size=1024,
                                     max_length_s=10, truncation="rand_trunc", frequency_min=50, frequency_max=14000)
    vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(
        model_in_dim=64, sampling_rate=16000, upsample_initial_channel=64, upsample_rates=[5, 4, 2, 2, 2],
        upsample_kernel_sizes=[16, 16, 8, 4, 4], resblock_kernel_sizes=[3, 7, 11],
        resblock_dilation_sizes=[[1, 3, 5]] * 3, normalize_before=False, initializer_range=0.1))
    return {"vae": vae.eval(), "text_encoder": clap.eval(), "tokenizer": tokenizer, "feature_extractor": extractor,
            "unet": unet.eval(), "scheduler": scheduler, "vocoder": vocoder.eval()}


class StageTimer:
    """Wraps methods so that every call adds its wall time to a stage; ``runs`` keeps one
    ``{stage: seconds}`` per pipeline call, the first of which (the warm-up) ``medians`` skips."""

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self.runs: list[dict[str, float]] = []
        self.last: Any = None  # the last call's result

    def wrap(self, owner: Any, method: str, stage: str) -> None:
        original = getattr(owner, method)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.current[stage] += time.perf_counter() - start

        setattr(owner, method, timed)

    def call(self, fn: Any) -> Any:
        self.current = defaultdict(float)
        start = time.perf_counter()
        result = fn()
        total = time.perf_counter() - start
        self.runs.append({**self.current, "total": total})
        self.last = result
        return result

    def medians(self) -> dict[str, float]:
        runs = self.runs[1:] if len(self.runs) > 1 else self.runs  # the first call is the warm-up
        medians = {key: statistics.median(run.get(key, 0.0) for run in runs) for key in ("total", *STAGES)}
        if "unet loop" not in runs[0]:  # diffusers: the loop is what the other stages leave
            medians["unet loop"] = medians["total"] - sum(medians[s] for s in STAGES if s != "unet loop")
        return medians


def diffusers_pipeline(components: dict[str, Any], timer: StageTimer) -> Any:
    from diffusers import MusicLDMPipeline as DiffusersMusicLDM

    components = copy.deepcopy(components)  # its own copies, so that timing wrappers stay apart
    text_encoder = components["text_encoder"]
    get_text_features = text_encoder.get_text_features

    def tensor_features(*args: Any, **kwargs: Any) -> torch.Tensor:  # transformers 5 returns an object
        output = get_text_features(*args, **kwargs)
        return output if isinstance(output, torch.Tensor) else output.pooler_output

    text_encoder.get_text_features = tensor_features
    pipeline = DiffusersMusicLDM(**components)
    pipeline.set_progress_bar_config(disable=True)
    for owner, method, stage in ((pipeline, "_encode_prompt", "text"), (pipeline.vae, "decode", "vae"),
                                 (pipeline, "mel_spectrogram_to_waveform", "vocoder"),
                                 (pipeline, "score_waveforms", "ranking")):
        timer.wrap(owner, method, stage)
    return lambda: timer.call(lambda: pipeline(PROMPT, generator=torch.Generator().manual_seed(0), **WORKLOAD).audios)


def cuecraft_pipeline(components: dict[str, Any], timer: StageTimer, autocast_dtype: str, compile_unet: bool) -> Any:
    pipeline = MusicLDMPipeline(**components)
    if autocast_dtype == "auto":  # what set_fast_mode picks for this processor
        pipeline.set_fast_mode("auto", compile_unet=compile_unet)
    else:  # the named dtype, even where it is slower: that is what the row measures
        pipeline.set_fast_mode(autocast_dtype, compile_unet=compile_unet, force=True)
    for method, stage in (("encode_prompt", "text"), ("denoise", "unet loop"), ("decode", "vae"),
                          ("vocode", "vocoder"), ("rank", "ranking")):
        timer.wrap(pipeline, method, stage)

    def generate() -> torch.Tensor:
        out = pipeline(PROMPT, generator=torch.Generator().manual_seed(0), num_waveforms_to_keep=2, output_type="pt",
                       **WORKLOAD)
        return out.audios.numpy()

    return lambda: timer.call(generate)


def deviation(audios: Any, reference: Any) -> tuple[float, float]:
    """(max |a - r|, ||a - r|| / ||r||) over the waveforms, in ranked order."""
    a, r = torch.as_tensor(audios), torch.as_tensor(reference)
    return float((a - r).abs().max()), float((a - r).norm() / r.norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one timed round instead of five")
    parser.add_argument("--compile", action="store_true", help="also time fast mode with torch.compile")
    parser.add_argument("--out", type=Path, default=RESULTS / "musicldm.json")
    args = parser.parse_args()
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()  # the deprecation notice of diffusers' pipeline
    transformers_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=UserWarning, module="torch._dynamo")
    repeats = 1 if args.quick else 5
    modes = [("diffusers", None, False), ("cuecraft exact", "float32", False),
             ("cuecraft fast bf16", "bfloat16", False), ("cuecraft fast auto", "auto", False)]
    choice = choose_precision("cpu")
    if args.compile:
        modes.append(("cuecraft fast bf16+compile", "bfloat16", True))

    rows, results = [], []
    load_before = os.getloadavg()
    for size, blocks in SIZES.items():
        progress(f"size {size}")
        components = build_components(blocks)
        timers = {mode: StageTimer() for mode, _, _ in modes}
        runs = [diffusers_pipeline(components, timers[mode]) if dtype is None
                else cuecraft_pipeline(components, timers[mode], dtype, compile_unet)
                for mode, dtype, compile_unet in modes]
        # One round runs every mode once; rounds interleave the modes so that a load change on the
        # machine hits them alike, and each round starts one mode later, so that no mode always
        # runs right after another. median_seconds: a warm-up round (compiles), then the timed rounds.
        rounds = iter(range(10**6))

        def one_round() -> None:
            start = next(rounds) % len(runs)
            for run in runs[start:] + runs[:start]:
                run()

        median_seconds(one_round, budget_s=0.0, min_repeats=repeats)
        outputs = {mode: timer.last for mode, timer in timers.items()}
        timings = {mode: timer.medians() for mode, timer in timers.items()}
        exact = outputs["cuecraft exact"]
        for mode, _, _ in modes:
            progress(f"{size}: {mode}")
            t = timings[mode]
            max_abs, rel_l2 = deviation(outputs[mode], exact)
            speedup = timings["diffusers"]["total"] / t["total"]
            rows.append([size, mode, *(t[s] for s in STAGES), t["total"], f"{speedup:.2f}x",
                         f"{max_abs:.1e}", f"{rel_l2:.1e}"])
            results.append({"size": size, "unet_blocks": list(blocks), "mode": mode,
                            "seconds": {s: t[s] for s in ("total", *STAGES)}, "speedup_vs_diffusers": speedup,
                            "deviation_from_exact": {"max_abs": max_abs, "relative_l2": rel_l2},
                            "timed_runs": repeats})
    load_after = os.getloadavg()

    print(f"MusicLDM, {WORKLOAD['audio_length_in_s']} s, {WORKLOAD['num_inference_steps']} steps, guidance with a "
          f"negative prompt, 2 waveforms; seconds (median of {repeats} run(s)); torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; load average {load_before[0]:.2f} -> {load_after[0]:.2f}")
    units = cpu_units()
    print(f"CPU capability {cpu_capability()}; matrix units: bfloat16 {units['bfloat16'] or 'none'}, float16 "
          f"{units['float16'] or 'none'}; fast mode auto picks {choice.dtype}: {choice.reason}\n")
    print_table(["size", "mode", *STAGES, "total", "vs diffusers", "max |d| vs exact", "rel L2"], rows)
    write_json(args.out, {
        "benchmark": "musicldm", "cuecraft": cuecraft.__version__, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
        "cpu_capability": cpu_capability(), "cpu_units": cpu_units(),
        "fast_mode_auto": {"dtype": choice.dtype, "reason": choice.reason, "matmul_speedups": choice.speedups},
        "load_average": {"before": load_before[0], "after": load_after[0]},
        "workload": {**WORKLOAD, "prompt": PROMPT}, "results": results,
    })
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
