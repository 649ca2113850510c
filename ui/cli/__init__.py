"""The `rag` command: ingest, ask, chat, serve, status, eval, bench: the composition root, above `ingest` and `ui`.

`parser` declares the commands, `commands` runs the ones a user works with, `measure` evaluation, training
and benchmarks, and `output` is what they print (progress bars, answers, figures).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from rag.collections import Collections
from rag.errors import RagError
from rag.settings import Settings
from ui.cli.parser import build_parser


def main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 some files failed, 2 usage or settings, 3 bug).

    `settings`: the settings to run with (default: the `RAG_*` environment, read here).
    """
    args = build_parser().parse_args(argv)
    try:
        settings = settings or Settings.load()
        args.base_settings = settings  # what collections are named in; a command's own settings are its collection's
        if getattr(args, "collection", None) and getattr(args, "collection_here", False):
            settings = Collections(settings).settings_for(args.collection)
        return int(args.run(args, settings))
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rag ... | head` stopped reading: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second complaint at exit
        return 0
    except Exception as exc:  # a bug of ours: still one line, never a traceback
        print(f"error: unexpected {type(exc).__name__}: {exc}; please report this", file=sys.stderr)
        return 3
