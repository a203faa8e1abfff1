"""Helpers and fixtures of the freq tests shared by more than one layer."""
import io


def _png_size(data: bytes):
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img.verify()
        return img.format, img.size
