"""MusicGen and MusicGen-melody text-to-music, with cuecraft's conditioning, on transformers' models.

Notation: B prompts, N candidates per prompt, M = B * N sequences, K codebooks, F frames,
P frames of an audio prompt, T samples.

transformers supplies the networks (T5 encoder, EnCodec, the decoder over codebook tokens);
cuecraft supplies the conditions (``conditioning.py``: its T5 and chroma conditioners, its
provider and fuser), the guidance (batched 2M or 3M, or two-step; double CFG through
``guidance_groups``), the token loop over the delay pattern (``pattern.py``) and the token
choice (``sampling.py``). With the same inputs the tokens are those of transformers'
``generate``: the same with greedy decoding (``top_k=1``), and the same for the same seed when
sampling (one ``torch.multinomial`` per step over the M * K rows, as ``generate`` draws).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cuecraft.attributes import WavCondition
from cuecraft.audio.resample import prepare_waveform
from cuecraft.errors import GenerationInputError
from cuecraft.pipelines.musicgen.checks import MusicGenOptions, check_inputs
from cuecraft.pipelines.musicgen.conditioning import DecoderInputs, MusicGenConditioning
from cuecraft.pipelines.musicgen.pattern import UNKNOWN, DelayPattern
from cuecraft.pipelines.musicgen.sampling import Guidance, Sampler
from cuecraft.pipelines.musicgen.spec import ChromaSettings, MusicGenSpec, spec_from_config

Progress = Callable[[int, int], None]


@dataclass
class MusicGenOutput:
    """audio: float32 [M, T] waveforms (NumPy or torch), prompt by prompt, each prompt's N
    candidates side by side; T = round(seconds * sample_rate) (plus the audio prompt's samples).
    tokens: long [M, K, F], the EnCodec codes (an audio prompt's first). sample_rate: Hz.
    options: the settings used. timings: seconds spent on conditioning, tokens and decoding."""

    audio: np.ndarray | torch.Tensor
    tokens: torch.Tensor
    sample_rate: int
    options: MusicGenOptions
    timings: dict[str, float] = field(default_factory=dict)


def spec_of(model: Any, tokenizer: Any, chroma: ChromaSettings | None = None) -> MusicGenSpec:
    """The spec of a loaded model; a melody model's chroma defaults to transformers'
    MusicgenMelodyFeatureExtractor settings with the model's chroma_length."""
    config = model.config
    if config.model_type == "musicgen_melody" and chroma is None:
        chroma = ChromaSettings(n_chroma=int(config.num_chroma), chroma_length=int(config.chroma_length))
    return spec_from_config(config, tokenizer, chroma, f"({type(model).__name__} in memory)")


class MusicGenPipeline:
    """MusicGen (text) or MusicGen-melody (text and melody) generation.

    Args:
        model: transformers' ``MusicgenForConditionalGeneration`` or
            ``MusicgenMelodyForConditionalGeneration`` (its text encoder, EnCodec and decoder).
        tokenizer: its T5 tokenizer.
        chroma: a melody model's chroma settings (default: transformers' feature extractor's).
        melody_stems, melody_stems_model: stem separation before the chroma (``none``, as
            transformers' feature extractor; ``hpss``; ``demucs`` with a local model file, as AudioCraft).
    """

    def __init__(self, model: Any, tokenizer: Any, chroma: ChromaSettings | None = None, *,
                 spec: MusicGenSpec | None = None, melody_stems: str = "none", melody_stems_model: str | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.spec = spec if spec is not None else spec_of(model, tokenizer, chroma)
        self.conditioning = MusicGenConditioning(model, tokenizer, self.spec, melody_stems=melody_stems,
                                                 melody_stems_model=melody_stems_model)
        generation = model.generation_config
        start = generation.decoder_start_token_id
        self.start_token = int(start if start is not None else generation.bos_token_id)
        parameters = inspect.signature(model.decoder.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"

    @classmethod
    def from_pretrained(cls, source: str | Path, **options: Any) -> MusicGenPipeline:
        """Load a local MusicGen folder, or one in the Hugging Face cache (see ``loading.py``);
        never downloads. ``options``: the constructor's melody_stems, melody_stems_model."""
        from cuecraft.pipelines.musicgen.loading import read_folder

        folder = read_folder(source)
        return cls(folder.load_model(), folder.tokenizer, spec=folder.spec, **options)

    @property
    def device(self) -> torch.device:
        return next(self.model.decoder.parameters()).device

    @property
    def sample_rate(self) -> int:
        return self.spec.sample_rate

    def to(self, device: torch.device | str) -> MusicGenPipeline:
        self.model.to(device)
        self.conditioning.provider.to(device)
        return self

    def check_inputs(self, prompt: Any, *, negative_prompt: Any = None, melody: Any = None, audio_prompt: Any = None,
                     options: MusicGenOptions = MusicGenOptions(), generator: Any = None, progress: Any = None) -> None:
        """Raise GenerationInputError listing every problem of these arguments (see ``__call__``)."""
        check_inputs(self.spec, self.conditioning.text_tokens, prompt=prompt, negative_prompt=negative_prompt,
                     melody=melody, audio_prompt=audio_prompt, options=options, generator=generator, progress=progress)

    # -- one call -----------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], *, negative_prompt: str | list[str | None] | None = None,
                 melody: WavCondition | list[WavCondition | None] | None = None,
                 audio_prompt: WavCondition | list[WavCondition] | None = None, seconds: float = 10.0,
                 guidance: float = 3.0, guidance_text: float = 0.0, two_step_cfg: bool = False, top_k: int = 250,
                 top_p: float = 0.0, temperature: float = 1.0, candidates: int = 1,
                 generator: torch.Generator | None = None, progress: Progress | None = None,
                 output_type: str = "np") -> MusicGenOutput:
        """Generate ``candidates`` clips per prompt.

        prompt: a text or a list (B). negative_prompt: the unconditional branch's text (one or
        one per prompt); without it that branch has every condition null. melody (MusicGen-melody):
        a WavCondition (or one per prompt, None for none), looped or cut to the model's chroma
        length. audio_prompt: clips (one length) encoded by EnCodec and continued; the output
        starts with them. seconds, guidance, guidance_text, two_step_cfg, top_k, top_p,
        temperature, candidates: see ``MusicGenOptions``. generator: draws the samples (torch's
        global generator when None, as transformers' ``generate``). progress(step, total) runs
        after every token step. output_type: "np" or "pt".
        """
        options = MusicGenOptions(seconds=seconds, guidance=guidance, guidance_text=guidance_text,
                                  two_step_cfg=two_step_cfg, top_k=top_k, top_p=top_p, temperature=temperature,
                                  candidates=candidates)
        # 1. Check inputs (every problem at once)
        self.check_inputs(prompt, negative_prompt=negative_prompt, melody=melody, audio_prompt=audio_prompt,
                          options=options, generator=generator, progress=progress)
        if output_type not in ("np", "pt"):
            raise GenerationInputError(f"output_type: expected 'np' or 'pt'; got {output_type!r}")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        batch, count = len(prompts), options.candidates
        guide = Guidance(float(options.guidance), float(options.guidance_text))
        timings = {}

        # 2. Conditions of each guidance branch, [B, ...] -> [B * N, ...]
        start = time.perf_counter()
        negatives = _each(negative_prompt, batch)
        melodies = _each(melody, batch) or [None] * batch
        branches = self.conditioning.branches(prompts, melodies, negatives, guide.branches())
        inputs = self.conditioning.decoder_inputs(branches, together=not options.two_step_cfg)
        inputs = {name: _to(value.repeat(count), self.device) for name, value in inputs.items()}
        timings["conditioning"] = time.perf_counter() - start

        # 3. The audio prompt's codes [B * N, K, P] and the frames to generate
        clips = _each(audio_prompt, batch)
        prompt_codes, scales, prompt_samples = None, None, 0
        if clips is not None and any(c is not None for c in clips):  # one per prompt (checked)
            prompt_codes, scales, prompt_samples = self.encode_audio(clips)
            prompt_codes = prompt_codes.repeat_interleave(count, dim=0)
        samples = prompt_samples + round(options.seconds * self.sample_rate)
        prompt_frames = 0 if prompt_codes is None else prompt_codes.shape[-1]
        frames = max(self.spec.frames_for(samples), prompt_frames + 1)

        # 4. Tokens, step by step over the delay pattern
        start = time.perf_counter()
        sampler = Sampler(int(options.top_k), float(options.top_p), float(options.temperature))
        codes = self.generate_tokens(inputs, frames, guide, sampler, prompt_codes=prompt_codes,
                                     together=not options.two_step_cfg, generator=generator, progress=progress)
        timings["tokens"] = time.perf_counter() - start

        # 5. EnCodec decoding, cut to exactly the samples asked for
        start = time.perf_counter()
        audio = self.decode(codes, None if scales is None else [s if s is None else s.repeat_interleave(count, 0)
                                                                 for s in scales])
        audio = F.pad(audio[:, :samples], (0, max(0, samples - audio.shape[-1])))
        timings["decode"] = time.perf_counter() - start
        audio = audio.float().cpu()
        return MusicGenOutput(audio.numpy() if output_type == "np" else audio, codes.cpu(), self.sample_rate,
                              options, timings)

    # -- stages -------------------------------------------------------------------------------

    def encode_audio(self, clips: Sequence[WavCondition]) -> tuple[torch.Tensor, list[Any] | None, int]:
        """Clips (any rate and channels) -> (EnCodec codes long [B, K, P], EnCodec's scales, the
        clips' samples at the model's rate). Mono, resampled, cut to the shortest."""
        wavs = [prepare_waveform(c.wav, c.sample_rate, self.sample_rate, c.length) for c in clips]
        length = min(w.shape[-1] for w in wavs)
        batch = torch.stack([w[:length] for w in wavs]).unsqueeze(1).to(self.device)  # [B, 1, T]
        encoded = self.model.audio_encoder.encode(batch)
        codes = encoded.audio_codes  # [chunks, B, K, P]
        if codes.shape[0] != 1:
            raise GenerationInputError(f"audio_prompt: this EnCodec encodes in {codes.shape[0]} chunks; MusicGen's "
                                       "EnCodec encodes a clip whole (chunk_length_s None)")
        return codes[0], list(encoded.audio_scales), length

    def decode(self, codes: torch.Tensor, scales: list[Any] | None = None) -> torch.Tensor:
        """Codes long [M, K, F] -> waveforms [M, F * hop] (EnCodec's decoder, one batch)."""
        scales = [None] * codes.shape[0] if scales is None else scales
        return self.model.audio_encoder.decode(codes.unsqueeze(0), scales).audio_values[:, 0]

    def generate_tokens(self, inputs: dict[str, DecoderInputs], frames: int, guidance: Guidance, sampler: Sampler, *,
                        prompt_codes: torch.Tensor | None = None, together: bool = True,
                        generator: torch.Generator | None = None, progress: Progress | None = None) -> torch.Tensor:
        """The token loop: codes long [M, K, F] (``prompt_codes`` [M, K, P] first).

        ``inputs``: each guidance branch's decoder inputs [M, ...]. ``together``: the branches
        in one batched pass (rows branch by branch, one cache); else one pass per branch, each
        with its own cache (two-step). Each step feeds the new tokens of every codebook, combines
        the branches' logits, chooses M * K tokens and writes them where the pattern has none.
        """
        names = guidance.branches()
        runs = [(names, DecoderInputs.cat([inputs[n] for n in names]))] if together else \
            [((n,), inputs[n]) for n in names]
        rows = inputs[names[0]].rows
        pattern = DelayPattern(self.spec.num_codebooks, frames, self.start_token)
        grid = pattern.build(rows, prompt_codes, self.device)  # [M, K, L]
        first = pattern.first_step(0 if prompt_codes is None else prompt_codes.shape[-1])
        caches: list[Any] = [None] * len(runs)
        for t in range(first, pattern.steps):
            fed = grid[:, :, (0 if t == first else t - 1): t]  # [M, K, n]: everything, then the last step
            predictions = {}
            for i, (branch_names, branch_inputs) in enumerate(runs):
                logits, caches[i] = self._step(fed, branch_inputs, len(branch_names), caches[i], t == first)
                predictions.update(zip(branch_names, logits.chunk(len(branch_names))))
            tokens = sampler.select(guidance.combine(predictions), generator).view(rows, -1)  # [M, K]
            column = grid[:, :, t]
            grid[:, :, t] = torch.where(column == UNKNOWN, tokens, column)
            if progress is not None:
                progress(t - first + 1, pattern.steps - first)
        return pattern.revert(grid)

    def _step(self, fed: torch.Tensor, inputs: DecoderInputs, copies: int, cache: Any,
              first: bool) -> tuple[torch.Tensor, Any]:
        """One decoder pass: fed [M, K, n] for ``copies`` branches stacked in ``inputs``
        ([copies * M, ...]) -> (last-step logits float32 [copies * M * K, V], the cache)."""
        rows, codebooks, length = fed.shape
        ids = fed.reshape(rows * codebooks, length).repeat(copies, 1)  # branch by branch, as transformers
        extra: dict[str, Any] = {}
        if inputs.cross is not None:  # MusicGen: cross-attention on every step (its keys are cached)
            extra = {"encoder_hidden_states": inputs.cross, "encoder_attention_mask": inputs.cross_mask.long()}
        elif first:  # MusicGen-melody: the prefix, once, in front of the first tokens
            extra = {"encoder_hidden_states": inputs.prefix}
        output = self.model.decoder(input_ids=ids, use_cache=True, **{self._cache_argument: cache}, **extra)
        cache = getattr(output, "cache", None)
        if cache is None:  # transformers 4
            cache = getattr(output, "past_key_values", None)
        return output.logits[:, -1].float(), cache


def _each(value: Any, batch: int) -> list[Any] | None:
    """A per-prompt argument as a list of ``batch`` (None stays None)."""
    if value is None:
        return None
    return list(value) if isinstance(value, (list, tuple)) else [value] * batch


def _to(inputs: DecoderInputs, device: torch.device) -> DecoderInputs:
    def moved(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x.to(device)
    return replace(inputs, cross=moved(inputs.cross), cross_mask=moved(inputs.cross_mask), prefix=moved(inputs.prefix))
