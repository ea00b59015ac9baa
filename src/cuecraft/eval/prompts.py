"""Prompt sets for ``cuecraft eval``: reading and checking them, and the shipped held-out set.

A prompt set is JSON lines, one request per line, with these fields (all optional, at least one
control among prompt / bpm / key / instrument / drums / melody_seed / chords / time_signature):

    prompt        str    the text
    bpm           number beats per minute, > 0
    key           str    any spelling ``cuecraft.audio.key.parse_key`` reads ("A minor", "Am")
    instrument    str    the lead instrument
    drums         "on" | "off"
    seconds       number clip length, > 0
    melody_seed   int    the reference melody: corpus piece ``sample_piece(melody_seed, seconds)``
    chords        str    a progression: one chord per bar ("Am F C G", needs bpm; repeated to the
                         clip's end) or timed ("Am@0 F@2 C@4 G@6", seconds), read as the ``chords``
                         conditioner reads it; scored by ``cuecraft.eval.chords``
    time_signature str   the metre, "4/4", "3/4", "6/8" (with bpm: the asked beat grid, scored by
                         ``cuecraft.eval.rhythm.beat_grid``; without it, chords count 4/4 bars)
    downbeat_offset number seconds from the clip's start to the first downbeat (default 0; needs bpm)
    ceiling_seed  int    the corpus piece whose labels equal the row's (the ceiling renders it)

Sidecars of ``cuecraft eval --audio`` take the same fields plus ``melody_path`` (a reference
recording, relative to the sidecar) and ``reference_beats`` (seconds). Unknown fields and wrong
types are EvaluationInputErrors naming the file, the line and the field.

Sidecars may also be AudioCraft's (``MusicInfo``) or cuecraft's corpus sidecars (``cuecraft corpus
make``): their ``description`` is read as the prompt (where no ``prompt`` is given), ``duration`` as
``seconds``, a ``bpm`` / ``key`` of "" as none and a numeric ``bpm`` string as the number; a corpus
sidecar's chord list as the timed progression and its ``beats`` as ``reference_beats``. Their
other fields (``AUDIOCRAFT_FIELDS``, ``CORPUS_FIELDS``: title, artist, genre, moods, keywords, ...)
are not asked values and are ignored; the report lists them.

Bounds: a clip is at most ``MAX_SECONDS`` long (scoring memory grows with the length, about 13 MB
per second), bpm at most ``MAX_BPM``, at most ``MAX_REFERENCE_BEATS`` reference beats, each at
most 30,000 s (mir_eval's limit), texts at most ``MAX_TEXT`` characters.

The shipped set (``HELDOUT_PATH``, written by ``heldout_rows(HELDOUT_SEED)``): 100 rows, each made
from a corpus piece whose (lead instrument, key, drums) is one of the corpus' held-out
combinations (``cuecraft.data.corpus.split.heldout_combinations``: a model trained on the
corpus' training part never heard them), its bpm, key, instrument and drums those of the piece,
its ``ceiling_seed`` the piece, and on every third row ``melody_seed`` the piece too (so the
melody agrees with the other controls). The wordings are this module's own, not the corpus
descriptions' (``cuecraft.data.corpus.describe``); about a third name no tempo, a third no key.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from cuecraft._bounded import is_regular, parse_json, read_regular
from cuecraft._text import short_repr, shorten
from cuecraft.errors import ConditioningInputError, EvaluationInputError

HELDOUT_SEED = 14
HELDOUT_ROWS = 100
HELDOUT_SECONDS = 8
MELODY_EVERY = 3  # every third row carries a melody
MAX_PER_COMBINATION = 3  # rows per held-out combination, so that the 100 rows spread over them
MAX_SECONDS = 120.0  # a clip scored (asked, generated, read or rendered as the ceiling)
MAX_BPM = 1000.0
MAX_REFERENCE_BEATS = 100_000
MAX_BEAT_TIME = 30_000.0  # seconds; mir_eval refuses beat times past this
MAX_TEXT = 10_000  # characters of a prompt, a progression, a key, a path
MAX_SEED = 2**63 - 1
MAX_PROMPT_FILE_BYTES = 64 * 2**20
# Fields of AudioCraft's sidecars (MusicInfo, AudioMeta) and of cuecraft's corpus sidecars that are
# not asked values: accepted in --audio sidecars and ignored (the report lists them).
AUDIOCRAFT_FIELDS = ("title", "artist", "genre", "moods", "keywords", "name", "sample_rate", "file_extension",
                     "path", "info_path", "amplitude", "weight", "channels", "self_wav", "joint_embed")
CORPUS_FIELDS = ("mode", "tonic", "beats_per_bar", "instruments", "chord_instrument", "bass", "split",
                 "drum_pattern", "melody", "downbeats", "seed", "renderer", "corpus_version")
CONTROLS = ("prompt", "bpm", "key", "instrument", "drums", "melody_seed", "chords", "time_signature",
            "downbeat_offset")
DRUM_VALUES = ("on", "off")


def heldout_path() -> Path:
    """The shipped held-out prompt set, ``cuecraft/eval/prompts/heldout.jsonl``."""
    return Path(str(resources.files("cuecraft.eval") / "prompts" / "heldout.jsonl"))


@dataclass(frozen=True)
class PromptRow:
    """One evaluation request and what is known about its answer (see the module docstring)."""

    prompt: str | None = None
    bpm: float | None = None
    key: str | None = None  # canonical (parse_key)
    instrument: str | None = None
    drums: str | None = None  # "on" / "off"
    seconds: float | None = None
    melody_seed: int | None = None
    ceiling_seed: int | None = None
    chords: str | None = None  # a progression, "Am F C G" or "Am@0 F@2"
    time_signature: str | None = None  # "4/4", "3/4", "6/8"
    downbeat_offset: float | None = None  # seconds
    melody_path: str | None = None  # --audio sidecars only; absolute once read
    reference_beats: tuple[float, ...] | None = None  # --audio sidecars only

    def asked(self) -> dict[str, Any]:
        """The controls this row asks for (melody as its seed), None values left out."""
        return {name: getattr(self, name) for name in CONTROLS if getattr(self, name) is not None}

    @property
    def beats_per_bar(self) -> int:
        """Beats per bar of the asked metre (4 when none is asked)."""
        if self.time_signature is None:
            return 4
        from cuecraft.conditioners.timeline import parse_time_signature

        return parse_time_signature(self.time_signature).beats_per_bar

    def to_json(self) -> dict[str, Any]:
        row = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        if "reference_beats" in row:
            row["reference_beats"] = list(row["reference_beats"])
        return row


_FIELDS = {f.name for f in fields(PromptRow)}
_SIDECAR_ONLY = {"melody_path", "reference_beats"}


def _number(value: Any) -> bool:
    """A finite int or float (an int of 400 digits is a number, not an OverflowError)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return abs(value) < 1e300 if isinstance(value, int) else math.isfinite(value)


def _text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != "" and len(value) <= MAX_TEXT and "\0" not in value


def sidecar_fields(data: Any, where: str) -> tuple[Any, list[str]]:
    """An --audio sidecar's fields as ``parse_row`` reads them, and the names of the fields left out:
    AudioCraft's and the corpus' fields read as asked values where they are ones (module
    docstring), the rest of theirs ignored."""
    if not isinstance(data, dict):
        return data, []
    values = dict(data)
    if "description" in values:
        description = values.pop("description")
        if values.get("prompt") is None and isinstance(description, str) and description.strip():
            values["prompt"] = description
    if "duration" in values:
        duration = values.pop("duration")
        if values.get("seconds") is None:
            values["seconds"] = duration
    for name in ("bpm", "key"):
        if isinstance(values.get(name), str) and values[name].strip() in ("", "None"):
            values[name] = None  # AudioCraft writes "" for an unknown value
    if isinstance(values.get("bpm"), str) and len(values["bpm"]) <= 32:
        try:
            values["bpm"] = float(values["bpm"])
        except ValueError:
            pass  # refused by parse_row, with the field named
    chords = values.get("chords")
    if isinstance(chords, list) and chords and all(isinstance(c, dict) for c in chords):  # a corpus sidecar's
        try:
            values["chords"] = " ".join(f"{c['symbol']}@{float(c['start']):g}" for c in chords)
        except (KeyError, TypeError, ValueError):
            raise EvaluationInputError(f"{where}: field 'chords': a list must hold objects with 'symbol' and "
                                       "'start' (a corpus sidecar's chords)") from None
    if "beats" in values:
        beats = values.pop("beats")
        if values.get("reference_beats") is None:
            values["reference_beats"] = beats
    ignored = sorted(k for k in values if k in AUDIOCRAFT_FIELDS or k in CORPUS_FIELDS)
    return {k: v for k, v in values.items() if k not in ignored}, ignored


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_row(data: Any, where: str, *, sidecar: bool = False) -> PromptRow:
    """A PromptRow from one JSON object; ``where`` ("file.jsonl line 3") starts every error."""
    if not isinstance(data, dict):
        raise EvaluationInputError(f"{where}: expected a JSON object; got {type(data).__name__}")
    allowed = _FIELDS if sidecar else _FIELDS - _SIDECAR_ONLY
    unknown = sorted(set(data) - allowed)
    if unknown:
        extra = "; AudioCraft's and the corpus' fields in sidecars only" if not sidecar else ""
        raise EvaluationInputError(f"{where}: unknown field {short_repr(unknown[0])}; allowed: "
                                   f"{', '.join(sorted(allowed))}{extra}")
    values = dict(data)
    checks = {
        "prompt": (_text, f"a non-empty string of at most {MAX_TEXT:,} characters"),
        "bpm": (lambda v: _number(v) and 0 < v <= MAX_BPM, f"a number of beats per minute in (0, {MAX_BPM:g}]"),
        "key": (lambda v: isinstance(v, str) and len(v) <= MAX_TEXT, "a string such as 'A minor'"),
        "instrument": (_text, "a non-empty string"),
        "drums": (lambda v: v in DRUM_VALUES, "'on' or 'off'"),
        "seconds": (lambda v: _number(v) and 0 < v <= MAX_SECONDS,
                    f"a number of seconds in (0, {MAX_SECONDS:g}] (the longest clip cuecraft eval scores)"),
        "melody_seed": (lambda v: _int(v) and 0 <= v <= MAX_SEED, "an int >= 0 (at most 2**63 - 1)"),
        "ceiling_seed": (lambda v: _int(v) and 0 <= v <= MAX_SEED, "an int >= 0 (at most 2**63 - 1)"),
        "melody_path": (_text, "a path string"),
        "reference_beats": (lambda v: isinstance(v, list) and len(v) <= MAX_REFERENCE_BEATS
                            and all(_number(t) and 0 <= t <= MAX_BEAT_TIME for t in v),
                            f"a list of at most {MAX_REFERENCE_BEATS:,} times in seconds, each in "
                            f"[0, {MAX_BEAT_TIME:,.0f}] (mir_eval's limit)"),
        "chords": (_text, "a progression such as 'Am F C G' or 'Am@0 F@2'"),
        "time_signature": (lambda v: isinstance(v, str) and len(v) <= MAX_TEXT,
                           "a metre such as '4/4', '3/4' or '6/8'"),
        "downbeat_offset": (lambda v: _number(v) and 0 <= v <= MAX_SECONDS, f"seconds >= 0, at most {MAX_SECONDS:g}"),
    }
    for name, value in values.items():
        check, allowed_text = checks[name]
        if value is not None and not check(value):
            raise EvaluationInputError(f"{where}: field {name!r} must be {allowed_text}; got {short_repr(value)}")
    if values.get("key") is not None:
        from cuecraft.audio.key import parse_key

        try:
            values["key"] = parse_key(values["key"])
        except ConditioningInputError:
            raise EvaluationInputError(f"{where}: field 'key': cannot read {short_repr(values['key'])} as a key; "
                                       "write e.g. 'A minor', 'F# major', 'Bbm'") from None
    _check_timing(values, where)
    if values.get("reference_beats") is not None:
        values["reference_beats"] = tuple(float(t) for t in values["reference_beats"])
    for name in ("bpm", "seconds", "downbeat_offset"):
        if values.get(name) is not None:
            values[name] = float(values[name])
    if not any(values.get(name) is not None for name in CONTROLS) and values.get("melody_path") is None:
        raise EvaluationInputError(f"{where}: asks for nothing; give at least one of {', '.join(CONTROLS)}")
    return PromptRow(**values)


def _check_timing(values: dict[str, Any], where: str) -> None:
    """The metre, the progression and the first downbeat of a row, read as scoring will read them."""
    from cuecraft.conditioners.timeline import parse_time_signature
    from cuecraft.eval.chords import parse_progression

    if values.get("time_signature") is not None:
        try:
            values["time_signature"] = str(parse_time_signature(values["time_signature"]))
        except ConditioningInputError as error:
            raise EvaluationInputError(f"{where}: field {error}") from None
    if values.get("chords") is not None:
        progression = parse_progression(values["chords"], f"{where}: field 'chords'")
        if progression[0][1] is None and values.get("bpm") is None:
            raise EvaluationInputError(f"{where}: field 'chords': one chord per bar needs 'bpm' (or timed chords "
                                       "such as 'Am@0 F@2')")
    if values.get("downbeat_offset") is not None and values.get("bpm") is None:
        raise EvaluationInputError(f"{where}: field 'downbeat_offset' needs 'bpm' (it places the asked beat grid)")


def load_prompts(path: str | Path | None = None) -> list[PromptRow]:
    """The rows of a prompt set (default: the shipped held-out set), every row checked."""
    path = heldout_path() if path is None else Path(path)
    if not is_regular(path):
        raise EvaluationInputError(f"{shorten(str(path), 300)}: no such prompt file; give a .jsonl file of requests "
                                   "(see cuecraft eval --help)")
    rows = []
    try:
        lines = read_regular(path, MAX_PROMPT_FILE_BYTES).decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise EvaluationInputError(f"{path}: cannot read the prompt file ({error})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = parse_json(line)
        except ValueError as error:  # not JSON, nested too deep, an int past Python's digit limit
            raise EvaluationInputError(f"{path} line {number}: not JSON ({error})") from None
        rows.append(parse_row(data, f"{path} line {number}"))
    if not rows:
        raise EvaluationInputError(f"{path}: holds no prompt rows")
    return rows


# --- the shipped held-out set -------------------------------------------------------------------------------------

_OPENINGS = ("Give me", "I'd like", "Could you make", "Please write", "Make", "Compose", "Produce", "Generate",
             "Sketch", "Play me")
_SHAPES = ("short cue", "little number", "instrumental sketch", "miniature", "vignette", "theme", "passage",
           "ditty", "interlude", "motif study")
_DRUMS_ON = ("backed by a drum kit", "over a steady kit", "with a beat underneath", "kit included",
             "drummer playing along", "with percussion driving it")
_DRUMS_OFF = ("and leave the drums out", "drumless", "percussion-free", "no kit at all", "with silence where drums "
              "would be", "unaccompanied by any drummer")
_MODE_COLOURS = {"major": ("sunny harmony", "a bright major-mode colour"),
                 "minor": ("shadowy harmony", "a darker minor-mode colour")}
_SLOW, _MID, _FAST = (("unhurried", "leisurely", "sleepy"), ("moderate", "walking-pace", "even-paced"),
                      ("quick", "brisk-paced", "racing"))


def _tempo_word(rng: np.random.Generator, bpm: int) -> str:
    return str(rng.choice(_SLOW if bpm < 90 else _MID if bpm < 130 else _FAST))


def _wording(rng: np.random.Generator, *, bpm: int, key: str, instrument: str, drums: str) -> str:
    """One prompt in this module's own phrasings; ~1/3 without the bpm, ~1/3 without the key."""
    tonic, mode = key.split()
    say_bpm, say_key = rng.random() >= 1 / 3, rng.random() >= 1 / 3
    tempo = (str(rng.choice([f"around {bpm} beats per minute", f"tempo marking {bpm}", f"{bpm} beats a minute",
                             f"metronome on {bpm}"])) if say_bpm else _tempo_word(rng, bpm) + " pace")
    tonality = (str(rng.choice([f"key of {tonic} {mode}", f"{tonic}-{mode} tonality", f"home key {key}",
                                f"centred on {tonic} ({mode})"])) if say_key
                else str(rng.choice(_MODE_COLOURS[mode])))
    drum_words = str(rng.choice(_DRUMS_ON if drums == "on" else _DRUMS_OFF))
    opening, shape = str(rng.choice(_OPENINGS)), str(rng.choice(_SHAPES))
    forms = (
        lambda: f"{opening} {'an' if shape[0] in 'aeiou' else 'a'} {shape} led by the {instrument}, {tempo}, "
                f"{tonality}, {drum_words}",
        lambda: f"{instrument.capitalize()} up front; {tonality}; {tempo}; {drum_words}",
        lambda: f"{opening} something for {instrument}: {tempo}, {drum_words}, {tonality}",
        lambda: f"{shape.capitalize()} where the {instrument} sings the tune - {tonality}, {tempo}, {drum_words}",
        lambda: f"{tempo.capitalize()}, {tonality}, {drum_words}; the tune goes to the {instrument}",
    )
    return forms[int(rng.integers(len(forms)))]()


def heldout_rows(seed: int = HELDOUT_SEED, *, rows: int = HELDOUT_ROWS, seconds: int = HELDOUT_SECONDS) -> list[dict]:
    """The held-out prompt rows, deterministic from ``seed`` (see the module docstring): corpus
    pieces ``sample_piece(derive_seed(seed, i), seconds)`` for i = 0, 1, ... whose combination is
    held out, at most ``MAX_PER_COMBINATION`` per combination, until ``rows`` are found."""
    from cuecraft.data.corpus import derive_seed, sample_piece
    from cuecraft.data.corpus.split import heldout_combinations

    heldout = heldout_combinations()
    rng = np.random.default_rng(seed)
    used: dict[tuple[str, str, str], int] = {}
    out: list[dict] = []
    index = 0
    while len(out) < rows:
        piece_seed = derive_seed(seed, index)
        index += 1
        spec = sample_piece(piece_seed, seconds=seconds)
        combination = (spec.lead, spec.key, "on" if spec.drums else "off")
        if combination not in heldout or used.get(combination, 0) >= MAX_PER_COMBINATION:
            continue
        used[combination] = used.get(combination, 0) + 1
        row = {"prompt": _wording(rng, bpm=spec.bpm, key=spec.key, instrument=spec.lead, drums=combination[2]),
               "bpm": spec.bpm, "key": spec.key, "instrument": spec.lead, "drums": combination[2], "seconds": seconds}
        if len(out) % MELODY_EVERY == 0:
            row["melody_seed"] = piece_seed
        row["ceiling_seed"] = piece_seed
        out.append(row)
    return out


def write_heldout(path: str | Path | None = None, seed: int = HELDOUT_SEED) -> Path:
    """Write ``heldout_rows(seed)`` as JSON lines (atomically); default: the shipped file."""
    from cuecraft._files import atomic_write

    path = heldout_path() if path is None else Path(path)
    with atomic_write(path, "w", encoding="utf-8") as handle:
        for row in heldout_rows(seed):
            handle.write(json.dumps(row) + "\n")
    return path
