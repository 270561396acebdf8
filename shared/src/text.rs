//! Text from the media, the network or a certificate, made safe to show an
//! operator: every control character and every character that changes how
//! the rest of a line is shown (terminal escape sequences, line breaks,
//! carriage returns, bidirectional overrides and isolates, zero-width and
//! other invisible format characters) is written as a visible escape
//! (`\u{1b}`, `\n`, `\u{202e}`), so a hostile name cannot erase or forge
//! lines on a terminal, in a log or in a report. Everything else, including
//! letters of any script, is kept as it is.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not reach a terminal or a log as it is.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Bidirectional marks, embeddings, overrides and isolates.
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            // Zero-width and invisible format characters, line and
            // paragraph separators, the byte order mark, interlinear
            // annotation, tags and variation selectors used to smuggle text.
            | '\u{00ad}' | '\u{180e}' | '\u{200b}'..='\u{200d}' | '\u{2028}' | '\u{2029}'
            | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e007f}'
        )
}

/// `s` with every control and invisible format character escaped.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hidden) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if hidden(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`printable`] for bytes that may not be UTF-8 (a file name): invalid
/// sequences become U+FFFD first.
pub fn printable_bytes(b: &[u8]) -> String {
    printable(&String::from_utf8_lossy(b)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_could_forge_or_hide_text() {
        // An escape sequence that clears the line and paints a false success.
        let forged = "ballots/x\u{1b}[2K\r\u{1b}[32mImported bundle 3: all checks passed";
        assert_eq!(
            printable(forged),
            "ballots/x\\u{1b}[2K\\r\\u{1b}[32mImported bundle 3: all checks passed"
        );
        assert_eq!(printable("a\nerror: fake line"), "a\\nerror: fake line");
        // Right-to-left override: "txt.exe" shown as "exe.txt".
        assert_eq!(printable("ballot\u{202e}fdp.exe"), "ballot\\u{202e}fdp.exe");
        assert_eq!(printable("a\u{2066}b\u{2069}c"), "a\\u{2066}b\\u{2069}c");
        assert_eq!(printable("zero\u{200b}width"), "zero\\u{200b}width");
        assert_eq!(printable("del\u{7f} c1\u{9b}"), "del\\u{7f} c1\\u{9b}");
        assert_eq!(printable("tab\there"), "tab\\there");
        assert_eq!(printable_bytes(b"bad\xffname\n"), "bad\u{fffd}name\\n");
    }

    #[test]
    fn keeps_ordinary_text_of_any_script() {
        for s in [
            "General Election 2026",
            "Müller, José",
            "Ελλάδα",
            "東京都",
            "مرحبا",
            "",
        ] {
            assert!(matches!(printable(s), Cow::Borrowed(_)), "{s}");
        }
    }
}
