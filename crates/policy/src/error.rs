//! Policy file errors.

/// A policy file that cannot be used. Its `Display` is `file:line:column: message` (or
/// `file: message` when the position is unknown); the message quotes the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {}", .file, fmt_loc(.line, .column), .message)]
pub struct PolicyError {
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<u32>,
    /// 1-based column (characters), when known.
    pub column: Option<u32>,
    pub message: String,
}

fn fmt_loc(line: &Option<u32>, column: &Option<u32>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}
