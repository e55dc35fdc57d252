"""Run from ``dj_rs_autoinstall.pth`` at interpreter start-up when ``DJ_RS_BLOB`` is set."""

import warnings

try:
    from . import install

    install()
except Exception as exc:  # never break interpreter start-up
    warnings.warn(f"dj_rs: DJ_RS_BLOB is set but the blob codec was not installed: {exc}", stacklevel=1)
