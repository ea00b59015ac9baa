"""Benchmark: cuecraft's MusicGen pipeline against transformers' ``generate`` on the same random model.

Run:  .venv/bin/python bench/musicgen.py [--quick] [--seconds S] [--rounds N] [--layers L] [--out PATH]

The model has MusicGen-small's published configuration (facebook/musicgen-small's config.json:
a 24-layer decoder of width 1024, 16 heads, ffn 4096, 4 codebooks of 2048 codes; T5-base as the
text encoder; the 32 kHz EnCodec with hop 640, 50 frames per second), random weights built in code
with a fixed seed (``--layers`` shrinks the decoder; ``--quick``: 4 layers, 0.5 s, one round). Workload: one prompt,
batched classifier-free guidance 3 (2 rows per step), sampling with top-k 250 from a fixed seed,
``--seconds`` of audio. Modes, run in interleaved rounds after a warm-up round (so that load from
other processes falls on both alike): transformers' ``generate`` (its tokens decoded by EnCodec)
and cuecraft's ``MusicGenPipeline`` (conditioning by cuecraft's T5 conditioner, provider and
fuser; cuecraft's token loop; the same EnCodec decode). Per mode the median wall time, token steps
per second, codes per second (steps x codebooks), the real-time factor (wall time / audio
seconds), cuecraft's share spent on conditioning and decoding, cuecraft's time over transformers'
(target: at most 1.05), and whether the tokens are identical (they must be: same seed). Prints a
table and writes bench/results/musicgen.json.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' tiny tokenizer

from _common import RESULTS, print_table, progress, write_json  # isort: skip

import cuecraft  # noqa: E402
from cuecraft.pipelines.musicgen import MusicGenPipeline  # noqa: E402
from tests.pipelines.musicgen_models import t5_tokenizer  # noqa: E402

PROMPT = "warm piano ballad with synths and deep bass"
# facebook/musicgen-small's config.json (transformers' layout), the parts that size the model
T5_BASE = dict(d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12, relative_attention_num_buckets=32,
               feed_forward_proj="relu", vocab_size=32128, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
ENCODEC_32KHZ = dict(sampling_rate=32000, audio_channels=1, normalize=False, chunk_length_s=None, overlap=None,
                     hidden_size=128, num_filters=64, num_residual_layers=1, upsampling_ratios=[8, 5, 4, 4],
                     norm_type="weight_norm", kernel_size=7, last_kernel_size=7, residual_kernel_size=3,
                     dilation_growth_rate=2, use_causal_conv=False, pad_mode="reflect", compress=2, num_lstm_layers=2,
                     trim_right_ratio=1.0, codebook_size=2048, codebook_dim=128, use_conv_shortcut=False,
                     target_bandwidths=[2.2])
DECODER_SMALL = dict(vocab_size=2048, max_position_embeddings=2048, num_hidden_layers=24, ffn_dim=4096,
                     num_attention_heads=16, hidden_size=1024, num_codebooks=4, activation_function="gelu",
                     pad_token_id=2048, bos_token_id=2048, dropout=0.1)


def build_model(layers: int, seed: int = 0) -> Any:
    from transformers import (EncodecConfig, EncodecModel, MusicgenDecoderConfig, MusicgenForCausalLM,
                              MusicgenForConditionalGeneration, T5Config, T5EncoderModel)

    torch.manual_seed(seed)
    decoder = MusicgenForCausalLM(MusicgenDecoderConfig(**{**DECODER_SMALL, "num_hidden_layers": layers}))
    codec = EncodecModel(EncodecConfig(**ENCODEC_32KHZ))
    model = MusicgenForConditionalGeneration(text_encoder=T5EncoderModel(T5Config(**T5_BASE)), audio_encoder=codec,
                                             decoder=decoder)
    for part in (model.decoder, model.text_encoder):  # what from_pretrained chooses
        part.set_attn_implementation("sdpa")
    model.generation_config.pad_token_id = model.generation_config.decoder_start_token_id = 2048
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="audio per run (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3)")
    parser.add_argument("--layers", type=int, default=24, help="decoder layers (default 24, MusicGen-small's)")
    parser.add_argument("--quick", action="store_true", help="4 decoder layers, 0.5 s, one round")
    parser.add_argument("--out", type=Path, default=RESULTS / "musicgen.json")
    args = parser.parse_args()
    if args.quick:
        args.layers, args.seconds, args.rounds = 4, 0.5, 1

    progress(f"building a random MusicGen-small ({args.layers} decoder layers)")
    model = build_model(args.layers)
    tokenizer = t5_tokenizer()[0]
    pipe = MusicGenPipeline(model, tokenizer)
    frames = pipe.spec.frames_for(round(args.seconds * pipe.sample_rate))
    steps = frames + pipe.spec.num_codebooks - 1
    inputs = tokenizer([PROMPT], return_tensors="pt")
    settings = dict(guidance=3.0, top_k=250)
    seen: dict[str, torch.Tensor] = {}
    decode = model.audio_encoder.decode

    def capture(codes: torch.Tensor, *rest: Any, **options: Any) -> Any:
        seen["transformers"] = codes[0]
        return decode(codes, *rest, **options)

    def run_transformers() -> dict[str, float]:
        model.audio_encoder.decode = capture
        try:
            torch.manual_seed(0)
            model.generate(**inputs, do_sample=True, top_k=settings["top_k"], guidance_scale=settings["guidance"],
                           max_new_tokens=steps)
        finally:
            del model.audio_encoder.decode
        return {}

    def run_cuecraft() -> dict[str, float]:
        output = pipe(PROMPT, seconds=frames / pipe.spec.frame_rate, generator=torch.Generator().manual_seed(0),
                      **settings)
        seen["cuecraft"] = output.tokens
        return output.timings

    modes = {"transformers generate": run_transformers, "cuecraft": run_cuecraft}
    times: dict[str, list[float]] = {name: [] for name in modes}
    stages: dict[str, list[float]] = {"conditioning": [], "tokens": [], "decode": []}
    for round_ in range(args.rounds + 1):  # round 0 warms up
        order = list(modes)[round_ % 2:] + list(modes)[: round_ % 2]
        for name in order:
            start = time.perf_counter()
            timings = modes[name]()
            elapsed = time.perf_counter() - start
            if round_:
                times[name].append(elapsed)
                for stage, value in timings.items():
                    stages[stage].append(value)
            progress(f"round {round_}{' (warm-up)' if not round_ else ''}: {name} {elapsed:.2f} s")
    identical = torch.equal(seen["transformers"], seen["cuecraft"])
    audio_seconds = frames / pipe.spec.frame_rate
    medians = {name: statistics.median(values) for name, values in times.items()}
    stage_medians = {stage: statistics.median(values) for stage, values in stages.items()}
    ratio = medians["cuecraft"] / medians["transformers generate"]
    rows = []
    for name, seconds in medians.items():
        rows.append([name, seconds, steps / seconds, steps * pipe.spec.num_codebooks / seconds, seconds / audio_seconds,
                     stage_medians["conditioning"] / seconds if name == "cuecraft" else float("nan"),
                     seconds / medians["transformers generate"]])
    print(f"\nMusicGen-small geometry ({args.layers} layers), random weights; {audio_seconds:.2f} s = {frames} frames, "
          f"{steps} token steps; guidance 3 (batched), top-k 250; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print_table(["mode", "seconds", "steps/s", "codes/s", "RTF", "conditioning share", "x transformers"], rows)
    print(f"tokens identical: {identical}; cuecraft stages (median s): "
          + ", ".join(f"{k} {v:.3f}" for k, v in stage_medians.items()))
    print(f"cuecraft / transformers: {ratio:.3f} (target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")
    write_json(args.out, {
        "cuecraft": cuecraft.__version__, "torch": torch.__version__, "threads": torch.get_num_threads(),
        "layers": args.layers, "seconds_of_audio": audio_seconds, "frames": frames, "token_steps": steps,
        "rounds": args.rounds, "median_seconds": medians, "cuecraft_stages": stage_medians,
        "steps_per_second": {name: steps / s for name, s in medians.items()},
        "real_time_factor": {name: s / audio_seconds for name, s in medians.items()},
        "conditioning_share": stage_medians["conditioning"] / medians["cuecraft"],
        "cuecraft_over_transformers": ratio, "tokens_identical": identical,
    })
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
