"""MusicLDM text-to-music: CLAP text embedding -> UNet -> VAE decoder -> mel -> HiFi-GAN vocoder.

Notation: B prompts, N waveforms per prompt, K kept per prompt, D CLAP width, C latent channels,
H latent frames, W latent mel bins, T samples.

The prompt is conditioned by cuecraft itself: a ``ClapTextConditioner`` (CLAP's pooled, projected,
L2-normalised text embedding [B, 1, D]) in a ``ConditionProvider``, routed by a ``ConditionFuser``
to the ``global`` role, whose ``global_cond`` [B, D] is the UNet's class-label embedding input.

Beyond diffusers' (deprecated) ``MusicLDMPipeline``, which it matches number for number on one
prompt: candidates are ranked per prompt (``ranking.py``) with a seeded crop, negative prompts are
tokenized exactly like prompts, the output has exactly ``round(audio_length_in_s * rate)``
samples, schedulers are chosen by name, and it runs on transformers 4 and 5.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cuecraft._optional import require
from cuecraft.conditioners.clap import ClapTextConditioner
from cuecraft.conditioners.pretrained import autocast, check_autocast_dtype
from cuecraft.errors import ConfigError
from cuecraft.fuser import ConditionFuser
from cuecraft.guidance import apply_guidance
from cuecraft.pipelines.checks import CALLBACK_TENSOR_INPUTS, batch_size, check_inputs
from cuecraft.pipelines.precision import PrecisionChoice, choose_precision
from cuecraft.pipelines.ranking import Generators, Ranking, clap_audio_embeddings, rank_candidates
from cuecraft.pipelines.schedulers import make_scheduler
from cuecraft.provider import ConditionProvider


@dataclass
class MusicLDMPipelineOutput:
    """audios: [B * K, T] waveforms (NumPy or torch), prompt by prompt, best first (K = N unless
    ``num_waveforms_to_keep`` says otherwise); or the latents [B * N, C, H, W] for
    ``output_type="latent"``.
    candidates: long [B, K], which of each prompt's own N candidates were kept, best first:
    ``candidates[b, k]`` in [0, N) is candidate n of prompt b, row ``b * N + n`` of the generated
    batch (None when N = 1 or for latents). scores: [B, K], their CLAP text-audio cosine
    similarity (None likewise)."""

    audios: np.ndarray | torch.Tensor
    candidates: torch.Tensor | None = None
    scores: torch.Tensor | None = None


class MusicLDMPipeline:
    """Text-to-music with MusicLDM's components (all injected; CPU and float32 until moved).

    Args:
        vae: diffusers ``AutoencoderKL`` (mel spectrogram <-> latents).
        text_encoder: transformers ``ClapModel`` (text embeddings for conditioning; audio
            embeddings for ranking).
        tokenizer: CLAP's (Roberta) tokenizer.
        feature_extractor: ``ClapFeatureExtractor``, or None when never ranking (N = 1).
        unet: diffusers ``UNet2DConditionModel`` with a ``simple_projection`` class embedding of D.
        scheduler: a diffusers scheduler; swap it by name with ``set_scheduler``.
        vocoder: transformers ``SpeechT5HifiGan`` (mel -> waveform).
    """

    def __init__(self, vae: Any, text_encoder: Any, tokenizer: Any, feature_extractor: Any | None, unet: Any,
                 scheduler: Any, vocoder: Any):
        self.vae, self.text_encoder, self.tokenizer = vae, text_encoder, tokenizer
        self.feature_extractor, self.unet, self.scheduler, self.vocoder = feature_extractor, unet, scheduler, vocoder
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.embed_dim = int(text_encoder.config.projection_dim)
        self._check_components()
        # The CLAP text conditioner pads to the tokenizer's maximum, as MusicLDM was run, and
        # encodes every batch whole (no LRU), so its numbers are exactly diffusers'.
        self.text_conditioner = ClapTextConditioner.from_model(
            text_encoder, tokenizer, padding="max_length", max_length=tokenizer.model_max_length,
            cache_size=0).eval()
        self.provider = ConditionProvider({"prompt": self.text_conditioner})
        self.fuser = ConditionFuser({"global": ["prompt"]})
        self.fuser.check_shapes({"prompt": (1, self.embed_dim)})
        self.autocast_dtype = "float32"  # exact; see set_fast_mode
        self.precision = PrecisionChoice("float32", "exact (the default)")
        self._compiled_unet: tuple[Any, Any] | None = None  # (unet, torch.compile(unet))

    def _check_components(self) -> None:
        problems = []
        mels = self.vocoder.config.model_in_dim
        if mels % self.vae_scale_factor:
            problems.append(f"vocoder: its {mels} mel bins must be divisible by the VAE's scale factor "
                            f"{self.vae_scale_factor}")
        unet = self.unet.config
        if unet.class_embed_type != "simple_projection" or unet.projection_class_embeddings_input_dim != self.embed_dim:
            problems.append(f"unet: expected a simple_projection class embedding of width {self.embed_dim} (CLAP's "
                            f"projection_dim); got {unet.class_embed_type} of width "
                            f"{unet.projection_class_embeddings_input_dim}")
        if unet.in_channels != self.vae.config.latent_channels:
            problems.append(f"unet: in_channels {unet.in_channels} differ from the VAE's latent_channels "
                            f"{self.vae.config.latent_channels}")
        if problems:
            raise ConfigError(problems)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> MusicLDMPipeline:
        """Load a local diffusers-format MusicLDM directory (see ``loading.py``); never downloads."""
        from cuecraft.pipelines.loading import load_components

        return cls(**load_components(directory))

    # -- components ---------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def sample_rate(self) -> int:
        """The vocoder's output rate (Hz)."""
        return int(self.vocoder.config.sampling_rate)

    @property
    def hop_length(self) -> int:
        """Waveform samples per mel frame: the product of the vocoder's upsampling rates."""
        return int(np.prod(self.vocoder.config.upsample_rates))

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> MusicLDMPipeline:
        """Move (and cast) every model; returns the pipeline."""
        for module in (self.vae, self.text_encoder, self.unet, self.vocoder):
            module.to(device=device, dtype=dtype)
        self.text_conditioner.clear_cache()
        return self

    def set_scheduler(self, name: str) -> MusicLDMPipeline:
        """Use the scheduler called ``name`` (see ``schedulers.SCHEDULERS``), configured from the
        current scheduler's config (same noise schedule). Returns the pipeline."""
        self.scheduler = make_scheduler(name, self.scheduler.config)
        return self

    def set_fast_mode(self, autocast_dtype: str = "auto", compile_unet: bool = False, *,
                      force: bool = False) -> MusicLDMPipeline:
        """Trade exactness for speed (opt-in; ``set_fast_mode("float32")`` is the exact default).

        autocast_dtype: run the UNet, VAE decoder and vocoder under autocast in this dtype.
            ``auto`` (default): the fastest of bfloat16 and float16 that the processor has matrix
            units for and that a one-off matmul benchmark finds really faster; float32 otherwise
            (see ``precision.choose_precision``). A named dtype the processor does badly (bfloat16
            on a CPU without avx512_bf16 / amx_bf16) is not used either, with a warning saying
            why, unless ``force``. Latents, the scheduler, the text conditioning and the ranking
            stay float32. ``self.precision`` tells what was chosen and why.
        compile_unet: ``torch.compile`` the UNet (the first call then takes minutes to compile).
        force: use ``autocast_dtype`` as named, even where it is slower.
        Returns the pipeline. bench/musicldm.py reports the speed-up and the deviation.
        """
        problems = [] if autocast_dtype == "auto" else check_autocast_dtype(autocast_dtype)
        if problems:
            problems = [problems[0].replace("expected one of ", "expected one of auto, ")]
        if not isinstance(compile_unet, bool):
            problems.append(f"compile_unet: expected True or False; got {compile_unet!r}")
        if not isinstance(force, bool):
            problems.append(f"force: expected True or False; got {force!r}")
        if problems:
            raise ConfigError(problems)
        if force and autocast_dtype != "auto":
            choice = PrecisionChoice(autocast_dtype, f"{autocast_dtype} forced")
        else:
            choice = choose_precision(self.device, autocast_dtype)
            if autocast_dtype not in ("auto", choice.dtype):
                warnings.warn(f"set_fast_mode({autocast_dtype!r}) keeps float32: {choice.reason}; pass force=True "
                              "to use it anyway", stacklevel=2)
        self.precision = choice
        self.autocast_dtype = choice.dtype
        self._compiled_unet = (self.unet, torch.compile(self.unet)) if compile_unet else None
        return self

    # -- stages -------------------------------------------------------------------------------

    @torch.no_grad()
    def encode_prompt(self, texts: Sequence[str]) -> torch.Tensor:
        """CLAP text embeddings [len(texts), D] through cuecraft's provider and fuser.

        Every text is embedded as text, the empty one included. cuecraft's own null condition is
        zeros with a False mask, and an empty prompt would get it; but MusicLDM, like AudioLDM
        whose CLAP conditioner it inherits, learnt CLAP's embedding of "" as its unconditional
        token (in training dropout and at inference), and diffusers' pipeline feeds that. So the
        mask is set True for every item and "" gives that real embedding, not zeros.
        """
        tokens = self.provider.tokenize([{"prompt": text} for text in texts])
        text_tokens = tokens["prompt"]
        tokens["prompt"] = text_tokens._replace(mask=torch.ones_like(text_tokens.mask))
        conditions = self.provider(tokens)  # {"prompt": Condition([B, 1, D], [B, 1])}
        return self.fuser(conditions).global_cond  # [B, D]

    def samples_for(self, seconds: Any) -> int:
        """round(seconds * sample_rate): the exact length of the output; 0 for what is not a
        finite number of seconds (``check_inputs`` reports it)."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
            return 0
        return round(seconds * self.sample_rate)

    def frames_for(self, n_samples: int) -> int:
        """Mel frames to generate for ``n_samples``: enough to cover them, rounded up to a multiple
        of the VAE's scale factor."""
        frames = math.ceil(n_samples / self.hop_length)
        return math.ceil(frames / self.vae_scale_factor) * self.vae_scale_factor

    def latent_shape(self, n_samples: int) -> tuple[int, int, int]:
        """(C, H, W) of the latents that decode to at least ``n_samples``."""
        mels = int(self.vocoder.config.model_in_dim)
        return (int(self.unet.config.in_channels), self.frames_for(n_samples) // self.vae_scale_factor,
                mels // self.vae_scale_factor)

    def denoise(self, latents: torch.Tensor, class_labels: torch.Tensor, guidance_scale: float,
                extra_step_kwargs: dict[str, Any], callbacks: Callable[[int, Any, torch.Tensor, torch.Tensor],
                                                                       tuple[torch.Tensor, torch.Tensor]],
                cross_attention_kwargs: dict[str, Any] | None) -> torch.Tensor:
        """The sampling loop over ``self.scheduler.timesteps`` (already set).

        latents: [M, C, H, W]. class_labels: [M, D], or [2M, D] with guidance (conditional rows,
        then unconditional/negative rows: cuecraft's ``guidance_batch`` order, which
        ``apply_guidance`` splits). Returns [M, C, H, W].
        """
        guided = class_labels.shape[0] == 2 * latents.shape[0]
        compiled = self._compiled_unet
        unet = compiled[1] if compiled is not None and compiled[0] is self.unet else self.unet
        for i, t in enumerate(self.scheduler.timesteps):
            model_input = torch.cat([latents] * 2) if guided else latents
            model_input = self.scheduler.scale_model_input(model_input, t)
            with autocast(latents.device, self.autocast_dtype):
                noise = unet(model_input, t, encoder_hidden_states=None, class_labels=class_labels,
                             cross_attention_kwargs=cross_attention_kwargs, return_dict=False)[0]
            noise = noise.to(latents.dtype)
            if guided:
                noise = apply_guidance(noise, guidance_scale)  # u + scale * (c - u)
            latents = self.scheduler.step(noise, t, latents, **extra_step_kwargs).prev_sample
            latents, class_labels = callbacks(i, t, latents, class_labels)
        return latents

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents [M, C, H, W] -> mel spectrograms [M, 1, H * f, W * f] (f: VAE scale factor)."""
        latents = 1 / self.vae.config.scaling_factor * latents
        with autocast(latents.device, self.autocast_dtype):
            mel = self.vae.decode(latents).sample
        return mel.to(latents.dtype)

    @torch.no_grad()
    def vocode(self, mel: torch.Tensor) -> torch.Tensor:
        """Mel spectrograms [M, 1, frames, mels] -> float32 CPU waveforms [M, frames * hop_length]."""
        with autocast(mel.device, self.autocast_dtype):
            waveforms = self.vocoder(mel.squeeze(1))
        return waveforms.cpu().float()

    @torch.no_grad()
    def rank(self, text_embeds: torch.Tensor, waveforms: torch.Tensor, keep: int, generator: Generators) -> Ranking:
        """Rank each prompt's candidates (rows of ``waveforms`` [B * N, T]) against its embedding
        ``text_embeds`` [B, D]; see ``ranking.py``."""
        audio_embeds = clap_audio_embeddings(self.text_encoder, self.feature_extractor, waveforms,
                                             self.sample_rate, generator)
        return rank_candidates(text_embeds, audio_embeds, keep)

    # -- one call -----------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(self, prompt: str | list[str] | None = None, audio_length_in_s: float | None = None,
                 num_inference_steps: int = 200, guidance_scale: float = 2.0,
                 negative_prompt: str | list[str] | None = None, num_waveforms_per_prompt: int = 1,
                 eta: float = 0.0, generator: Generators = None, latents: torch.Tensor | None = None,
                 prompt_embeds: torch.Tensor | None = None, negative_prompt_embeds: torch.Tensor | None = None,
                 return_dict: bool = True, callback: Callable[[int, Any, torch.Tensor], None] | None = None,
                 callback_steps: int = 1, cross_attention_kwargs: dict[str, Any] | None = None,
                 output_type: str = "np", callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
                 callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
                 num_waveforms_to_keep: int | None = None,
                 clip_output: bool = False) -> MusicLDMPipelineOutput | tuple:
        """Generate B * K waveforms [B * K, T], T = round(audio_length_in_s * sample_rate).

        Arguments are diffusers' ``MusicLDMPipeline.__call__``'s, plus:
            num_waveforms_to_keep: K, the best candidates returned per prompt (1 <= K <= N);
                default: all N, as diffusers returns them. With N > 1 every prompt's N candidates
                are ranked by CLAP similarity to that prompt, best first.
            clip_output: set NaNs to 0 and clip samples to [-1, 1].
        audio_length_in_s defaults to the UNet's ``sample_size`` in seconds. A negative prompt
        (str for all, or one per prompt) replaces the unconditional branch; without one it is the
        embedding of "" (see ``encode_prompt``). Guidance is on when ``guidance_scale > 1``.
        ``callback(step, t, latents)`` runs every ``callback_steps``;
        ``callback_on_step_end(pipeline, i, t, tensors) -> tensors`` after every step, with
        ``tensors`` the names in ``callback_on_step_end_tensor_inputs`` ("latents",
        "prompt_embeds": the [2M or M, D] class labels); what it returns replaces them.
        Returns MusicLDMPipelineOutput, or ``(audios,)`` when ``return_dict`` is False.
        """
        # 1. Length and inputs
        if audio_length_in_s is None:
            frames = self.unet.config.sample_size * self.vae_scale_factor  # latent frames -> mel frames
            audio_length_in_s = frames * self.hop_length / self.sample_rate
        n_samples = self.samples_for(audio_length_in_s)
        if num_waveforms_to_keep is None and isinstance(num_waveforms_per_prompt, int):
            num_waveforms_to_keep = num_waveforms_per_prompt  # all of them, ranked
        check_inputs(
            prompt=prompt, negative_prompt=negative_prompt, prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_prompt_embeds, audio_length_in_s=audio_length_in_s,
            sample_rate=self.sample_rate, num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
            num_waveforms_per_prompt=num_waveforms_per_prompt, num_waveforms_to_keep=num_waveforms_to_keep, eta=eta,
            generator=generator, latents=latents, latent_shape=self.latent_shape(n_samples) if n_samples >= 1 else None,
            callback=callback, callback_steps=callback_steps, callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs,
            cross_attention_kwargs=cross_attention_kwargs, output_type=output_type, return_dict=return_dict,
            clip_output=clip_output, embed_dim=self.embed_dim, can_rank=self.feature_extractor is not None)
        batch, count, device = batch_size(prompt, prompt_embeds), num_waveforms_per_prompt, self.device
        guided = guidance_scale > 1.0

        # 2. Text conditioning: [B, D] per branch, each prompt repeated for its N candidates
        prompts = [prompt] if isinstance(prompt, str) else prompt
        negatives = [negative_prompt] * batch if isinstance(negative_prompt, str) else negative_prompt
        cond, uncond = self._text_conditions(prompts, negatives or [""] * batch, prompt_embeds,
                                             negative_prompt_embeds, guided)
        class_labels = cond.repeat_interleave(count, dim=0)  # [B * N, D], prompt by prompt
        if guided:
            class_labels = torch.cat([class_labels, uncond.repeat_interleave(count, dim=0)])  # [2 * B * N, D]

        # 3. Timesteps and initial noise
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        shape = (batch * count, *self.latent_shape(n_samples))
        if latents is None:
            randn_tensor = require("diffusers.utils.torch_utils", extra="musicldm", purpose="MusicLDM").randn_tensor
            latents = randn_tensor(shape, generator=generator, device=device, dtype=class_labels.dtype)
        latents = latents.to(device) * self.scheduler.init_noise_sigma

        # 4. Denoising loop
        step_parameters = set(inspect.signature(self.scheduler.step).parameters)
        extra_step_kwargs = {k: v for k, v in (("eta", eta), ("generator", generator)) if k in step_parameters}
        callbacks = self._step_callbacks(num_inference_steps, callback, callback_steps, callback_on_step_end,
                                         callback_on_step_end_tensor_inputs)
        latents = self.denoise(latents, class_labels, guidance_scale, extra_step_kwargs, callbacks,
                               cross_attention_kwargs)
        if output_type == "latent":
            return MusicLDMPipelineOutput(latents) if return_dict else (latents,)

        # 5. Decode to exactly n_samples, rank, clean
        waveforms = self.vocode(self.decode(latents))  # [B * N, frames * hop]
        waveforms = F.pad(waveforms[:, :n_samples], (0, max(0, n_samples - waveforms.shape[1])))
        candidates = scores = None
        if count > 1:
            ranked, scores = self.rank(cond, waveforms, num_waveforms_to_keep, generator)
            waveforms = waveforms[ranked.reshape(-1)]  # [B * K, T]
            candidates = ranked - torch.arange(batch).unsqueeze(1) * count  # each prompt's own: [B, K] in [0, N)
        if clip_output:
            waveforms = torch.nan_to_num(waveforms, nan=0.0).clamp(-1.0, 1.0)
        audios = waveforms.numpy() if output_type == "np" else waveforms
        return MusicLDMPipelineOutput(audios, candidates, scores) if return_dict else (audios,)

    def _text_conditions(self, prompts: list[str] | None, negatives: list[str], prompt_embeds: torch.Tensor | None,
                         negative_prompt_embeds: torch.Tensor | None,
                         guided: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(conditional [B, D], unconditional or negative [B, D] or None without guidance)."""
        # Prompts and negatives are encoded in separate passes, as diffusers does: a batched
        # encoder pass changes the last bits of each row, and parity with diffusers is exact.
        dtype = self.text_encoder.text_model.dtype
        cond = self.encode_prompt(prompts) if prompt_embeds is None else prompt_embeds
        if not guided:
            return cond.to(self.device, dtype), None
        uncond = self.encode_prompt(negatives) if negative_prompt_embeds is None else negative_prompt_embeds
        return cond.to(self.device, dtype), uncond.to(self.device, dtype)

    def _step_callbacks(self, steps: int, callback: Callable | None, callback_steps: int,
                        on_step_end: Callable | None, tensor_inputs: Sequence[str]) -> Callable:
        """One function the loop calls after every step, running both kinds of callback as
        diffusers does; returns the (possibly replaced) latents and class labels."""
        order = getattr(self.scheduler, "order", 1)
        warmup = len(self.scheduler.timesteps) - steps * order
        last = len(self.scheduler.timesteps) - 1
        assert set(tensor_inputs) <= set(CALLBACK_TENSOR_INPUTS)

        def after_step(i: int, t: Any, latents: torch.Tensor, class_labels: torch.Tensor):
            if on_step_end is not None:
                available = {"latents": latents, "prompt_embeds": class_labels}
                returned = on_step_end(self, i, t, {name: available[name] for name in tensor_inputs}) or {}
                latents = returned.get("latents", latents)
                class_labels = returned.get("prompt_embeds", class_labels)
            if callback is not None and (i == last or (i + 1 > warmup and (i + 1) % order == 0)) \
                    and i % callback_steps == 0:
                callback(i // order, t, latents)
            return latents, class_labels

        return after_step
