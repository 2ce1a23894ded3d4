//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the corpus replay test.
//! Not part of the supported API.
