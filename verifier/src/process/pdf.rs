//! PDF ballots are written without their metadata: the document
//! information dictionary (author, creator, producer, dates), the XMP
//! metadata streams, the document ID, private application data, and every
//! earlier revision (the file is written out anew, so incremental updates
//! that held older metadata are gone). What the voter's PDF reader wrote
//! about the voter's computer and the time must not travel with the ballot
//! into the canvass. Parsing is lopdf's, with stream decompression bounded;
//! a PDF it cannot read is left as it is and counted for the report.

use lopdf::{Document, LoadOptions, Object};

/// No single stream may decompress to more than this while loading (a
/// decompression bomb stops here).
const MAX_STREAM: usize = 32 * 1024 * 1024;

/// The keys removed from every dictionary: XMP metadata and private
/// application data (PDF 32000-1 sections 14.3.2 and 14.5).
const REMOVED_EVERYWHERE: [&[u8]; 2] = [b"Metadata", b"PieceInfo"];

/// Whether lopdf could read `data` at all: it looks for the header
/// `%PDF-` anywhere in the file and fails at once without one. Checked
/// first, with a fast search, so a file that is no PDF costs neither a
/// copy, a worker nor lopdf's byte-by-byte scan of it.
pub(super) fn has_header(data: &[u8]) -> bool {
    memchr::memmem::find(data, b"%PDF-").is_some()
}

/// `pdf` written again without its metadata, or why that was impossible.
pub(super) fn without_metadata(pdf: &[u8]) -> Result<Vec<u8>, String> {
    // lopdf may panic on input it does not expect; a ballot must not stop
    // the canvass, so a panic is an unreadable PDF like any other error.
    std::panic::catch_unwind(|| clean(pdf))
        .unwrap_or_else(|_| Err("the PDF reader failed on this file".into()))
}

fn clean(pdf: &[u8]) -> Result<Vec<u8>, String> {
    let options = LoadOptions {
        max_decompressed_size: Some(MAX_STREAM),
        ..LoadOptions::default()
    };
    let mut doc = Document::load_mem_with_options(pdf, options).map_err(|e| e.to_string())?;
    if doc.is_encrypted() {
        return Err("the PDF is encrypted".into());
    }
    doc.trailer.remove(b"Info");
    doc.trailer.remove(b"ID");
    for object in doc.objects.values_mut() {
        let dict = match object {
            Object::Dictionary(d) => d,
            Object::Stream(s) => &mut s.dict,
            _ => continue,
        };
        for key in REMOVED_EVERYWHERE {
            dict.remove(key);
        }
    }
    // The information dictionary and the metadata streams are now
    // unreferenced; pruning drops them from the file.
    doc.prune_objects();
    let mut out = Vec::with_capacity(pdf.len());
    doc.save_to(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn author_dates_xmp_and_the_document_id_are_removed_and_the_page_stays() {
        let original = testkit::pdf::with_metadata();
        let text = String::from_utf8_lossy(&original).into_owned();
        for s in ["Jane Doe", "DESKTOP-J4NE", "D:20261030", "0123456789abcdef"] {
            assert!(text.contains(s), "the test PDF carries {s}");
        }
        let cleaned = super::without_metadata(&original).unwrap();
        let text = String::from_utf8_lossy(&cleaned).into_owned();
        for s in [
            "Jane Doe",
            "DESKTOP-J4NE",
            "D:20261030",
            "2026-10-30",
            "0123456789abcdef",
            "/Info",
            "/Metadata",
            "Acme",
        ] {
            assert!(!text.contains(s), "{s} is still in the PDF:\n{text}");
        }
        // The ballot itself is intact and the file is a PDF that loads.
        assert!(text.contains("(Candidate A) Tj"), "{text}");
        let doc = lopdf::Document::load_mem(&cleaned).unwrap();
        assert_eq!(doc.get_pages().len(), 1);
    }

    #[test]
    fn what_is_not_a_readable_pdf_is_reported_not_fatal() {
        for bad in [
            &b"%PDF-1.7 marks"[..],
            b"",
            b"%PDF-1.7\n1 0 obj\n<< /Length 99999999 >>\nstream\n",
        ] {
            assert!(super::without_metadata(bad).is_err());
        }
    }

    #[test]
    fn the_header_check_agrees_with_lopdf() {
        // lopdf finds the header anywhere; without one it reads nothing.
        let pdf = testkit::pdf::with_metadata();
        let mut junk_first = b"junk before the header\n".to_vec();
        junk_first.extend_from_slice(&pdf);
        for (data, readable) in [
            (pdf.clone(), true),
            (junk_first, true),
            (vec![b'x'; 300_000], false),
            (b"%PDF".to_vec(), false),
            (Vec::new(), false),
        ] {
            assert_eq!(super::has_header(&data), readable);
            assert_eq!(super::without_metadata(&data).is_ok(), readable);
        }
    }
}
