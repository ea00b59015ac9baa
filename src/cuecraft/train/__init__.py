"""Training: the diffusion model trainer (``loop.train``; ``cuecraft train``), its checkpoints, EMA, precision,
DDP and LoRA; the vocoder of the mel representation (``vocoder``) and the spectral losses (``losses``)."""

from cuecraft.train.losses import MultiResolutionSTFTLoss, STFTDistance
from cuecraft.train.export import load_trained
from cuecraft.train.lora import add_lora, load_lora, save_lora
from cuecraft.train.loop import TrainResult, train
from cuecraft.train.vocoder import VocoderTrainOptions, VocoderTrainResult, train_vocoder

__all__ = ["TrainResult", "add_lora", "load_lora", "load_trained", "save_lora", "train", "MultiResolutionSTFTLoss", "STFTDistance", "VocoderTrainOptions", "VocoderTrainResult", "train_vocoder"]
