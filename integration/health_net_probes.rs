//! STUB: filled in by the issue 4 probe work.
