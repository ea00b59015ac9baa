"""Writing a corpus: ``<name>.wav`` + ``<name>.json`` per item, ``corpus.json``, ``manifest.jsonl`` (all
items) and its two parts ``train.jsonl`` and ``heldout.jsonl`` (see ``cuecraft.data.corpus.split``).

Item k of a corpus made with ``seed`` is ``sample_piece(derive_seed(seed, k), seconds=...)``, so
each item is the same whatever the number of items or workers. Every file is written atomically,
the WAV before its sidecar: an item is complete when its sidecar names its seed, sample rate,
renderer and duration and its WAV has the right length; a rerun skips complete items and
renders the rest (a stopped run resumes). The WAVs are 16-bit PCM, mono.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

from cuecraft._bounded import MAX_SIDECAR_BYTES, is_regular, parse_json, read_regular
from cuecraft._files import atomic_write
from cuecraft._optional import require
from cuecraft.data.corpus.compose import SECONDS_RANGE, sample_piece
from cuecraft.data.corpus.render import SAMPLE_RATE_RANGE, render_piece
from cuecraft.data.corpus.spec import PieceSpec, derive_seed
from cuecraft.data.corpus.split import split_of
from cuecraft.errors import ConfigError, DatasetError

CORPUS_VERSION = 2  # 2: "drums" is "on"/"off" (a list label), "split" names the part
MAX_ITEMS = 1_000_000  # the manifest rows are kept in memory (about 1 KB each)
SYNTH_RENDERER = "cuecraft-synth"
_SETTINGS = ("corpus_version", "seed", "seconds", "sample_rate", "renderer")  # must agree to resume


@dataclass(frozen=True)
class CorpusReport:
    out_dir: str
    items: int  # items in the corpus after this run
    rendered: int  # rendered by this run
    skipped: int  # already complete, left as they were
    audio_seconds: float  # of the items rendered by this run
    render_seconds: float  # CPU seconds spent rendering them (summed over workers)
    wall_seconds: float
    realtime_factor: float  # audio_seconds / render_seconds: speed on one core (nan if none rendered)
    renderer: str

    def summary(self) -> str:
        speed = "-" if self.rendered == 0 else f"{self.realtime_factor:.0f}x real time per core"
        return (f"{self.out_dir}: {self.items} items ({self.rendered} rendered, {self.skipped} already complete), "
                f"{self.audio_seconds:.0f} s of audio rendered in {self.wall_seconds:.1f} s wall, {speed}, "
                f"renderer {self.renderer}")


def item_name(index: int) -> str:
    return f"piece_{index:06d}"


def renderer_name(soundfont: str | os.PathLike[str] | None) -> str:
    return SYNTH_RENDERER if soundfont is None else f"soundfont:{Path(soundfont).name}"


def sidecar(spec: PieceSpec, *, sample_rate: int, renderer: str, name: str) -> dict:
    """The sidecar of a piece: AudioCraft's field names where they exist, then cuecraft's."""
    return {
        # AudioCraft (MusicInfo / AudioInfo)
        "title": f"{spec.moods[0]} {spec.genre} in {spec.key}",
        "artist": "cuecraft corpus",
        "key": spec.key,
        "bpm": float(spec.bpm),
        "genre": spec.genre,
        "moods": list(spec.moods),
        "keywords": [*spec.instruments, spec.genre, *spec.moods, spec.mode, spec.time_signature]
                    + (["drums"] if spec.drums else []),
        "description": spec.description,
        "instrument": spec.lead,
        "name": name,
        "duration": spec.seconds,
        "sample_rate": sample_rate,
        # cuecraft
        "mode": spec.mode,
        "tonic": spec.tonic,
        "time_signature": spec.time_signature,
        "beats_per_bar": spec.beats_per_bar,
        "instruments": list(spec.instruments),
        "chord_instrument": spec.chord_instrument,
        "bass": spec.bass,
        "drums": "on" if spec.drums else "off",
        "split": split_of(spec.lead, spec.key, "on" if spec.drums else "off"),
        "drum_pattern": spec.drum_pattern,
        "chords": [asdict(c) for c in spec.chords],
        "melody": [{"pitch": n.pitch, "start": n.start, "end": n.end} for n in spec.melody],
        "beats": list(spec.beats),
        "downbeats": list(spec.downbeats),
        "seed": spec.seed,
        "renderer": renderer,
        "corpus_version": CORPUS_VERSION,
    }


def _check(items, seconds, seed, sample_rate, soundfont, workers) -> None:
    problems = []

    def integer(name, value, low, high):
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            problems.append(f"{name}: expected an int in [{low}, {high}]; got {value!r}")

    integer("items", items, 1, MAX_ITEMS)
    integer("seed", seed, 0, 2**63 - 1)
    integer("sample_rate", sample_rate, *SAMPLE_RATE_RANGE)
    integer("workers", workers, 1, 256)
    low, high = SECONDS_RANGE
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not low <= seconds <= high:
        problems.append(f"seconds: expected a number in [{low:g}, {high:g}]; got {seconds!r}")
    if soundfont is not None:
        from cuecraft.data.corpus.soundfont import check_soundfont
        from cuecraft.errors import ConditioningInputError

        try:
            check_soundfont(soundfont)
        except ConditioningInputError as error:
            problems.append(f"soundfont: {error}")
    if problems:
        raise ConfigError(problems)


def _read_json(path: Path) -> dict:
    """A JSON object the corpus wrote; OSError / ValueError for anything else (a FIFO or a device
    planted in --out is refused, never waited on)."""
    value = parse_json(read_regular(path, MAX_SIDECAR_BYTES * 16))
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object; got {type(value).__name__}")
    return value


def _is_complete(out: Path, name: str, expected: dict) -> bool:
    try:
        meta = _read_json(out / f"{name}.json")
        if any(meta.get(k) != v for k, v in expected.items()) or any(k not in meta for k in _MANIFEST_FIELDS):
            return False
        soundfile = require("soundfile", extra="audio", purpose="writing the corpus WAVs")
        if not is_regular(out / f"{name}.wav"):
            return False
        info = soundfile.info(str(out / f"{name}.wav"))
        return info.frames == round(expected["duration"] * expected["sample_rate"]) and info.channels == 1
    except (OSError, ValueError, RuntimeError):
        return False


def _make_item(out: str, index: int, seed: int, seconds: float, sample_rate: int, soundfont: str | None) -> tuple:
    """Render and write item ``index``; returns (index, manifest row, audio seconds, CPU seconds)."""
    soundfile = require("soundfile", extra="audio", purpose="writing the corpus WAVs")
    name, item_seed = item_name(index), derive_seed(seed, index)
    spec = sample_piece(item_seed, seconds=seconds)
    require("scipy.signal", extra="data", purpose="the corpus synthesis")  # imported before the clock starts
    started = time.process_time()
    wav = render_piece(spec, sample_rate=sample_rate, soundfont=soundfont)  # [1, T]
    cpu = time.process_time() - started
    with atomic_write(Path(out) / f"{name}.wav") as handle:
        soundfile.write(handle, wav[0].numpy(), sample_rate, format="WAV", subtype="PCM_16")
    meta = sidecar(spec, sample_rate=sample_rate, renderer=renderer_name(soundfont), name=name)
    with atomic_write(Path(out) / f"{name}.json", "w", encoding="utf-8") as handle:
        json.dump(meta, handle, indent=1)
    return index, _manifest_row(name, meta), spec.seconds, cpu


_MANIFEST_FIELDS = ("duration", "sample_rate", "key", "bpm", "description", "instrument", "drums", "split")


def _manifest_row(name: str, meta: dict) -> dict:
    return {"path": f"{name}.wav", **{k: meta[k] for k in _MANIFEST_FIELDS}}


def _settings(seed, seconds, sample_rate, soundfont) -> dict:
    return {"corpus_version": CORPUS_VERSION, "seed": seed, "seconds": float(seconds), "sample_rate": sample_rate,
            "renderer": renderer_name(soundfont)}


def _check_existing(out: Path, settings: dict) -> None:
    path = out / "corpus.json"
    if not path.exists():
        return
    try:
        existing = _read_json(path)["settings"]
        if not isinstance(existing, dict):
            raise TypeError(f"settings is {type(existing).__name__}")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DatasetError(f"{path}: not a cuecraft corpus file ({error}); remove it or choose another --out") from None
    for field in _SETTINGS:
        if existing.get(field) != settings[field]:
            raise DatasetError(f"{path}: field {field!r} is {existing.get(field)!r} in the corpus there but "
                               f"{settings[field]!r} was asked; resume with the same settings or choose another --out")


def make_corpus(out_dir: str | os.PathLike[str], *, items: int, seconds: float, seed: int, sample_rate: int = 16000,
                soundfont: str | os.PathLike[str] | None = None, workers: int = 1) -> CorpusReport:
    """Write items 0..items-1 of the corpus of ``seed`` into ``out_dir`` (created), skipping complete ones.

    ``seconds`` per item (1-600), ``sample_rate`` in Hz, ``soundfont`` a General MIDI .sf2 (None:
    cuecraft's synthesis), ``workers`` processes. Bad arguments: ConfigError listing every problem;
    an ``out_dir`` holding a corpus made with other settings: DatasetError.
    """
    _check(items, seconds, seed, sample_rate, soundfont, workers)
    soundfont = None if soundfont is None else os.fspath(Path(soundfont).expanduser().resolve())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = _settings(seed, seconds, sample_rate, soundfont)
    _check_existing(out, settings)
    wall = time.perf_counter()
    rows: dict[int, dict] = {}
    todo = []
    for index in range(items):
        expected = {"seed": derive_seed(seed, index), "sample_rate": sample_rate, "duration": float(seconds),
                    "renderer": settings["renderer"], "corpus_version": CORPUS_VERSION}
        name = item_name(index)
        if _is_complete(out, name, expected):
            rows[index] = _manifest_row(name, _read_json(out / f"{name}.json"))
        else:
            todo.append(index)
    audio = cpu = 0.0
    jobs = [(str(out), index, seed, float(seconds), sample_rate, soundfont) for index in todo]
    if workers == 1 or len(jobs) <= 1:
        results = (_make_item(*job) for job in jobs)
        for index, row, item_audio, item_cpu in results:
            rows[index], audio, cpu = row, audio + item_audio, cpu + item_cpu
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            for index, row, item_audio, item_cpu in pool.map(_make_item, *zip(*jobs), chunksize=8):
                rows[index], audio, cpu = row, audio + item_audio, cpu + item_cpu
    for manifest, part in (("manifest.jsonl", None), ("train.jsonl", "train"), ("heldout.jsonl", "heldout")):
        with atomic_write(out / manifest, "w", encoding="utf-8") as handle:
            for index in range(items):
                if part is None or rows[index]["split"] == part:
                    handle.write(json.dumps(rows[index]) + "\n")
    wall = time.perf_counter() - wall
    report = CorpusReport(out_dir=str(out), items=items, rendered=len(todo), skipped=items - len(todo),
                          audio_seconds=audio, render_seconds=cpu, wall_seconds=wall,
                          realtime_factor=audio / cpu if cpu > 0 else float("nan"), renderer=settings["renderer"])
    with atomic_write(out / "corpus.json", "w", encoding="utf-8") as handle:
        json.dump({"settings": settings, "items": items, "names": f"{item_name(0)} .. {item_name(items - 1)}",
                   "last_run": {k: (None if isinstance(v, float) and v != v else v)  # NaN is not JSON
                                for k, v in asdict(report).items()}}, handle, indent=1)
    return report
