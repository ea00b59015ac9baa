"""Representations: waveforms [B, C, T] <-> the frames [B, D, L] a generative model learns.

- ``base``: the ``Representation`` contract, its on-disk format, ``load_representation(dir)``.
- ``mel``: ``MelRepresentation``, normalised log-mel, decoded by a ``Vocoder`` or Griffin-Lim.
- ``vocoder``: the ConvNeXt + inverse-STFT vocoder (trained by ``cuecraft.train.vocoder``).
- ``griffinlim``: the no-weights decoder.
- ``autoencoder``: a user's pretrained diffusers ``AutoencoderKL`` + HiFi-GAN (MusicLDM's kind).
- ``spectral``: "same" STFT framing and its inverse, the Slaney mel filterbank.
"""

from cuecraft.models.representation.autoencoder import AutoencoderOptions, AutoencoderRepresentation
from cuecraft.models.representation.base import Representation, RepresentationInputError, load_representation
from cuecraft.models.representation.griffinlim import GriffinLimOptions
from cuecraft.models.representation.mel import MelOptions, MelRepresentation
from cuecraft.models.representation.vocoder import Vocoder, VocoderOptions

__all__ = ["AutoencoderOptions", "AutoencoderRepresentation", "GriffinLimOptions", "MelOptions",
           "MelRepresentation", "Representation", "RepresentationInputError", "Vocoder", "VocoderOptions",
           "load_representation"]
