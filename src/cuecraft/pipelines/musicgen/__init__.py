"""MusicGen and MusicGen-melody driven by cuecraft's conditioning, on transformers' models.

- ``pipeline``: ``MusicGenPipeline`` (one call: conditions, tokens, EnCodec decoding) and its output.
- ``conditioning``: the T5 and chroma conditioners, provider and fuser over a model's own parts.
- ``pattern``: the codebook delay pattern. ``sampling``: guidance and token choice.
- ``checks``: ``MusicGenOptions`` and ``check_inputs`` (every problem at once).
- ``spec``: a model's kind, rates and limits, read from its configuration.
- ``loading``: model folders (transformers' layout), offline; ``audiocraft``: AudioCraft's
  checkpoint folders mapped onto the same model.

Nothing heavy is imported here: transformers is imported when a model is read.
"""

from cuecraft.pipelines.musicgen.checks import MusicGenOptions
from cuecraft.pipelines.musicgen.loading import MusicGenFolder, read_folder
from cuecraft.pipelines.musicgen.pipeline import MusicGenOutput, MusicGenPipeline
from cuecraft.pipelines.musicgen.spec import ChromaSettings, MusicGenSpec

__all__ = ["ChromaSettings", "MusicGenFolder", "MusicGenOptions", "MusicGenOutput", "MusicGenPipeline", "MusicGenSpec",
           "read_folder"]
