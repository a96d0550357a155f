"""A folder of images as quantization calibration inputs (``scaleprof export --calibration-images DIR``).

Every regular, non-hidden file in the folder must be an image Pillow reads; each is converted to
RGB, resized and centre-cropped to the export resolution (Pillow's ImageOps.fit) and normalised with
the ImageNet mean and deviation timm's classifiers use. Files are taken in name order, at most
``limit`` of them. An empty folder or a file that is no image is one BadInput line, before any
export work. Importing this module imports neither Pillow nor numpy.
"""

from __future__ import annotations

from pathlib import Path

from scaleprof.core.text import first_line
from scaleprof.errors import BadInput

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def image_files(folder) -> list[Path]:
    """The candidate files of ``folder`` in name order; BadInput for a missing or empty folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"--calibration-images {folder}: " + ("not a folder" if folder.exists() else "no such folder"))
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise BadInput(f"--calibration-images {folder}: the folder holds no images")
    return files


def check_images(folder, limit: int) -> list[Path]:
    """The first ``limit`` image files of ``folder``, each verified to be an image (its header
    read, not its pixels); BadInput naming the first that is not."""
    from PIL import Image, UnidentifiedImageError

    files = image_files(folder)[:limit]
    for path in files:
        try:
            with Image.open(path) as image:
                image.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise BadInput(f"--calibration-images: {path} is not an image Pillow can read "
                           f"({type(err).__name__})") from None
    return files


def load_images(folder, resolution: int, limit: int) -> list:
    """Up to ``limit`` images of ``folder`` as normalised 1 x 3 x R x R float32 arrays."""
    import numpy as np
    from PIL import Image, ImageOps

    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(IMAGENET_STD, dtype=np.float32)[:, None, None]
    arrays = []
    for path in check_images(folder, limit):
        try:
            with Image.open(path) as image:
                fitted = ImageOps.fit(image.convert("RGB"), (resolution, resolution))
        except (OSError, ValueError) as err:       # a header that verifies over pixels that do not decode
            raise BadInput(f"--calibration-images: {path} cannot be decoded ({first_line(err, 120)})") from None
        pixels = np.asarray(fitted, dtype=np.float32).transpose(2, 0, 1) / 255.0
        arrays.append(((pixels - mean) / std)[None].astype(np.float32))
    return arrays

