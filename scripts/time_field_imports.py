"""Import times of synthetic copies, in their real on-disk formats, of CIFAR-10 at full size (60,000
images, each protocol) and VOC 2007 (2,500 small JPEGs at 224 px): `python scripts/time_field_imports.py`
(seeded; writes under /tmp). The copies' md5s are not the real files', so torchvision's check is passed
as its own tests do."""

import json
import sys
import time
from pathlib import Path

import torchvision.datasets.cifar as cifar

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    from field_copies import write_cifar10, write_voc2007

    from hashdemo.data.field_sets import ImportOptions
    from hashdemo.data.imported import import_source
    from hashdemo.data.kinds import read_source

    cifar.check_integrity = lambda *args, **kwargs: True
    cache, out = Path("/tmp/field-imports-cache"), {}
    root = write_cifar10(Path("/tmp/field-imports-cifar"), per_class=6000)
    for protocol in ("cifar10", "cifar10-1", "cifar10-2"):
        started = time.perf_counter()
        source = read_source("cifar10", ImportOptions(root=root, protocol=protocol))
        meta = import_source(f"c-{protocol}", source, 32, cache)
        out[protocol] = {"seconds": round(time.perf_counter() - started, 1), "splits": meta["splits"]}
    voc = write_voc2007(Path("/tmp/field-imports-voc"), 2000, 500)
    started = time.perf_counter()
    meta = import_source("voc", read_source("voc2007", ImportOptions(root=voc)), 224, cache)
    out["voc2007 (2,500 JPEGs, 224 px)"] = {
        "seconds": round(time.perf_counter() - started, 1),
        "splits": meta["splits"],
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
