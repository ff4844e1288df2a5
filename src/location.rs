//! Where a problem is: a file with a row and column, as OPA's error bodies
//! carry it (`location: {file, row, col}`).

use serde::Serialize;

/// A position in a source file. Rows and columns count from 1; row 0
/// names the file alone, where nothing more precise is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The file, as given to the loader.
    pub file: String,
    /// The line, from 1.
    pub row: u32,
    /// The column, from 1 (0 when only the line is known).
    pub col: u32,
}

impl Location {
    /// A location from a file name and a 1-based row and column.
    pub fn new(file: impl Into<String>, row: usize, col: usize) -> Self {
        Location {
            file: file.into(),
            row: u32::try_from(row).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.row {
            0 => f.write_str(&self.file),
            _ => write!(f, "{}:{}:{}", self.file, self.row, self.col),
        }
    }
}
