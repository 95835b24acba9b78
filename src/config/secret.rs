//! Secrets kept in files of their own (VRRPv2 `auth_pass_file`, MySQL `password_file`).
//!
//! Owns the one rule for reading them, so every secret file means the same thing: the whole
//! content minus one trailing newline, as bytes. Must not log or format the content: callers
//! get the bytes and nothing here prints them.

use std::io;
use std::path::Path;

/// The file's content minus one trailing newline (`\n` or `\r\n`), as bytes: a password need
/// not be UTF-8, and `echo secret > file` must give `secret`.
pub fn read_secret_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut secret = std::fs::read(path)?;
    if secret.last() == Some(&b'\n') {
        secret.pop();
        if secret.last() == Some(&b'\r') {
            secret.pop();
        }
    }
    Ok(secret)
}
