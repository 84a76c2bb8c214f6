"""Reads a PNG with PIL (which checks every chunk's CRC) and asserts its size, mode, pixels and
description: png_ref.py PNG WIDTH HEIGHT MODE DESCRIPTION PIXELS_NPY_OR_-"""
import sys

import numpy as np
from PIL import Image, ImageFile

ImageFile.LOAD_TRUNCATED_IMAGES = False
path, w, h, mode, description = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
im = Image.open(path)
im.load()
assert im.size == (w, h), im.size
assert im.mode == mode, im.mode
assert im.text.get("Description") == description, im.text
if len(sys.argv) > 6:  # the pixels as raw bytes, row-major
    expected = np.fromfile(sys.argv[6], dtype=np.uint8)
    got = np.asarray(im, dtype=np.uint8).reshape(-1)
    assert got.shape == expected.shape and (got == expected).all(), (got, expected)
print("ok")
