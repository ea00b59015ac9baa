"""The labelled corpus: short synthesised pieces whose tempo, key, metre, instruments, chords,
melody and description are known exactly (``cuecraft corpus make``).

- ``spec``: ``PieceSpec`` and its parts (``Note``, ``Chord``, ``DrumHit``), the instrument ``PALETTE``.
- ``compose``: ``sample_piece(seed, seconds=...)``, deterministic from the seed.
- ``describe``: moods, genre and the natural-language description.
- ``synth`` / ``drums``: cuecraft's own synthesis (additive, FM, Karplus-Strong, drums).
- ``soundfont``: the MIDI (pretty_midi) rendered through a General MIDI soundfont (tinysoundfont).
- ``render``: ``render_piece(spec, sample_rate=..., soundfont=...)`` -> float32 [1, T].
- ``make``: ``make_corpus(out_dir, ...)``: WAVs + sidecars, atomic and resumable.
"""

from cuecraft.data.corpus.compose import BPM_RANGE, DRUM_PATTERNS, TIME_SIGNATURES, sample_piece
from cuecraft.data.corpus.make import CorpusReport, item_name, make_corpus, sidecar
from cuecraft.data.corpus.render import render_piece
from cuecraft.data.corpus.spec import PALETTE, Chord, DrumHit, Note, PieceSpec, Timbre, derive_seed

__all__ = [
    "BPM_RANGE", "DRUM_PATTERNS", "PALETTE", "TIME_SIGNATURES", "Chord", "CorpusReport", "DrumHit", "Note",
    "PieceSpec", "Timbre", "derive_seed", "item_name", "make_corpus", "render_piece", "sample_piece", "sidecar",
]
