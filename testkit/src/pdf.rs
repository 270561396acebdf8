//! Test PDFs: small, valid one-page documents written out by hand (objects,
//! a cross-reference table and a trailer, PDF 32000-1 section 7.5).

/// A one-page PDF showing `lines` of text, with no metadata.
pub fn ballot(lines: &[&str]) -> Vec<u8> {
    let (objects, _) = pages(lines);
    write(&objects, "")
}

/// A one-page PDF with an information dictionary (author, creator,
/// producer, dates), an XMP metadata stream on the catalog and a document
/// ID, as PDF writers leave them. The page shows "Candidate A".
pub fn with_metadata() -> Vec<u8> {
    let xmp = "<x:xmpmeta xmlns:x='adobe:ns:meta/'><dc:creator>PO3 Jane Doe</dc:creator>\
               <xmp:CreateDate>2026-10-30T04:12:00Z</xmp:CreateDate></x:xmpmeta>";
    let (mut objects, _) = pages(&["Candidate A"]);
    if let Some(catalog) = objects.first_mut() {
        *catalog = "<< /Type /Catalog /Pages 2 0 R /Metadata 5 0 R >>".into();
    }
    objects.push(format!(
        "<< /Type /Metadata /Subtype /XML /Length {} >>\nstream\n{xmp}\nendstream",
        xmp.len()
    ));
    objects.push(
        "<< /Author (PO3 Jane Doe) /Creator (Ballot Marker 2.1 on DESKTOP-J4NE) \
         /Producer (Acme PDF 9) /CreationDate (D:20261030041200Z) \
         /ModDate (D:20261030041500Z) >>"
            .into(),
    );
    write(
        &objects,
        " /Info 6 0 R /ID [<0123456789abcdef0123456789abcdef> <0123456789abcdef0123456789abcdef>]",
    )
}

/// Catalog, pages, one page and its content stream (objects 1 to 4).
fn pages(lines: &[&str]) -> (Vec<String>, usize) {
    let mut content = String::from("BT /F1 12 Tf 72 720 Td");
    for l in lines {
        // Literal strings: backslash and parentheses are escaped.
        let escaped = l
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)");
        content.push_str(&format!(" ({escaped}) Tj 0 -16 Td"));
    }
    content.push_str(" ET");
    let objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
    ];
    (objects, 4)
}

fn write(objects: &[String], trailer_extra: &str) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R{trailer_extra} >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A PDF as poppler reads it: its text (`pdftotext -layout`) and each
/// page rendered to PNG (`pdftoppm`, 100 dpi), written beside `pdf`.
#[derive(Debug)]
pub struct Rendered {
    /// The text of every page.
    pub text: String,
    /// The PNG of each page, in order.
    pub pages: Vec<std::path::PathBuf>,
}

/// Renders `pdf` with poppler's tools; `Err` says why it cannot here
/// (poppler-utils not installed: the caller prints SKIPPED), and a PDF
/// poppler refuses panics the test with poppler's own words.
pub fn render(pdf: &std::path::Path) -> Result<Rendered, String> {
    use std::process::Command;
    let have = |tool: &str| {
        Command::new(tool)
            .arg("-v")
            .output()
            .map(|o| o.status.success() || !o.stderr.is_empty())
            .unwrap_or(false)
    };
    if !have("pdftoppm") || !have("pdftotext") {
        return Err("pdftoppm and pdftotext (Debian's poppler-utils) are not installed".into());
    }
    let text = Command::new("pdftotext")
        .args(["-layout"])
        .arg(pdf)
        .arg("-")
        .output()
        .map_err(|e| e.to_string())?;
    assert!(
        text.status.success(),
        "pdftotext refused {}: {}",
        pdf.display(),
        String::from_utf8_lossy(&text.stderr)
    );
    let prefix = pdf.with_extension("page");
    let png = Command::new("pdftoppm")
        .args(["-png", "-r", "100"])
        .arg(pdf)
        .arg(&prefix)
        .output()
        .map_err(|e| e.to_string())?;
    assert!(
        png.status.success() && png.stderr.is_empty(),
        "pdftoppm on {}: {}",
        pdf.display(),
        String::from_utf8_lossy(&png.stderr)
    );
    let dir = pdf.parent().unwrap_or(std::path::Path::new("."));
    let stem = prefix
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut pages: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{stem}-")))
                && p.extension().is_some_and(|x| x == "png")
        })
        .collect();
    pages.sort();
    Ok(Rendered {
        text: String::from_utf8_lossy(&text.stdout).into_owned(),
        pages,
    })
}
