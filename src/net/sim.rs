//! SKELETON: in-memory segment, filled in with the router work.
