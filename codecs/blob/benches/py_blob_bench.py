"""DataJoint Python 2.3.5 on the work of `benches/blob.rs` (run by `cargo xtask bench`)."""
import time

import numpy as np
from datajoint import blob

rng = np.random.default_rng(7)
arrays = [rng.standard_normal(1024 * 1024 // 8) for _ in range(100)]
t = time.perf_counter()
total = sum(len(blob.pack(a)) for a in arrays)
dt = time.perf_counter() - t
print(f"datajoint.blob.pack, 100 x 1 MiB random normal float64: {dt:.3f} s ({100 / dt:.1f} MiB/s), {total} bytes")

big = rng.standard_normal(64 * 1024 * 1024 // 8)
packed = blob.pack(big, compress=False)
t = time.perf_counter()
blob.unpack(packed)
dt = time.perf_counter() - t
print(f"datajoint.blob.unpack, 64 MiB float64 uncompressed: {dt:.3f} s ({64 / dt / 1024:.2f} GiB/s)")
t = time.perf_counter()
blob.pack(big, compress=False)
dt = time.perf_counter() - t
print(f"datajoint.blob.pack, 64 MiB float64 uncompressed: {dt:.3f} s ({64 / dt / 1024:.2f} GiB/s)")
