"""NumPy's own .npy/.npz files for casdm's reader (include/casdm/data/npz.hpp), and what each holds.
usage: npz_ref.py DIR → DIR/*.npz, *.npy, a folder of PNGs, and DIR/expected.pt:
- stored.npz (numpy.savez): arr_0 uint8 [5, 6, 7, 3] (images NHWC), arr_1 float32 [2, 3], named int64 [4];
- deflated.npz (numpy.savez_compressed): the same arrays;
- gray.npz: arr_0 uint8 [4, 6, 6] (grayscale NHW); float.npz: arr_0 float32 NHWC (not samples);
- fortran.npy: float64 [3, 4, 2] in Fortran order; v2.npy: format version 2.0; bool.npy; half.npy;
- big.npy (big-endian float32), objects.npy (dtype object), struct.npy (a structured type),
  cut.npy (its data truncated), cut.npz (the archive truncated), flipped.npz (a byte of a deflated
  member changed: its CRC fails), notzip.npz (text), text.npz (a zip of a .txt);
- folder/: the images of stored.npz's arr_0 as PNGs (for the sample loader: the same uint8 images).
expected.pt: every array as a tensor (NumPy's layout, C order)."""
import io
import os
import sys
import zipfile

import numpy as np
import torch
from PIL import Image

out = sys.argv[1]
rng = np.random.default_rng(3)
images = rng.integers(0, 256, size=(5, 6, 7, 3), dtype=np.uint8)
floats = rng.normal(size=(2, 3)).astype(np.float32)
named = np.array([1, -2, 3 << 40, -(1 << 62)], dtype=np.int64)
np.savez(os.path.join(out, "stored.npz"), images, floats, named=named)
np.savez_compressed(os.path.join(out, "deflated.npz"), images, floats, named=named)
gray = rng.integers(0, 256, size=(4, 6, 6), dtype=np.uint8)
np.savez(os.path.join(out, "gray.npz"), gray)
np.savez(os.path.join(out, "float.npz"), images.astype(np.float32) / 255)
fortran = np.asfortranarray(rng.normal(size=(3, 4, 2)))
np.save(os.path.join(out, "fortran.npy"), fortran)
with open(os.path.join(out, "v2.npy"), "wb") as f:
    np.lib.format.write_array(f, floats, version=(2, 0))
bools = rng.integers(0, 2, size=(7,)).astype(bool)
np.save(os.path.join(out, "bool.npy"), bools)
halfs = rng.normal(size=(3, 2)).astype(np.float16)
np.save(os.path.join(out, "half.npy"), halfs)
np.save(os.path.join(out, "big.npy"), floats.astype(">f4"))
np.save(os.path.join(out, "objects.npy"), np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
np.save(os.path.join(out, "struct.npy"), np.zeros(3, dtype=[("x", "<f4"), ("y", "<i4")]))
whole = open(os.path.join(out, "fortran.npy"), "rb").read()
open(os.path.join(out, "cut.npy"), "wb").write(whole[:-8])
data = open(os.path.join(out, "stored.npz"), "rb").read()
open(os.path.join(out, "cut.npz"), "wb").write(data[: len(data) // 2])
# A deflated member with one byte of its compressed data changed: inflates (or not) to bytes whose CRC fails.
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    b = io.BytesIO()
    np.save(b, np.zeros((64, 64), dtype=np.float32) + np.arange(64, dtype=np.float32))
    z.writestr("arr_0.npy", b.getvalue())
raw = bytearray(buf.getvalue())
header = 30 + len("arr_0.npy")
raw[header + 40] ^= 0x01
open(os.path.join(out, "flipped.npz"), "wb").write(bytes(raw))
open(os.path.join(out, "notzip.npz"), "w").write("not a zip archive\n")
with zipfile.ZipFile(os.path.join(out, "text.npz"), "w") as z:
    z.writestr("notes.txt", "hello")
os.makedirs(os.path.join(out, "folder"))
for i, im in enumerate(images):
    Image.fromarray(im).save(os.path.join(out, "folder", f"{i:03d}.png"))
t = lambda a: torch.from_numpy(np.ascontiguousarray(a))
torch.save({"images": t(images), "floats": t(floats), "named": t(named), "gray": t(gray), "fortran": t(fortran),
            "bools": t(bools), "halfs": t(halfs)}, os.path.join(out, "expected.pt"))
