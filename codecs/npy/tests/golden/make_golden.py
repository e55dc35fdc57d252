"""Write the golden .npy files that codecs/npy/tests/golden.rs compares dj-codec-npy against.

Run from this folder with a Python that has numpy (any 1.x/2.x; these were made with 2.4):

    python make_golden.py

Every file is what `numpy.save(..., allow_pickle=False)` writes, except the few made on purpose to
be refused or to use another header version. `manifest.json` lists each file with its numpy dtype
(`str(arr.dtype)`, as DataJoint records it), shape, `fortran_order` and values in C order
(complex numbers as `[re, im]`, booleans as 0/1).
"""

import io
import json
import pickle

import numpy as np
from numpy.lib import format as npformat

DTYPES = [
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float32", "float64", "complex64", "complex128",
]


def values(arr):
    flat = np.ascontiguousarray(arr).reshape(-1)
    out = []
    for v in flat.tolist():
        if isinstance(v, complex):
            out.append([v.real, v.imag])
        elif isinstance(v, bool):
            out.append(int(v))
        else:
            out.append(v)
    return out


manifest = []


def save(name, arr, version=None, note=""):
    buf = io.BytesIO()
    if version is None:
        np.save(buf, arr, allow_pickle=False)
    else:
        npformat.write_array(buf, arr, version=version, allow_pickle=False)
    with open(name, "wb") as f:
        f.write(buf.getvalue())
    manifest.append({
        "file": name,
        "dtype": str(arr.dtype),
        "shape": list(arr.shape),
        "fortran_order": bool(arr.flags.f_contiguous and not arr.flags.c_contiguous),
        "big_endian": arr.dtype.byteorder == ">",
        "version": [1, 0] if version is None else list(version),
        "values": values(arr),
        "note": note,
    })


def sample(dtype):
    base = np.array([0, 1, -2, 3, 127, -128]) if not dtype.startswith(("uint", "bool")) \
        else np.array([0, 1, 2, 3, 127, 255])
    if dtype == "bool":
        return np.array([True, False, True, True, False, True]).reshape(2, 3)
    if dtype.startswith("complex"):
        return (base + 1j * base[::-1] / 2).astype(dtype).reshape(2, 3)
    if dtype.startswith("float"):
        return (base / 4).astype(dtype).reshape(2, 3)
    return base.astype(dtype).reshape(2, 3)


for dt in DTYPES:
    a = sample(dt)
    save(f"{dt}.npy", a, note="little endian, C order")
    if np.dtype(dt).itemsize > 1:
        save(f"{dt}_be.npy", a.astype(np.dtype(dt).newbyteorder(">")), note="big endian")

save("float64_fortran.npy", np.asfortranarray(np.arange(24.0).reshape(2, 3, 4)), note="fortran order")
save("int32_fortran_be.npy", np.asfortranarray(np.arange(6, dtype=">i4").reshape(2, 3)),
     note="fortran order, big endian")
save("float32_scalar.npy", np.array(1.5, dtype=np.float32), note="0-d")
save("int64_empty.npy", np.zeros((0, 3), dtype=np.int64), note="zero rows")
save("float64_1d.npy", np.linspace(0.0, 1.0, 5), note="1-d")
save("uint16_rows.npy", np.arange(40, dtype=np.uint16).reshape(10, 2, 2), note="rows for slicing")
save("float64_v2.npy", np.arange(4.0).reshape(2, 2), version=(2, 0), note="header version 2.0")
save("float64_v3.npy", np.arange(4.0).reshape(2, 2), version=(3, 0), note="header version 3.0")

with open("manifest.json", "w") as f:
    json.dump(manifest, f, indent=1)
    f.write("\n")

# Files that must be refused.
buf = io.BytesIO()
np.save(buf, np.array([1, "a", None], dtype=object), allow_pickle=True)
with open("bad_object.npy", "wb") as f:
    f.write(buf.getvalue())
with open("bad_pickle.npy", "wb") as f:
    f.write(pickle.dumps({"not": "an array"}, protocol=2))
buf = io.BytesIO()
np.save(buf, np.arange(4.0).reshape(2, 2))
with open("bad_truncated.npy", "wb") as f:
    f.write(buf.getvalue()[:-3])
