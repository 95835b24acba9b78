//! The configuration text and its file name: turns the byte offsets that toml reports into
//! the `FILE:LINE:COL` every error and warning carries.
//!
//! Owns [`Location`] and the offset-to-position arithmetic; knows nothing of TOML or of
//! the settings themselves.

use std::fmt;

/// A position in a configuration file: 1-based line and column.
///
/// Columns count characters (Unicode scalar values), not bytes, so a caret under a
/// non-ASCII string still lands on the right key; a tab counts as one column.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// The text being parsed, with an index of where each line starts.
pub struct Source<'a> {
    name: &'a str,
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub fn new(name: &'a str, text: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Source {
            name,
            text,
            line_starts,
        }
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    /// The position of byte `offset`. Offsets past the end (toml reports an empty span at
    /// end of file) and offsets inside a multi-byte character are clamped, never a panic.
    pub fn locate(&self, offset: usize) -> Location {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        // The last line start at or before `offset`; line_starts[0] == 0 so there is one.
        let line_index = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let line_start = self.line_starts[line_index];
        Location {
            file: self.name.to_owned(),
            line: line_index + 1,
            column: self.text[line_start..offset].chars().count() + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, offset: usize) -> (usize, usize) {
        let location = Source::new("f.toml", text).locate(offset);
        (location.line, location.column)
    }

    #[test]
    fn first_byte_is_line_1_column_1() {
        assert_eq!(at("vrid = 5\n", 0), (1, 1));
        assert_eq!(at("", 0), (1, 1));
    }

    #[test]
    fn columns_restart_after_each_newline() {
        let text = "[global]\nnode_name = \"lb1\"\n\n[[instance]]\n";
        assert_eq!(at(text, 9), (2, 1));
        assert_eq!(at(text, 21), (2, 13));
        assert_eq!(at(text, 27), (3, 1));
        assert_eq!(at(text, 28), (4, 1));
    }

    #[test]
    fn a_newline_belongs_to_the_line_it_ends() {
        assert_eq!(at("ab\ncd", 2), (1, 3));
        assert_eq!(at("ab\r\ncd", 3), (1, 4));
        assert_eq!(at("ab\r\ncd", 5), (2, 2));
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        // "é" is two bytes; the 'x' after it is the third character.
        let text = "# é\nname = \"é\" x";
        assert_eq!(at(text, 5), (2, 1));
        assert_eq!(at(text, text.len() - 1), (2, 12));
    }

    #[test]
    fn offsets_inside_a_character_or_past_the_end_are_clamped() {
        assert_eq!(at("é", 1), (1, 1));
        assert_eq!(at("ab", 99), (1, 3));
        assert_eq!(at("ab\n", 3), (2, 1));
    }

    #[test]
    fn displays_as_file_line_column() {
        let location = Source::new("lb1.toml", "a\nb").locate(2);
        assert_eq!(location.to_string(), "lb1.toml:2:1");
    }
}
