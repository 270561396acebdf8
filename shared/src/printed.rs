//! Documents meant to be printed: the board's canvass report and the
//! voter's receipt, as PDF.
//!
//! A document is a list of blocks (title, headings, paragraphs, fixed-width
//! lines, signature lines) laid out on US Letter pages with the PDF
//! standard fonts (Helvetica and Courier, PDF 32000-1 section 9.6.2.2),
//! which every reader has, so nothing is embedded. Text is set in
//! WinAnsiEncoding: characters outside it are printed as `?`. Paragraphs
//! are wrapped with the fonts' published advance widths. The file is
//! written by lopdf, carries a title and no dates or document id, and is
//! the same bytes for the same blocks.

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, Stream, StringFormat};

const PAGE_W: f32 = 612.0;
const PAGE_H: f32 = 792.0;
const MARGIN: f32 = 54.0;
const FOOTER_Y: f32 = 30.0;

/// Helvetica's advance widths (thousandths of the size) for ' '..='~',
/// from Adobe's AFM.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];
/// Helvetica-Bold's, likewise.
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667,
    611, 778, 722, 278, 556, 722, 611, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556,
    278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
];
/// Courier: every glyph is 600.
const COURIER: u16 = 600;
/// Latin-1 letters beyond ASCII: no wider than this in either Helvetica.
const WIDE_LATIN1: u16 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Font {
    Regular,
    Bold,
    Mono,
}

impl Font {
    fn resource(self) -> &'static str {
        match self {
            Font::Regular => "F1",
            Font::Bold => "F2",
            Font::Mono => "F3",
        }
    }

    fn width(self, byte: u8) -> u16 {
        let table = match self {
            Font::Regular => &HELVETICA,
            Font::Bold => &HELVETICA_BOLD,
            Font::Mono => return COURIER,
        };
        match byte {
            0x20..=0x7e => table
                .get(usize::from(byte - 0x20))
                .copied()
                .unwrap_or(WIDE_LATIN1),
            _ => WIDE_LATIN1,
        }
    }

    /// The width of `text` in points at `size`.
    fn measure(self, text: &[u8], size: f32) -> f32 {
        text.iter().map(|&b| f32::from(self.width(b))).sum::<f32>() * size / 1000.0
    }
}

/// The characters WinAnsiEncoding puts at 0x80..=0x9f (PDF 32000-1
/// annex D.2), in order; `None` where it has none.
const WIN_ANSI_HIGH: [Option<char>; 32] = [
    Some('\u{20ac}'),
    None,
    Some('\u{201a}'),
    Some('\u{0192}'),
    Some('\u{201e}'),
    Some('\u{2026}'),
    Some('\u{2020}'),
    Some('\u{2021}'),
    Some('\u{02c6}'),
    Some('\u{2030}'),
    Some('\u{0160}'),
    Some('\u{2039}'),
    Some('\u{0152}'),
    None,
    Some('\u{017d}'),
    None,
    None,
    Some('\u{2018}'),
    Some('\u{2019}'),
    Some('\u{201c}'),
    Some('\u{201d}'),
    Some('\u{2022}'),
    Some('\u{2013}'),
    Some('\u{2014}'),
    Some('\u{02dc}'),
    Some('\u{2122}'),
    Some('\u{0161}'),
    Some('\u{203a}'),
    Some('\u{0153}'),
    None,
    Some('\u{017e}'),
    Some('\u{0178}'),
];

/// `text` in WinAnsiEncoding: ASCII, Latin-1 and the typographic marks
/// (dashes, quotes, the euro) as WinAnsi codes, anything else (and control
/// characters) as `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match u32::from(c) {
            0x20..=0x7e | 0xa0..=0xff => u8::try_from(u32::from(c)).unwrap_or(b'?'),
            _ => WIN_ANSI_HIGH
                .iter()
                .position(|&w| w == Some(c))
                .and_then(|i| u8::try_from(0x80 + i).ok())
                .unwrap_or(b'?'),
        })
        .collect()
}

/// One part of a document.
#[derive(Debug, Clone)]
enum Block {
    Title(String),
    Heading(String),
    Text(String),
    Strong(String),
    Item(String),
    Mono(String),
    Gap(f32),
    Signatures(Vec<String>),
}

/// A document being put together; [`Printed::to_pdf`] lays it out.
#[derive(Debug, Clone)]
pub struct Printed {
    title: String,
    footer: String,
    blocks: Vec<Block>,
}

/// A line placed on a page.
#[derive(Debug)]
enum Mark {
    Text {
        font: Font,
        size: f32,
        x: f32,
        y: f32,
        bytes: Vec<u8>,
    },
    Line {
        x1: f32,
        x2: f32,
        y: f32,
    },
}

impl Printed {
    /// A new document: `title` is also the PDF's title, `footer` is
    /// printed at the foot of every page with the page number.
    pub fn new(title: &str, footer: &str) -> Self {
        Printed {
            title: title.to_owned(),
            footer: footer.to_owned(),
            blocks: vec![Block::Title(title.to_owned())],
        }
    }

    /// A section heading (kept on the same page as what follows it).
    pub fn heading(&mut self, text: &str) -> &mut Self {
        self.blocks.push(Block::Heading(text.to_owned()));
        self
    }

    /// A paragraph, wrapped to the page.
    pub fn text(&mut self, text: &str) -> &mut Self {
        self.blocks.push(Block::Text(text.to_owned()));
        self
    }

    /// A paragraph in bold.
    pub fn strong(&mut self, text: &str) -> &mut Self {
        self.blocks.push(Block::Strong(text.to_owned()));
        self
    }

    /// A paragraph set in from the margin, as in a list.
    pub fn item(&mut self, text: &str) -> &mut Self {
        self.blocks.push(Block::Item(text.to_owned()));
        self
    }

    /// Fixed-width text (hashes, tables): each line of `text` is kept,
    /// and broken only where it is wider than the page.
    pub fn mono(&mut self, text: &str) -> &mut Self {
        self.blocks.push(Block::Mono(text.to_owned()));
        self
    }

    /// Some space.
    pub fn gap(&mut self) -> &mut Self {
        self.blocks.push(Block::Gap(8.0));
        self
    }

    /// A signature line for each role named: a line to sign on, the date,
    /// and the printed name, all on one page.
    pub fn signatures(&mut self, roles: &[&str]) -> &mut Self {
        self.blocks.push(Block::Signatures(
            roles.iter().map(|r| (*r).to_owned()).collect(),
        ));
        self
    }

    /// The document as a PDF file.
    pub fn to_pdf(&self) -> Result<Vec<u8>, lopdf::Error> {
        let pages = self.lay_out();
        write_pdf(&self.title, &self.footer, &pages)
    }

    fn lay_out(&self) -> Vec<Vec<Mark>> {
        let width = PAGE_W - 2.0 * MARGIN;
        let mut pages: Vec<Vec<Mark>> = vec![Vec::new()];
        let mut y = PAGE_H - MARGIN;
        let bottom = MARGIN;
        // Starts a new page unless `need` points fit on this one.
        let room = |pages: &mut Vec<Vec<Mark>>, y: &mut f32, need: f32| {
            if *y - need < bottom {
                pages.push(Vec::new());
                *y = PAGE_H - MARGIN;
            }
        };
        let put = |pages: &mut Vec<Vec<Mark>>, m: Mark| {
            if let Some(p) = pages.last_mut() {
                p.push(m);
            }
        };
        for (i, block) in self.blocks.iter().enumerate() {
            let (font, size, leading, text) = match block {
                Block::Title(t) => (Font::Bold, 16.0, 20.0, t),
                Block::Heading(t) => (Font::Bold, 12.0, 16.0, t),
                Block::Text(t) => (Font::Regular, 10.0, 13.0, t),
                Block::Strong(t) | Block::Item(t) => (
                    if matches!(block, Block::Item(_)) {
                        Font::Regular
                    } else {
                        Font::Bold
                    },
                    10.0,
                    13.0,
                    t,
                ),
                Block::Mono(t) => (Font::Mono, 8.5, 11.0, t),
                Block::Gap(g) => {
                    y -= g;
                    continue;
                }
                Block::Signatures(roles) => {
                    let one = 46.0;
                    room(&mut pages, &mut y, one * roles.len() as f32 + 10.0);
                    for role in roles {
                        y -= 30.0;
                        put(
                            &mut pages,
                            Mark::Line {
                                x1: MARGIN,
                                x2: MARGIN + 250.0,
                                y,
                            },
                        );
                        put(
                            &mut pages,
                            Mark::Line {
                                x1: MARGIN + 270.0,
                                x2: MARGIN + 360.0,
                                y,
                            },
                        );
                        put(
                            &mut pages,
                            Mark::Line {
                                x1: MARGIN + 380.0,
                                x2: PAGE_W - MARGIN,
                                y,
                            },
                        );
                        let caption = |x: f32, s: &str| Mark::Text {
                            font: Font::Regular,
                            size: 8.0,
                            x,
                            y: y - 10.0,
                            bytes: win_ansi(s),
                        };
                        put(&mut pages, caption(MARGIN, &format!("{role}: signature")));
                        put(&mut pages, caption(MARGIN + 270.0, "Date"));
                        put(&mut pages, caption(MARGIN + 380.0, "Name (printed)"));
                        y -= one - 30.0;
                    }
                    continue;
                }
            };
            let indent = if matches!(block, Block::Item(_)) {
                18.0
            } else {
                0.0
            };
            let lines = match font {
                Font::Mono => mono_lines(text, size, width),
                _ => wrap(font, size, width - indent, text),
            };
            // A heading stays with at least two lines of what follows.
            let keep = if matches!(block, Block::Heading(_)) && i + 1 < self.blocks.len() {
                3.0 * 13.0
            } else {
                0.0
            };
            if matches!(block, Block::Heading(_)) {
                y -= 6.0;
            }
            room(&mut pages, &mut y, leading + keep);
            for line in lines {
                room(&mut pages, &mut y, leading);
                y -= leading;
                put(
                    &mut pages,
                    Mark::Text {
                        font,
                        size,
                        x: MARGIN + indent,
                        y,
                        bytes: line,
                    },
                );
            }
            y -= 4.0;
        }
        pages
    }
}

/// `text` broken into lines no wider than `width`, at spaces where it can
/// be, inside a word where a word alone is too wide; `\n` always breaks.
fn wrap(font: Font, size: f32, width: f32, text: &str) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut line: Vec<u8> = Vec::new();
        for word in win_ansi(para).split(|&b| b == b' ') {
            let mut candidate = line.clone();
            if !candidate.is_empty() {
                candidate.push(b' ');
            }
            candidate.extend_from_slice(word);
            if font.measure(&candidate, size) <= width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            // The word alone, cut where it must be.
            for &b in word {
                line.push(b);
                if font.measure(&line, size) > width {
                    line.pop();
                    lines.push(std::mem::replace(&mut line, vec![b]));
                }
            }
        }
        lines.push(line);
    }
    lines
}

fn mono_lines(text: &str, size: f32, width: f32) -> Vec<Vec<u8>> {
    let per_line = ((width * 1000.0 / size / f32::from(COURIER)) as usize).max(1);
    text.split('\n')
        .flat_map(|l| {
            let bytes = win_ansi(l);
            if bytes.is_empty() {
                return vec![Vec::new()];
            }
            bytes.chunks(per_line).map(<[u8]>::to_vec).collect()
        })
        .collect()
}

fn text_ops(font: Font, size: f32, x: f32, y: f32, bytes: Vec<u8>) -> Vec<Operation> {
    vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec![font.resource().into(), size.into()]),
        Operation::new("Td", vec![x.into(), y.into()]),
        Operation::new("Tj", vec![Object::String(bytes, StringFormat::Literal)]),
        Operation::new("ET", vec![]),
    ]
}

fn write_pdf(title: &str, footer: &str, pages: &[Vec<Mark>]) -> Result<Vec<u8>, lopdf::Error> {
    let mut doc = Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let font = |doc: &mut Document, name: &str| {
        doc.add_object(dictionary! {
            "Type" => "Font",
            "Subtype" => "Type1",
            "BaseFont" => Object::Name(name.as_bytes().to_vec()),
            "Encoding" => "WinAnsiEncoding",
        })
    };
    let f1 = font(&mut doc, "Helvetica");
    let f2 = font(&mut doc, "Helvetica-Bold");
    let f3 = font(&mut doc, "Courier");
    let resources = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => f1, "F2" => f2, "F3" => f3 },
    });
    let total = pages.len();
    let mut kids = Vec::with_capacity(total);
    for (n, marks) in pages.iter().enumerate() {
        let mut ops = Vec::new();
        for m in marks {
            match m {
                Mark::Text {
                    font,
                    size,
                    x,
                    y,
                    bytes,
                } => ops.extend(text_ops(*font, *size, *x, *y, bytes.clone())),
                Mark::Line { x1, x2, y } => ops.extend([
                    Operation::new("w", vec![0.6.into()]),
                    Operation::new("m", vec![(*x1).into(), (*y).into()]),
                    Operation::new("l", vec![(*x2).into(), (*y).into()]),
                    Operation::new("S", vec![]),
                ]),
            }
        }
        let foot = win_ansi(&format!("{footer}  -  page {} of {total}", n + 1));
        ops.extend(text_ops(Font::Regular, 8.0, MARGIN, FOOTER_Y, foot));
        let content = Content { operations: ops }.encode()?;
        let mut stream = Stream::new(dictionary! {}, content);
        // Compressed when it helps; the same input gives the same bytes.
        let _ = stream.compress();
        let content_id = doc.add_object(stream);
        kids.push(Object::from(doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        })));
    }
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => i64::try_from(total).unwrap_or(i64::MAX),
            "Resources" => resources,
            "MediaBox" => vec![0.into(), 0.into(), PAGE_W.into(), PAGE_H.into()],
        }),
    );
    let catalog = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    let info = doc.add_object(dictionary! {
        "Title" => Object::String(win_ansi(title), StringFormat::Literal),
    });
    doc.trailer.set("Root", catalog);
    doc.trailer.set("Info", info);
    let mut out = Vec::new();
    doc.save_to(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_within_the_width_and_breaks_long_words() {
        let text =
            "The accepted ballots are in the folder ballots/, in random order, with no names. "
                .repeat(5);
        let lines = wrap(Font::Regular, 10.0, 300.0, &text);
        assert!(lines.len() > 3);
        for l in &lines {
            assert!(Font::Regular.measure(l, 10.0) <= 300.0, "{l:?}");
        }
        let long = "W".repeat(200);
        let lines = wrap(Font::Bold, 10.0, 100.0, &long);
        assert!(lines.len() >= 20);
        assert_eq!(lines.concat().len(), 200);
        // Outside WinAnsi: a question mark, never dropped.
        assert_eq!(win_ansi("Zoë ✓"), b"Zo\xeb ?".to_vec());
        // The signed-note signature line's em dash, and quotes.
        assert_eq!(win_ansi("— “a”"), b"\x97 \x93a\x94".to_vec());
    }

    #[test]
    fn the_same_document_is_the_same_bytes() {
        let mut p = Printed::new("Report", "county");
        p.heading("Counts")
            .text("Ballots: 3")
            .mono(&"ab".repeat(70));
        p.signatures(&["Board member", "Board member"]);
        let a = p.to_pdf().unwrap();
        assert_eq!(a, p.to_pdf().unwrap());
        assert!(a.starts_with(b"%PDF-1.7"));
        // Long enough to need a second page.
        for i in 0..50 {
            p.text(&format!("line {i}"));
        }
        let doc = Document::load_mem(&p.to_pdf().unwrap()).unwrap();
        assert_eq!(doc.get_pages().len(), 2);
    }
}
