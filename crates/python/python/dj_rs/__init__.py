"""dj-rs for Python: DataJoint's blob format, implemented in Rust.

``pack`` and ``unpack`` behave as DataJoint 2.3.5's ``datajoint.blob.pack`` and
``datajoint.blob.unpack``; ``install()`` makes DataJoint's own ``<blob>`` and ``<blob@>`` codecs
use them. ``gc``, ``verify`` and ``migrate`` run the ``dj`` command's storage tools (see
``dj_rs.tools``), and the wheel installs ``dj`` itself as a console script. See docs/python.md in
the dj-rs repository.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata as _metadata

from . import _native
from . import tools as _tools
from .tools import GcReport, MigrationReport, Report, VerifyReport, gc, migrate, verify

__all__ = [
    "BlobError",
    "GcReport",
    "MigrationReport",
    "Report",
    "ToolError",
    "VerifyReport",
    "gc",
    "migrate",
    "verify",
    "MatCell",
    "MatStruct",
    "TESTED_DATAJOINT_VERSIONS",
    "install",
    "installed",
    "max_blob_size",
    "pack",
    "pack_fast",
    "set_max_blob_size",
    "uninstall",
    "unpack",
]

#: DataJoint versions ``install()`` was tested with; others need ``install(force=True)``.
TESTED_DATAJOINT_VERSIONS = ("2.3.5",)

# DataJoint is imported on first use, not here: the `dj` console script imports this package and
# must start quickly and work whatever state DataJoint's own configuration is in.
_lazy: dict = {}


def _datajoint_error() -> type:
    """DataJoint's ``DataJointError`` when DataJoint is installed, else ``Exception``."""
    try:
        from datajoint.errors import DataJointError
    except ImportError:  # pragma: no cover - exercised only without DataJoint
        return Exception
    return DataJointError


def _mat_classes() -> tuple:
    """``(MatCell, MatStruct)``: DataJoint's classes when it is installed."""
    if "mat" not in _lazy:
        try:
            from datajoint.blob import MatCell, MatStruct
        except ImportError:  # pragma: no cover - exercised only without DataJoint
            import numpy as _np

            class MatCell(_np.ndarray):
                """A MATLAB cell array (an object array)."""

            class MatStruct(_np.recarray):
                """A MATLAB struct array."""

        _lazy["mat"] = (MatCell, MatStruct)
    return _lazy["mat"]


def _blob_error() -> type:
    if "BlobError" not in _lazy:

        class BlobError(_datajoint_error(), ValueError):
            """A blob that cannot be read, or a value that cannot be written.

            A ``DataJointError`` (when DataJoint is installed) and a ``ValueError``. ``offset``
            is the byte offset in the blob where reading failed, or None.
            """

            __module__ = "dj_rs"
            __qualname__ = "BlobError"

            def __init__(self, message: str, offset: int | None = None) -> None:
                super().__init__(message)
                self.offset = offset

        _lazy["BlobError"] = BlobError
    return _lazy["BlobError"]


def __getattr__(name: str):
    # BlobError, ToolError, MatCell and MatStruct are made on first use (see _lazy above).
    if name == "BlobError":
        return _blob_error()
    if name == "ToolError":
        return _tools._tool_error()
    if name in ("MatCell", "MatStruct"):
        return _mat_classes()[name == "MatStruct"]
    raise AttributeError(f"module 'dj_rs' has no attribute {name!r}")


def pack(obj, compress: bool = True, *, compat: bool = True) -> bytes:
    """Serialize ``obj`` as DataJoint's ``blob.pack(obj, compress)`` does.

    With ``compat=True`` (the default) the bytes are identical to DataJoint's. ``compat=False``
    compresses faster (zlib level 1, skipped when the data does not shrink); DataJoint reads
    both.
    """
    try:
        return _native.pack(obj, compress, compat, *_mat_classes())
    except _native.NativeBlobError as e:
        raise _blob_error()(*e.args) from None


def unpack(blob, squeeze: bool = False):
    """Deserialize a blob as DataJoint's ``blob.unpack(blob, squeeze)`` does.

    Returns None for None and, as DataJoint does, for a blob whose header is unknown. Malformed
    blobs raise :class:`BlobError <dj_rs.BlobError>` with the byte offset; a blob larger than
    :func:`max_blob_size` once inflated is refused before it is inflated.
    """
    if blob is None:
        return None
    if not isinstance(blob, bytes):
        blob = bytes(blob)
    # DataJoint's switch for legacy blobs from 32-bit MATLAB mYm, honoured as DataJoint does.
    djblob = sys.modules.get("datajoint.blob")
    dims32 = bool(getattr(djblob, "use_32bit_dims", False))
    try:
        return _native.unpack(blob, squeeze, *_mat_classes(), dims32)
    except _native.NativeBlobError as e:
        raise _blob_error()(*e.args) from None


def set_max_blob_size(n: int) -> None:
    """Set the largest (uncompressed) blob that ``unpack`` accepts, in bytes."""
    _native.set_max_blob_size(int(n))


def max_blob_size() -> int:
    """The largest (uncompressed) blob that ``unpack`` accepts, in bytes (default 4 GiB)."""
    return _native.max_blob_size()


_env_limit = os.environ.get("DJ_RS_BLOB_MAX_SIZE")
if _env_limit:
    set_max_blob_size(int(_env_limit))

_saved: dict | None = None


def installed() -> bool:
    """Whether ``install()`` is active."""
    return _saved is not None


def pack_fast(obj, compress: bool = True) -> bytes:
    """``pack(obj, compress, compat=False)``: what ``install(compat=False)`` installs."""
    return pack(obj, compress, compat=False)


def install(force: bool = False, *, compat: bool = True) -> None:
    """Make DataJoint's ``datajoint.blob.pack``/``unpack`` (used by its ``<blob>`` and
    ``<blob@>`` codecs) run on dj-rs, with byte-identical output. Undo with ``uninstall()``.

    ``compat=False`` installs :func:`pack_fast` instead: faster compression and other bytes,
    which DataJoint reads, but a ``<blob@>`` value then gets another content hash than DataJoint
    would give it, so it is stored again beside an identical value DataJoint wrote. Calling
    ``install`` again switches between the two. Refuses a DataJoint version not in
    :data:`TESTED_DATAJOINT_VERSIONS` unless ``force``.
    """
    global _saved
    import datajoint.blob as djblob

    version = _metadata.version("datajoint")
    if version not in TESTED_DATAJOINT_VERSIONS and not force:
        raise RuntimeError(
            f"dj_rs was tested with DataJoint {', '.join(TESTED_DATAJOINT_VERSIONS)}, "
            f"not {version}; use install(force=True) to install anyway"
        )
    if _saved is None:
        _saved = {"pack": djblob.pack, "unpack": djblob.unpack}
    djblob.pack = pack if compat else pack_fast
    djblob.unpack = unpack


def uninstall() -> None:
    """Restore DataJoint's own ``pack``/``unpack``. Does nothing when not installed."""
    global _saved
    if _saved is None:
        return
    import datajoint.blob as djblob

    djblob.pack = _saved["pack"]
    djblob.unpack = _saved["unpack"]
    _saved = None
