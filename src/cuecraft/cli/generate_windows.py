"""The options of ``cuecraft generate`` that continue or inpaint a recording (models with ``backbone.inpaint``)."""

from __future__ import annotations

import argparse
from typing import Any

from cuecraft.errors import GenerationInputError


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    """--continue / --inpaint (one of them), --region, --overlap."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--continue", dest="continue_from", metavar="FILE",
                        help="continue this recording by --seconds (default: the model's training length); the "
                             "output holds the recording, then the new audio (models trained with inpaint)")
    source.add_argument("--inpaint", metavar="FILE",
                        help="regenerate --region of this recording, keeping the rest; the output has its length "
                             "(models trained with inpaint)")
    parser.add_argument("--region", metavar="START:END",
                        help="with --inpaint: the span to regenerate, in seconds, e.g. 2.0:4.5")
    parser.add_argument("--overlap", type=float, metavar="S",
                        help="seconds each window keeps of the previous one as its known start, for --seconds "
                             "beyond the training length, --continue and --inpaint (default: a quarter of the "
                             "training length)")


def context_of(args: argparse.Namespace) -> Any:
    """The ``GenerationRequest.context`` of the options (None without --continue / --inpaint)."""
    from cuecraft.pipelines.recording import Recording

    if args.region is not None and args.inpaint is None:
        raise GenerationInputError("--region: only with --inpaint FILE (the recording whose span to regenerate)")
    if args.continue_from is not None:
        return Recording.continued(args.continue_from)
    if args.inpaint is not None:
        return Recording.inpainted(args.inpaint, args.region)
    return None
