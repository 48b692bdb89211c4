//! Turning uploaded documents into plain text: plain text and Markdown as they are, HTML with
//! its markup, scripts and styles removed, PDF through its text layer. Other types are refused
//! with the supported list.

/// A document format the runtime can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain`.
    Text,
    /// `text/markdown`.
    Markdown,
    /// `text/html`.
    Html,
    /// `application/pdf` (its text layer; scanned pages without one have no text).
    Pdf,
}

/// The content types the runtime reads, for error messages.
const SUPPORTED: &str = "text/plain, text/markdown, text/html, application/pdf";

/// Why a document cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The content type is not supported.
    #[error("unsupported content type {0:?}; supported: {SUPPORTED}")]
    Unsupported(String),
    /// The bytes are not UTF-8 text.
    #[error("the document is not UTF-8 text")]
    NotText,
    /// Nothing readable is left.
    #[error("the document has no text")]
    Empty,
    /// The PDF cannot be read.
    #[error("the PDF cannot be read: {0}")]
    Pdf(String),
    /// The PDF has pages but no text layer.
    #[error("the PDF has no text layer (scanned pages need OCR before ingestion)")]
    PdfWithoutText,
}

impl Format {
    /// The format of a content type (parameters such as `charset` ignored), or of a file name's
    /// extension when the type is missing or generic.
    pub fn detect(content_type: Option<&str>, name: Option<&str>) -> Result<Self, ParseError> {
        let essence = content_type.map(|t| t.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
        match essence.as_deref() {
            Some("text/plain") => return Ok(Self::Text),
            Some("text/markdown" | "text/x-markdown") => return Ok(Self::Markdown),
            Some("text/html" | "application/xhtml+xml") => return Ok(Self::Html),
            Some("application/pdf") => return Ok(Self::Pdf),
            Some("application/octet-stream") | None => {}
            Some(other) => return Err(ParseError::Unsupported(other.to_owned())),
        }
        let extension = name.and_then(|n| n.rsplit_once('.')).map(|(_, e)| e.to_ascii_lowercase());
        match extension.as_deref() {
            Some("txt" | "text") | None => Ok(Self::Text),
            Some("md" | "markdown") => Ok(Self::Markdown),
            Some("html" | "htm") => Ok(Self::Html),
            Some("pdf") => Ok(Self::Pdf),
            Some(other) => Err(ParseError::Unsupported(format!(".{other}"))),
        }
    }
}

/// The readable text of a document. PDF parsing is CPU-bound: call it off the async threads.
pub fn to_text(bytes: &[u8], format: Format) -> Result<String, ParseError> {
    let utf8 = || std::str::from_utf8(bytes).map_err(|_| ParseError::NotText);
    let text = match format {
        Format::Text | Format::Markdown => utf8()?.replace("\r\n", "\n"),
        Format::Html => html_text(utf8()?),
        Format::Pdf => pdf_text(bytes)?,
    };
    if text.trim().is_empty() { Err(ParseError::Empty) } else { Ok(text) }
}

/// Drops tags, comments, `<script>` and `<style>` bodies; block elements become paragraph breaks;
/// the common entities are decoded.
fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let Some(close) = rest.find('>') else { break };
        let tag = rest[1..close]
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        rest = &rest[close + 1..];
        if !rest.is_empty() && (tag == "script" || tag == "style") && !html[..html.len() - rest.len()].ends_with("/>") {
            let end_tag = format!("</{tag}");
            rest = rest.to_ascii_lowercase().find(&end_tag).map_or("", |end| &rest[end..]);
            if let Some(close) = rest.find('>') {
                rest = &rest[close + 1..];
            }
            continue;
        }
        if matches!(
            tag.as_str(),
            "p" | "div"
                | "br"
                | "li"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "tr"
                | "section"
                | "article"
                | "pre"
                | "blockquote"
        ) {
            out.push_str("\n\n");
        }
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    paragraphs(&decoded)
}

/// The text layer of a PDF, page by page, as paragraphs.
fn pdf_text(bytes: &[u8]) -> Result<String, ParseError> {
    if !bytes.starts_with(b"%PDF-") {
        return Err(ParseError::Pdf("it does not start with the %PDF- header".into()));
    }
    // pdf-extract panics on some malformed files; a bad upload must not take the runtime down.
    let pages = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem_by_pages(bytes))
        .map_err(|_| ParseError::Pdf("the PDF parser failed on this file".into()))?
        .map_err(|e| ParseError::Pdf(e.to_string()))?;
    let text = pages.iter().map(|page| paragraphs(page)).filter(|p| !p.is_empty()).collect::<Vec<_>>().join("\n\n");
    if text.is_empty() { Err(ParseError::PdfWithoutText) } else { Ok(text) }
}

/// Blank-line separated paragraphs with their inner whitespace collapsed to single spaces.
fn paragraphs(text: &str) -> String {
    text.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_and_extensions_are_detected_and_others_refused() {
        assert_eq!(Format::detect(Some("text/html; charset=utf-8"), None), Ok(Format::Html));
        assert_eq!(Format::detect(None, Some("guide.MD")), Ok(Format::Markdown));
        assert_eq!(Format::detect(Some("application/octet-stream"), Some("a.txt")), Ok(Format::Text));
        assert_eq!(Format::detect(Some("image/png"), None), Err(ParseError::Unsupported("image/png".into())));
        assert!(Format::detect(None, Some("scan.tiff")).unwrap_err().to_string().contains("supported: text/plain"));
    }

    #[test]
    fn html_keeps_the_text_and_drops_markup_scripts_and_styles() {
        let html = "<html><head><style>p{color:red}</style><script>alert('x')</script></head><body><h1>Title</h1><p>Fish &amp; chips<br>are <b>good</b>.</p><!-- note --></body></html>";
        assert_eq!(to_text(html.as_bytes(), Format::Html).unwrap(), "Title\n\nFish & chips\n\nare good.");
    }

    fn fixture_pdf() -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/documents/orbital-greenhouse.pdf");
        std::fs::read(path).expect("the PDF fixture is committed")
    }

    #[test]
    fn pdf_text_layer_is_read_page_by_page() {
        assert_eq!(Format::detect(Some("application/pdf"), None), Ok(Format::Pdf));
        assert_eq!(Format::detect(None, Some("Manual.PDF")), Ok(Format::Pdf));
        let text = to_text(&fixture_pdf(), Format::Pdf).expect("fpdf2's PDF is readable");
        assert!(text.starts_with("Orbital Greenhouse Operations Manual"), "{text}");
        assert!(text.contains("Carbon dioxide is kept at 1200 ppm"), "{text}");
        assert!(text.contains("hand-pollinated with a soft brush every Tuesday"), "{text}");
        let first_page = text.find("800 ppm").expect("page 1 text");
        assert!(first_page < text.find("Harvest Procedure").expect("page 2 text"));
    }

    #[test]
    fn broken_pdfs_are_refused_with_the_reason() {
        let pdf = fixture_pdf();
        let truncated = to_text(&pdf[..pdf.len() / 3], Format::Pdf).unwrap_err();
        assert!(matches!(truncated, ParseError::Pdf(_)), "{truncated:?}");
        assert!(truncated.to_string().starts_with("the PDF cannot be read"));
        let not_pdf = to_text(b"hello, I am text", Format::Pdf).unwrap_err();
        assert_eq!(not_pdf, ParseError::Pdf("it does not start with the %PDF- header".into()));
    }

    #[test]
    fn empty_and_binary_documents_are_refused() {
        assert_eq!(to_text(b"  \n ", Format::Text), Err(ParseError::Empty));
        assert_eq!(to_text(&[0xff, 0xfe, 0x00], Format::Text), Err(ParseError::NotText));
        assert_eq!(to_text(b"<p> </p>", Format::Html), Err(ParseError::Empty));
    }
}
