//! Error helpers shared by every layer. Each layer keeps its own typed errors; the HTTP edge
//! maps them to statuses in `http::error`.

/// An error and its causes, so "connection refused" is not hidden behind "error sending request".
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
