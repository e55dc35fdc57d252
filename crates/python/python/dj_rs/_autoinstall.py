"""Run from ``dj_rs_autoinstall.pth`` at interpreter start-up when ``DJ_RS_BLOB`` is set."""

import warnings

try:
    import os

    from . import install

    # DJ_RS_BLOB=fast installs the fast mode (other bytes; see install()).
    install(compat=os.environ.get("DJ_RS_BLOB", "").strip().lower() != "fast")
except Exception as exc:  # never break interpreter start-up
    warnings.warn(f"dj_rs: DJ_RS_BLOB is set but the blob codec was not installed: {exc}", stacklevel=1)
