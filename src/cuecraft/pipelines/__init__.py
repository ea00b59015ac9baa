"""End-to-end generation pipelines built on cuecraft's conditioning.

- ``musicldm``: ``MusicLDMPipeline``, text-to-music with MusicLDM's components (CLAP text
  embedding in the ``global`` role -> UNet -> VAE -> mel -> HiFi-GAN), and its output type.
- ``checks``: the pipeline's ``check_inputs``.
- ``ranking``: CLAP text-audio ranking of each prompt's own candidates.
- ``schedulers``: diffusers schedulers by name, from the pipeline's scheduler config.
- ``presets``: named generation settings (``diffusers`` defaults, ``original`` MusicLDM).
- ``loading``: local diffusers-format model directories.
- ``musicgen``: ``MusicGenPipeline``, MusicGen and MusicGen-melody (transformers' models) driven by
  cuecraft's T5 and chroma conditioners, provider, fuser and group guidance; model folders in
  transformers' or AudioCraft's layout.

Nothing heavy is imported here: diffusers and transformers are imported when a pipeline is built.
"""

from cuecraft.pipelines.musicgen import MusicGenOutput, MusicGenPipeline
from cuecraft.pipelines.musicldm import MusicLDMPipeline, MusicLDMPipelineOutput
from cuecraft.pipelines.presets import PRESETS, MusicLDMPreset, musicldm_preset
from cuecraft.pipelines.ranking import Ranking, rank_candidates
from cuecraft.pipelines.schedulers import SCHEDULERS, make_scheduler

__all__ = [
    "MusicGenOutput",
    "MusicGenPipeline",
    "MusicLDMPipeline",
    "MusicLDMPipelineOutput",
    "MusicLDMPreset",
    "PRESETS",
    "Ranking",
    "SCHEDULERS",
    "make_scheduler",
    "musicldm_preset",
    "rank_candidates",
]
