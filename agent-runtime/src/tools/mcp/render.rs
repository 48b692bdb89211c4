//! A tool result as the text the model reads: text as is, images and other binary content as a
//! short note (the model cannot see them), structured content as JSON when no text block
//! carries the result (the spec asks servers to serialize it into one), and everything cut at a
//! bound so one result cannot fill the context.

use std::fmt::Write;

use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};

/// Most characters of one result the model reads.
pub const MAX_RESULT_CHARS: usize = 64 * 1024;

/// The text of `result`, and whether the tool reported an error (`isError`).
pub fn render(result: &CallToolResult) -> (String, bool) {
    let mut parts = Vec::new();
    for block in &result.content {
        parts.push(match block {
            ContentBlock::Text(text) => text.text.clone(),
            ContentBlock::Image(image) => {
                format!("[image {}, {} bytes, not shown]", image.mime_type, decoded_len(&image.data))
            }
            ContentBlock::Audio(audio) => {
                format!("[audio {}, {} bytes, not shown]", audio.mime_type, decoded_len(&audio.data))
            }
            ContentBlock::Resource(embedded) => match &embedded.resource {
                ResourceContents::TextResourceContents { uri, text, .. } => format!("[resource {uri}]\n{text}"),
                ResourceContents::BlobResourceContents { uri, mime_type, blob, .. } => format!(
                    "[resource {uri}, {}, {} bytes, not shown]",
                    mime_type.as_deref().unwrap_or("application/octet-stream"),
                    decoded_len(blob)
                ),
                _ => "[a resource of a kind this runtime does not read]".into(),
            },
            ContentBlock::ResourceLink(link) => format!("[resource link {}: {}]", link.name, link.uri),
            _ => "[content of a kind this runtime does not read]".into(),
        });
    }
    let has_text = result.content.iter().any(|block| matches!(block, ContentBlock::Text(_)));
    if let Some(structured) = result.structured_content.as_ref().filter(|_| !has_text) {
        parts.push(structured.to_string());
    }
    let text = parts.join("\n");
    (truncate(text), result.is_error == Some(true))
}

/// Bytes of base64 `data` once decoded.
fn decoded_len(data: &str) -> usize {
    data.trim_end_matches('=').len() * 3 / 4
}

fn truncate(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_RESULT_CHARS) {
        let total = text.chars().count();
        text.truncate(cut);
        let _ = write!(text, "\n[cut: {MAX_RESULT_CHARS} of {total} characters shown]");
    }
    text
}

#[cfg(test)]
mod tests {
    use rmcp::model::ContentBlock as Content;
    use serde_json::json;

    use super::*;

    #[test]
    fn images_are_noted_and_structured_content_without_text_is_given_as_json() {
        let mut result = CallToolResult::success(vec![Content::image("aGVsbG8=", "image/png")]);
        result.structured_content = Some(json!({"count": 2}));
        let (text, is_error) = render(&result);
        assert!(!is_error);
        assert_eq!(text, "[image image/png, 5 bytes, not shown]\n{\"count\":2}");
    }

    #[test]
    fn structured_content_beside_text_is_not_repeated_and_errors_are_flagged() {
        let mut result = CallToolResult::error(vec![Content::text("found 2")]);
        result.structured_content = Some(json!({"count": 2}));
        assert_eq!(render(&result), ("found 2".to_owned(), true));
    }

    #[test]
    fn a_huge_result_is_cut_with_a_note() {
        let result = CallToolResult::success(vec![Content::text("x".repeat(MAX_RESULT_CHARS + 10))]);
        let (text, _) = render(&result);
        assert!(text.ends_with(&format!("[cut: {MAX_RESULT_CHARS} of {} characters shown]", MAX_RESULT_CHARS + 10)));
    }
}
