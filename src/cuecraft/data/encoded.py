"""Pre-encoded datasets: run every segment of a dataset through a representation once, keep the frames.

Shapes: a waveform is float32 [C, T]; an item's frames (latents) are [D, L] (D = ``latent_dim``,
L = ``representation.frames(T)``).

``encode_dataset(dataset, representation, out_dir)`` writes, per item of a *sequential* dataset
(every segment of every file, the last one of each file zero-padded, or whole files):

    OUT/encoded.json                    format + version, the representation (kind, settings,
                                        fingerprint), sample_rate, hop, frame_rate, latent_dim,
                                        segment length, precision, counts, complete
    OUT/items.jsonl                     the index: one line per item, in (path, seek_time) order
    OUT/items/ab/abcdef0123456789.safetensors   latents [D, L] (float32 or float16), valid_frames [1]
    OUT/items/ab/abcdef0123456789.json          metadata (sidecar fields, seconds_start,
                                        seconds_total ...), path, seek_time, frames, bytes

An item's name is a hash of (path, seek_time), so it does not depend on the order items arrive in
(any worker count, shards included). Each file is written atomically, the safetensors before the
JSON, and the JSON records the size of the safetensors: an item is complete when its JSON exists
and the size matches. A run that stops (Ctrl-C, a crash, a kill) resumes where it stopped: complete
items are skipped, anything else of an item (a safetensors without its JSON, a temporary file) is
removed and encoded again. ``encoded.json`` is written first (``complete: false``) and rewritten
at the end with the counts (``complete: true``), after ``items.jsonl``.

One folder holds one representation: running again with a representation of another fingerprint,
or other segment settings or precision, is a DatasetError naming both. The fingerprint is a hash
of what ``encode`` depends on: the representation's saved settings and tensors, without the
parts only ``decode`` reads (a mel representation's vocoder and Griffin-Lim settings, an
autoencoder's VAE decoder and vocoder), so training a vocoder after encoding does not invalidate
the encoded data.

Read the folder with ``cuecraft.data.encoded_dataset.EncodedDataset``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

import torch

from cuecraft._bounded import MAX_SIDECAR_BYTES, parse_json, read_regular
from cuecraft._files import atomic_write, read_versioned_json
from cuecraft._optional import require
from cuecraft.data.item import AudioItem
from cuecraft.data.segments import stable_seed
from cuecraft.errors import DatasetError

FORMAT = "cuecraft.encoded"
VERSION = 1
INFO_FILE = "encoded.json"
INDEX_FILE = "items.jsonl"
ITEMS_DIR = "items"
MAX_WORKERS = 64  # reader processes: a million would fork until the machine dies
MAX_BATCH = 4_096  # segments encoded together
Precision = Literal["float32", "float16"]
PRECISIONS = {"float32": torch.float32, "float16": torch.float16}
# Settings (JSON paths) and tensor-name prefixes that only decoding reads, per representation kind.
DECODE_ONLY: dict[str, tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]] = {
    "mel": ((("vocoder",), ("options", "griffin_lim")), ("vocoder.",)),
    "autoencoder": ((), ("vocoder.", "vae.decoder.", "vae.post_quant_conv.")),
}


# -- the representation -------------------------------------------------------------------------
def representation_settings(representation: Any) -> dict[str, Any]:
    """The representation's saved settings (its ``representation.json``), from ``save`` into a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="cuecraft-representation-") as folder:
        representation.save(folder)
        path = Path(folder) / "representation.json"
        if not path.is_file():
            raise DatasetError(f"{type(representation).__name__}.save wrote no representation.json; "
                               f"encode_dataset needs a cuecraft Representation")
        return json.loads(path.read_text(encoding="utf-8"))


def representation_fingerprint(representation: Any, settings: dict[str, Any] | None = None) -> str:
    """A hex digest of what ``representation.encode`` depends on (module docstring)."""
    settings = json.loads(json.dumps(settings if settings is not None else representation_settings(representation)))
    paths, prefixes = DECODE_ONLY.get(settings.get("kind"), ((), ()))
    for path in paths:  # drop the decode-only settings
        node = settings
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for name, tensor in sorted(representation.state_dict().items()):
        if name.startswith(prefixes):
            continue
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"|{name}|{tensor.dtype}|{list(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:32]


# -- item files ---------------------------------------------------------------------------------
def item_name(path: str, seek_time: float) -> str:
    """The stored name of the segment of ``path`` starting at ``seek_time`` seconds."""
    return f"{stable_seed(path, round(float(seek_time), 6)):016x}"


def item_files(out_dir: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    """(safetensors, json) of item ``name`` in the encoded folder ``out_dir``."""
    folder = Path(out_dir) / ITEMS_DIR / name[:2]
    return folder / f"{name}.safetensors", folder / f"{name}.json"


def read_item_json(path: Path) -> dict[str, Any] | None:
    """An item's JSON, or None when it is missing or unreadable."""
    try:  # a FIFO or a planted huge or deep file is unreadable, never waited on
        record = parse_json(read_regular(path, MAX_SIDECAR_BYTES * 4))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def complete_record(out_dir: str | os.PathLike[str], name: str) -> dict[str, Any] | None:
    """The JSON of item ``name`` when the item is complete (JSON present, safetensors of the recorded size)."""
    tensors, meta = item_files(out_dir, name)
    record = read_item_json(meta)
    if record is None:
        return None
    try:
        return record if tensors.stat().st_size == record.get("bytes") else None
    except OSError:
        return None


def _json_value(value: Any) -> Any:
    """``json.dumps`` default: NumPy / torch scalars and small arrays as Python values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def write_item(out_dir: str | os.PathLike[str], name: str, item: AudioItem, latents: torch.Tensor,
               frames: int, precision: Precision) -> dict[str, Any]:
    """Write one item (safetensors, then JSON); returns its index line."""
    safetensors = require("safetensors.torch", extra="text", purpose="writing pre-encoded datasets")
    stored = latents.to(PRECISIONS[precision]).contiguous()
    if not torch.isfinite(stored).all():
        raise DatasetError(f"{item.path} at {item.seek_time:.3f} s: latents not finite in {precision} "
                           f"(largest magnitude {latents.abs().max().item():.4g}); use --precision float32")
    payload = safetensors.save({"latents": stored, "valid_frames": torch.tensor([frames], dtype=torch.int64)})
    tensors, meta = item_files(out_dir, name)
    with atomic_write(tensors) as handle:
        handle.write(payload)
    record = {"path": item.path, "seek_time": item.seek_time, "frames": frames, "length": int(stored.shape[-1]),
              "samples": item.length, "sample_rate": item.sample_rate, "bytes": len(payload),
              "metadata": item.metadata}
    try:
        text = json.dumps(record, default=_json_value, ensure_ascii=False)
    except (TypeError, ValueError) as error:
        raise DatasetError(f"{item.path}: its metadata cannot be stored as JSON ({error}); pre-encoded datasets "
                           f"keep metadata as JSON: give str, number, bool, list or dict values") from None
    with atomic_write(meta, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    return index_line(name, record)


def index_line(name: str, record: dict[str, Any]) -> dict[str, Any]:
    """The line of ``items.jsonl`` for an item's JSON ``record``."""
    return {"name": name, "path": record["path"], "seek_time": record["seek_time"], "frames": record["frames"],
            "length": record["length"], "samples": record["samples"]}


def remove_temporaries(out_dir: str | os.PathLike[str]) -> int:
    """Delete the temporary files an interrupted ``atomic_write`` left; returns how many."""
    removed = 0
    for path in list((Path(out_dir) / ITEMS_DIR).rglob(".*.tmp")) + list(Path(out_dir).glob(".*.tmp")):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


# -- encoded.json -------------------------------------------------------------------------------
def read_info(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked ``encoded.json`` of ``out_dir`` (a DatasetError when missing, of another format or version)."""
    return read_versioned_json(
        Path(out_dir) / INFO_FILE, format=FORMAT, version=VERSION, error=DatasetError,
        what="a cuecraft pre-encoded dataset",
        missing=f"not a pre-encoded dataset; make one with `cuecraft data encode DATA --representation DIR "
                f"--out {out_dir}`")


def write_info(out_dir: str | os.PathLike[str], info: dict[str, Any]) -> None:
    with atomic_write(Path(out_dir) / INFO_FILE, "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2)
        handle.write("\n")


def check_compatible(out_dir: str | os.PathLike[str], existing: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Refuse to add items of another representation or other segment settings to ``out_dir``."""
    have, want = existing.get("representation", {}), wanted["representation"]
    if have.get("fingerprint") != want["fingerprint"]:
        raise DatasetError(
            f"{out_dir} holds frames of the {have.get('kind')!r} representation with fingerprint "
            f"{have.get('fingerprint')}; the given {want['kind']!r} representation has fingerprint "
            f"{want['fingerprint']}. One folder holds one representation: give another --out, or the "
            f"representation the folder was encoded with")
    for key in ("sample_rate", "channels", "hop", "latent_dim", "segment_samples", "precision"):
        if existing.get(key) != wanted[key]:
            raise DatasetError(f"{out_dir} was encoded with {key} {existing.get(key)!r}; this run has "
                               f"{wanted[key]!r}. Give the same settings to resume, or another --out")


# -- encoding -----------------------------------------------------------------------------------
@dataclass
class EncodeReport:
    """What ``encode_dataset`` did."""

    out_dir: str
    items: int = 0  # items in the finished index
    encoded: int = 0  # items encoded by this run
    skipped: int = 0  # items already complete (an earlier run)
    repaired: int = 0  # torn items (and temporary files) removed and encoded again
    dropped: int = 0  # None items (unreadable with on_error="skip", or rejected by the hook)
    frames: int = 0  # valid frames in the index
    seconds: float = 0.0  # valid audio seconds in the index
    elapsed: float = 0.0  # wall seconds of this run
    fingerprint: str = ""

    def summary(self) -> str:
        rate = self.encoded / self.elapsed if self.elapsed > 0 else 0.0
        return (f"{self.out_dir}: {self.items} items ({self.seconds:.1f} s of audio, {self.frames} frames): "
                f"{self.encoded} encoded, {self.skipped} already done, {self.repaired} torn repaired, "
                f"{self.dropped} dropped; {self.elapsed:.1f} s ({rate:.1f} items/s)")


def _check_inputs(dataset: Any, representation: Any, batch_size: int, workers: int, precision: str) -> None:
    problems = []
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH:
        problems.append(f"batch_size must be a positive int, at most {MAX_BATCH:,}; got {batch_size!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or not 0 <= workers <= MAX_WORKERS:
        problems.append(f"workers must be an int >= 0, at most {MAX_WORKERS} (processes); got {workers!r}")
    if precision not in PRECISIONS:
        problems.append(f"precision must be one of {sorted(PRECISIONS)}; got {precision!r}")
    for name in ("encode", "save", "frames", "sample_rate", "channels", "latent_dim", "hop"):
        if not hasattr(representation, name):
            problems.append(f"representation must be a cuecraft Representation (it has no {name!r}); "
                            f"got {type(representation).__name__}")
            break
    options = getattr(dataset, "options", None)
    if options is not None and not problems:
        if options.mode != "sequential" and options.segment_frames is not None:
            problems.append("the dataset must give sequential segments (mode='sequential') or whole files "
                            "(segment_seconds=None), so that every part of every file is encoded once; "
                            "got mode='random'")
        if options.sample_rate != representation.sample_rate or options.channels != representation.channels:
            problems.append(f"the dataset gives {options.sample_rate} Hz x {options.channels} channel(s); the "
                            f"representation takes {representation.sample_rate} Hz x {representation.channels}: "
                            f"open the dataset at the representation's rate and channels")
    if problems:
        raise DatasetError("encode_dataset: " + "; ".join(problems))


def _planned_names(dataset: Any) -> list[str] | None:
    """Each item's name without reading audio (map-style AudioDatasets), else None."""
    if not (hasattr(dataset, "locate") and hasattr(dataset, "files") and hasattr(dataset, "options")):
        return None
    rate = dataset.options.sample_rate
    names = []
    for index in range(len(dataset)):
        number, start = dataset.locate(index)
        names.append(item_name(dataset.files[number].path, start / rate))
    return names


def _batches(dataset: Any, indices: list[int] | None, batch_size: int, workers: int) -> Iterator[list[Any]]:
    """Lists of items (None included) from a DataLoader over ``dataset`` (only ``indices`` when given)."""
    source = dataset if indices is None else torch.utils.data.Subset(dataset, indices)
    loader = torch.utils.data.DataLoader(source, batch_size=batch_size, num_workers=workers, collate_fn=list)
    yield from loader


def _device_of(representation: Any) -> torch.device:
    tensor = next(iter(list(representation.parameters()) + list(representation.buffers())), None)
    return torch.device("cpu") if tensor is None else tensor.device


@torch.no_grad()
def _encode_group(representation: Any, items: list[AudioItem], device: torch.device) -> list[tuple[torch.Tensor, int]]:
    """(latents [D, L] on the CPU, valid frames) of items of equal length, encoded as one batch."""
    wav = torch.stack([item.wav for item in items]).to(device)  # [B, C, T]
    latents = representation.encode(wav).float().cpu()  # [B, D, L]
    if latents.dim() != 3 or latents.shape[1] != representation.latent_dim:
        raise DatasetError(f"{type(representation).__name__}.encode returned {list(latents.shape)}; "
                           f"expected [B, {representation.latent_dim}, L]")
    return [(latents[i], min(representation.frames(max(item.length, 1)), latents.shape[-1]))
            for i, item in enumerate(items)]


def _progress(total: int | None, stream: TextIO | None) -> Any:
    """A tqdm bar on ``stream`` (tqdm comes with transformers), or nothing."""
    try:
        from tqdm import tqdm
    except ImportError:
        stream = None
    return tqdm(total=total, desc="data encode", unit="item", file=stream, dynamic_ncols=True, mininterval=0.5,
                disable=stream is None) if stream is not None else _NoBar()


class _NoBar:
    def update(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


def encode_dataset(dataset: Any, representation: Any, out_dir: str | os.PathLike[str], *, batch_size: int = 8,
                   workers: int = 0, precision: Precision = "float32", progress: TextIO | None = None,
                   source: str | None = None) -> EncodeReport:
    """Encode every item of ``dataset`` with ``representation`` into ``out_dir`` (module docstring).

    dataset: a sequential cuecraft dataset (``open_dataset(path, mode="sequential", ...)`` at the
        representation's sample rate and channels) or any iterable of AudioItems.
    batch_size: items encoded together (items of unequal length are encoded apart).
    workers: DataLoader processes reading and resampling audio (0: in this process).
    precision: how the latents are stored; they are read back as float32.
    progress: a stream for the progress bar (None: none). source: recorded as the data's origin.
    Returns an EncodeReport; resumes an interrupted run in the same ``out_dir``.
    """
    started = time.perf_counter()
    _check_inputs(dataset, representation, batch_size, workers, precision)
    out_dir = Path(out_dir)
    settings = representation_settings(representation)
    fingerprint = representation_fingerprint(representation, settings)
    options = getattr(dataset, "options", None)
    segment = None if options is None else options.segment_frames
    info = {
        "format": FORMAT, "version": VERSION, "complete": False,
        "representation": {"kind": settings.get("kind"), "fingerprint": fingerprint, "settings": settings},
        "sample_rate": representation.sample_rate, "channels": representation.channels,
        "hop": representation.hop, "frame_rate": representation.sample_rate / representation.hop,
        "latent_dim": representation.latent_dim, "segment_samples": segment,
        "segment_seconds": None if segment is None else segment / representation.sample_rate,
        "segment_frames": None if segment is None else representation.frames(segment),
        "precision": precision, "source": source if source is not None else str(getattr(dataset, "root", "")),
    }
    if (out_dir / INFO_FILE).exists():
        check_compatible(out_dir, read_info(out_dir), info)
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise DatasetError(f"{out_dir}: the folder is not empty and holds no {INFO_FILE}; pre-encoding writes "
                           f"into an empty (or new) folder, or resumes one it made")
    write_info(out_dir, info)
    report = EncodeReport(out_dir=str(out_dir), fingerprint=fingerprint)
    report.repaired = remove_temporaries(out_dir)
    lines: dict[str, dict[str, Any]] = {}

    names = _planned_names(dataset)
    pending = None
    if names is not None:  # skip complete items without reading their audio
        pending = []
        for index, name in enumerate(names):
            record = complete_record(out_dir, name)
            if record is not None:
                lines[name] = index_line(name, record)
                report.skipped += 1
            else:
                pending.append(index)
    total = len(pending) if pending is not None else (len(dataset) if hasattr(dataset, "__len__") else None)
    bar = _progress(total, progress)
    representation.eval()
    device = _device_of(representation)
    try:
        for batch in _batches(dataset, pending, batch_size, workers):
            items = [item for item in batch if item is not None]
            report.dropped += len(batch) - len(items)
            todo = []
            for item in items:
                name = item_name(item.path, item.seek_time)
                record = None if pending is not None else complete_record(out_dir, name)
                if record is not None:
                    lines[name] = index_line(name, record)
                    report.skipped += 1
                    continue
                if any(p.exists() for p in item_files(out_dir, name)):  # torn: no JSON, or a size mismatch
                    for path in item_files(out_dir, name):
                        path.unlink(missing_ok=True)
                    report.repaired += 1
                todo.append((name, item))
            for group in _equal_lengths(todo):
                encoded = _encode_group(representation, [item for _, item in group], device)
                for (name, item), (latents, frames) in zip(group, encoded):
                    lines[name] = write_item(out_dir, name, item, latents, frames, precision)
                    report.encoded += 1
            bar.update(len(batch))
    finally:
        bar.close()
    ordered = sorted(lines.values(), key=lambda line: (line["path"], line["seek_time"]))
    with atomic_write(out_dir / INDEX_FILE, "w", encoding="utf-8") as handle:
        for line in ordered:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    report.items = len(ordered)
    report.frames = sum(line["frames"] for line in ordered)
    report.seconds = sum(line["samples"] for line in ordered) / representation.sample_rate
    info.update(complete=True, counts={"items": report.items, "files": len({line["path"] for line in ordered}),
                                       "frames": report.frames, "seconds": report.seconds,
                                       "dropped": report.dropped})
    write_info(out_dir, info)
    report.elapsed = time.perf_counter() - started
    return report


def _equal_lengths(todo: list[tuple[str, AudioItem]]) -> list[list[tuple[str, AudioItem]]]:
    """``todo`` split into runs of items whose waveforms have the same length (one encode batch each)."""
    groups: list[list[tuple[str, AudioItem]]] = []
    for entry in todo:
        if groups and groups[-1][0][1].wav.shape == entry[1].wav.shape:
            groups[-1].append(entry)
        else:
            groups.append([entry])
    return groups
