//! npm registry formats (filled in by the npm work).
