"""Re-encode an ImageFolder tree of JPEGs once more at a given quality (4:2:0), to estimate what the JPEG
compression of the CIFAR-10 copy costs the probes: a second generation's loss bounds the first's
(docs/protocol.md, "Calibration").

    python scripts/reencode_jpeg.py ../shared/datasets/cifar10 runs/cifar10-q75x2 --quality 75
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from PIL import Image
from tqdm import tqdm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--quality", type=int, default=75)
    args = parser.parse_args()
    files = sorted(p for p in args.source.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    for path in tqdm(files, unit="img"):
        target = args.dest / path.relative_to(args.source).with_suffix(".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        Image.open(path).convert("RGB").save(buffer, "JPEG", quality=args.quality, subsampling="4:2:0")
        target.write_bytes(buffer.getvalue())


if __name__ == "__main__":
    main()
