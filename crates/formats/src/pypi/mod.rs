//! PyPI simple-API formats (filled in by the PyPI work).
