"""Decode any source image to 8-bit RGB the same way every time, or fail with a clear message.

Handles EXIF orientation, palette, grey, 16-bit, CMYK and transparent images, and refuses
decompression bombs and truncated files instead of producing a half-decoded image.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import UserError

# Pillow's own default (about 89 megapixels); larger images are refused as potential bombs.
DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS

# Transparent pixels are composited over white, as image viewers show them.
BACKGROUND = (255, 255, 255)


def decode_rgb(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Bytes of an image file -> contiguous uint8 array (H, W, 3) in RGB order."""
    old_limit = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = max_pixels
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                image = ImageOps.exif_transpose(image)
                return _to_rgb(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(
            f"{name}: image is larger than {max_pixels:,} pixels, refused as a possible decompression bomb "
            "(raise the limit with --max-pixels if it is genuine)"
        ) from None
    except UnidentifiedImageError:
        raise UserError(f"{name}: not an image file, or a format Pillow cannot read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"{name}: corrupt or truncated image ({exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit


def _to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # High bit depth grey: scale to 8 bits rather than clipping to the top of the range.
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        grey = np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("1", "L") and "transparency" in image.info:
        image = image.convert("LA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        image = Image.alpha_composite(background, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def image_size(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) after EXIF orientation, decoding fully so that corrupt files fail here."""
    rgb = decode_rgb(data, name, max_pixels)
    return rgb.shape[1], rgb.shape[0]
