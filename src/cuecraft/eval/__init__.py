"""Adherence evaluation: measure whether audio follows its conditions (``cuecraft eval``).

Metrics (library functions, each after its reference definition):
- ``tempo``: within 4 % (and at double / half tempo), Mustango's tempo bin TB and TBT.
- ``key``: exact (CK), with the relative key (CKD), the MIREX weighted score (mir_eval).
- ``melody``: MusicGen's chroma cosine similarity; frame pitch accuracy of a monophonic melody.
- ``rhythm``: onset F1 and beat F-measure (mir_eval).
- ``instrument`` / ``novelty`` / ``clap``: the lead-instrument classifier, SIM_AA and diversity, CLAP score.

Runs: ``prompts`` (prompt sets, the shipped held-out set), ``references`` (reference melodies and
ceiling audio), ``score`` (per item and over a set), ``run`` (generate or read, score, ceiling
and floors), ``report`` and ``plots`` (report.json, audio, PNG, the table).
"""
