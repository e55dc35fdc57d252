//! Cross-crate integration tests of dj-rs live in this package's `tests/` folder: they go from a
//! `datajoint.json` through the registry to every linked store protocol, as an application does.
