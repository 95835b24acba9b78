//! STUB: filled in by the issue 3 network work.
