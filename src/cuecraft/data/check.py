"""``check_data``: what ``cuecraft data check`` reports on a folder, manifest or shards.

Counts, total duration, sample rates and channels, metadata field coverage (per field: the share
of usable items that have a value for it; AudioCraft's music fields are always listed) and every
unusable file with its reason. Audio is not decoded for folders and manifests (headers only, through
the cached dataset index); shard members are read in full, as that is the only way to reach them.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cuecraft.data.sidecar import MUSIC_FIELDS


@dataclass
class CheckReport:
    """The state of a data set."""

    data: str
    kind: str  # "folder", "manifest" or "shards"
    files: int  # audio files (or shard members) found
    usable: int
    total_seconds: float  # of usable files
    sample_rates: dict[int, int] = field(default_factory=dict)  # Hz -> files
    channels: dict[int, int] = field(default_factory=dict)  # channels -> files
    coverage: dict[str, float] = field(default_factory=dict)  # field -> share of usable files with it
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    index_file: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["unreadable"] = [{"path": p, "reason": r} for p, r in self.unreadable]
        out["sample_rates"] = {str(k): v for k, v in self.sample_rates.items()}
        out["channels"] = {str(k): v for k, v in self.channels.items()}
        return out


def _coverage(metadatas: list[dict[str, Any]]) -> dict[str, float]:
    names = list(MUSIC_FIELDS) + sorted({k for m in metadatas for k in m} - set(MUSIC_FIELDS))
    count = len(metadatas)
    return {name: (sum(1 for m in metadatas if m.get(name) is not None) / count if count else 0.0)
            for name in names}


def check_data(data: str | os.PathLike[str] | list[str], *, cache_dir: str | os.PathLike[str] | None = None) -> CheckReport:
    """Inspect a folder, a ``.jsonl`` / ``.txt`` manifest, or WebDataset shards (a ``.tar``, a glob
    or brace pattern, a folder of ``.tar`` files, or a list)."""
    from cuecraft.data.dataset import is_shards

    text = os.fspath(data) if not isinstance(data, (list, tuple)) else ""
    if is_shards(data):
        return _check_shards(data)
    from cuecraft.data.sources import scan

    result = scan(data, cache_dir=cache_dir)
    files = result.files
    return CheckReport(
        data=text, kind="folder" if Path(text).is_dir() else "manifest", files=result.found, usable=len(files),
        total_seconds=sum(f.duration for f in files),
        sample_rates=dict(sorted(Counter(f.sample_rate for f in files).items())),
        channels=dict(sorted(Counter(f.channels for f in files).items())),
        coverage=_coverage([f.metadata for f in files]), unreadable=list(result.problems),
        index_file=result.index.cache_file,
    )


def _check_shards(data: str | os.PathLike[str] | list[str]) -> CheckReport:
    from cuecraft._optional import require
    from cuecraft.data.segments import decode_bytes
    from cuecraft.data.shards import _AUDIO_SUFFIXES, expand_shards
    from cuecraft.data.sidecar import parse_music_info, parse_sidecar_text
    from cuecraft.errors import AudioReadError, DatasetError

    wds = require("webdataset", extra="data", purpose="reading WebDataset shards")
    report = CheckReport(data=os.fspath(data) if not isinstance(data, (list, tuple)) else ",".join(data),
                         kind="shards", files=0, usable=0, total_seconds=0.0)
    rates: Counter[int] = Counter()
    channels: Counter[int] = Counter()
    metadatas = []
    for shard in expand_shards(data):
        broken: list[Exception] = []

        def stop(error: Exception, broken: list[Exception] = broken) -> bool:
            broken.append(error)
            return False

        for sample in wds.tariterators.tarfile_samples([{"url": shard}], handler=stop):
            report.files += 1
            source = f"{shard}:{sample.get('__key__')}"
            try:
                audio = [k for k in sample if k.lower() in _AUDIO_SUFFIXES]
                if len(audio) != 1:
                    raise DatasetError(f"{source}: expected one audio member; found "
                                       f"{', '.join(k for k in sample if not k.startswith('__')) or 'nothing'}")
                metadata = {}
                if "json" in sample:
                    metadata = parse_music_info(parse_sidecar_text(sample["json"], f"{source}.json"), f"{source}.json")
                wav, rate = decode_bytes(sample[audio[0]], f"{source}.{audio[0]}")
            except (AudioReadError, DatasetError) as error:
                report.unreadable.append((source, str(error).removeprefix(source + ": ")))
                continue
            report.usable += 1
            report.total_seconds += wav.shape[-1] / rate
            rates[rate] += 1
            channels[wav.shape[0]] += 1
            metadatas.append(metadata)
        report.unreadable.extend((shard, f"cannot read the shard ({error})") for error in broken)
    report.sample_rates, report.channels = dict(sorted(rates.items())), dict(sorted(channels.items()))
    report.coverage = _coverage(metadatas)
    return report
