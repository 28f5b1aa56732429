"""``python -m deepstrata.inference``: see cli.py. A Ctrl+C while the packages are still loading (before the
command line's own signal handling starts) ends quietly too: nothing has been written yet."""
import sys

# Guarded: worker processes of a local Dask cluster (--dask local) import this module again as __mp_main__.
if __name__ == "__main__":
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("\nerror: cancelled (SIGINT) while starting; nothing was written", file=sys.stderr)
        sys.exit(130)

    sys.exit(main())
