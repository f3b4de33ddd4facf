"""`python -m hashdemo <verb> ...` (also the `hashdemo` console script): the one command-line entry.

Each verb is a module of hashdemo.cli with a `main(argv)`; `python -m hashdemo <verb> --help` shows its
options. Modules are imported only for the verb asked for, so `--help` of one does not load torch.
"""

from __future__ import annotations

import importlib
import sys

VERBS = {
    "train": ("hashdemo.cli.train", "train a model on the outfits or an imported set (--device)"),
    "evaluate": ("hashdemo.cli.evaluate", "score a method on the query split (the README's numbers)"),
    "bench": ("hashdemo.cli.bench", "speed benchmarks against a peer measured in the same run"),
    "data": ("hashdemo.cli.data", "build the outfits, or import a data set (data import NAME --from KIND)"),
    "query": ("hashdemo.cli.query", "search or compose with the shipped models; prints JSON"),
    "gallery-codes": ("hashdemo.cli.gallery_codes", "encode the 100k gallery, or fill Milvus"),
}


def usage() -> str:
    lines = ["usage: python -m hashdemo <verb> [options]   (python -m hashdemo <verb> --help)", "", "verbs:"]
    lines += [f"  {verb:<14} {summary}" for verb, (_, summary) in VERBS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] not in VERBS:
        print(f"hashdemo: unknown verb {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(VERBS[argv[0]][0])
    result = module.main(argv[1:])
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    from hashdemo.runtime import configure_malloc

    configure_malloc()
    sys.exit(main())
