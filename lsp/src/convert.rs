//! Between pbc's byte offsets and file paths and the protocol's positions and URIs.
//!
//! A position's `character` counts in the encoding agreed at initialization: UTF-32 (Unicode
//! scalar values, pbc's own column) when the client offers it, else UTF-16 code units (the
//! protocol's default). Lines are pbc's lines, 0-based.

use lsp_types::{Position, Range, Uri};
use pbc_compiler::span::SourceFile;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The unit a position's `character` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf16,
    Utf32,
}

impl Encoding {
    /// UTF-32 when the client lists it, else UTF-16 (which every client understands).
    pub fn negotiate(offered: Option<&[lsp_types::PositionEncodingKind]>) -> Self {
        let utf32 = offered.is_some_and(|o| o.contains(&lsp_types::PositionEncodingKind::UTF32));
        if utf32 {
            Encoding::Utf32
        } else {
            Encoding::Utf16
        }
    }

    pub fn kind(self) -> lsp_types::PositionEncodingKind {
        match self {
            Encoding::Utf16 => lsp_types::PositionEncodingKind::UTF16,
            Encoding::Utf32 => lsp_types::PositionEncodingKind::UTF32,
        }
    }

    fn units(self, c: char) -> u32 {
        match self {
            Encoding::Utf16 => c.len_utf16() as u32,
            Encoding::Utf32 => 1,
        }
    }
}

/// The position of a byte offset of a file.
pub fn position(f: &SourceFile, offset: u32, enc: Encoding) -> Position {
    let lc = f.line_col(offset);
    let start = f.line_start(lc.line).unwrap_or(0) as usize;
    let mut end = (offset as usize).min(f.text.len());
    while end > start && !f.text.is_char_boundary(end) {
        end -= 1;
    }
    let seg = f.text.get(start..end).unwrap_or("");
    let character = seg.chars().map(|c| enc.units(c)).sum();
    Position::new(lc.line.saturating_sub(1), character)
}

/// The range of a byte span of a file.
pub fn range(f: &SourceFile, start: u32, end: u32, enc: Encoding) -> Range {
    Range::new(position(f, start, enc), position(f, end, enc))
}

/// The byte offset of a position (clamped to its line, and to the text).
pub fn offset(f: &SourceFile, pos: Position, enc: Encoding) -> u32 {
    let Some(start) = f.line_start(pos.line.saturating_add(1)) else {
        return f.text.len() as u32;
    };
    let line = f.line_text(pos.line + 1);
    let mut units = 0;
    for (i, c) in line.char_indices() {
        if units >= pos.character {
            return start + i as u32;
        }
        units += enc.units(c);
    }
    start + line.len() as u32
}

/// The file a `file:` URI names; `None` for another scheme.
pub fn uri_to_path(uri: &Uri) -> Option<PathBuf> {
    let url = url::Url::parse(uri.as_str()).ok()?;
    if url.scheme() != "file" {
        return None;
    }
    url.to_file_path()
        .ok()
        .map(|p| pbc_compiler::fs::normalize(&p))
}

/// The `file:` URI of an absolute path.
pub fn path_to_uri(path: &Path) -> Option<Uri> {
    let url = url::Url::from_file_path(path).ok()?;
    Uri::from_str(url.as_str()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbc_compiler::span::FileId;

    #[test]
    fn a_character_outside_the_bmp_is_two_utf16_units_and_one_utf32_unit() {
        let f = SourceFile::new(FileId(0), "a.yaml".into(), "a: \"😀x\"\nb: 1\n".into());
        let x = f.text.find('x').unwrap() as u32;
        assert_eq!(position(&f, x, Encoding::Utf16), Position::new(0, 6));
        assert_eq!(position(&f, x, Encoding::Utf32), Position::new(0, 5));
        assert_eq!(offset(&f, Position::new(0, 6), Encoding::Utf16), x);
        assert_eq!(offset(&f, Position::new(0, 5), Encoding::Utf32), x);
        assert_eq!(offset(&f, Position::new(1, 1), Encoding::Utf16), x + 4);
        assert_eq!(
            offset(&f, Position::new(9, 0), Encoding::Utf16),
            f.text.len() as u32
        );
    }

    #[test]
    fn utf32_is_chosen_only_when_offered() {
        use lsp_types::PositionEncodingKind as K;
        assert_eq!(Encoding::negotiate(None), Encoding::Utf16);
        assert_eq!(
            Encoding::negotiate(Some(&[K::UTF8, K::UTF16])),
            Encoding::Utf16
        );
        assert_eq!(
            Encoding::negotiate(Some(&[K::UTF16, K::UTF32])),
            Encoding::Utf32
        );
    }
}
