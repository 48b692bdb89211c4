//! Token-aware chunking with overlap: text is cut at paragraph, then sentence, then word
//! boundaries into chunks of at most `size` tokens, each starting with the last `overlap` tokens
//! of the one before so no fact is split from its context.

/// Counts tokens of a text; the embedder's tokenizer when it has one, or an estimate.
pub trait TokenCounter: Send + Sync {
    /// Tokens in `text`.
    fn count(&self, text: &str) -> usize;
}

/// Four characters a token, the usual estimate for English with BPE/WordPiece vocabularies.
pub struct EstimatedTokens;

impl TokenCounter for EstimatedTokens {
    fn count(&self, text: &str) -> usize {
        text.chars().count().div_ceil(4)
    }
}

/// Chunk sizes in tokens.
#[derive(Clone, Copy, Debug)]
pub struct ChunkSize {
    /// Largest chunk.
    pub size: usize,
    /// Tokens repeated from the end of the previous chunk.
    pub overlap: usize,
}

/// Splits `text` into chunks.
pub fn chunk(text: &str, limits: ChunkSize, tokens: &dyn TokenCounter) -> Vec<String> {
    let size = limits.size.max(8);
    let overlap = limits.overlap.min(size / 2);
    let pieces = pieces(text, size, tokens);
    let mut chunks: Vec<String> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut current_tokens = 0;
    // Pieces in `current` that no earlier chunk holds; a chunk made only of carried-over
    // overlap would repeat the end of the one before.
    let mut fresh = 0;
    for piece in &pieces {
        let piece_tokens = tokens.count(piece);
        if current_tokens + piece_tokens > size && fresh > 0 {
            chunks.push(current.join(" "));
            let carried = tail(&current, overlap, tokens);
            current_tokens = carried.iter().map(|p| tokens.count(p)).sum();
            current = carried;
            fresh = 0;
        }
        current.push(piece);
        current_tokens += piece_tokens;
        fresh += 1;
    }
    if fresh > 0 {
        chunks.push(current.join(" "));
    }
    chunks.into_iter().map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect()
}

/// The trailing pieces of `current` that fit in `overlap` tokens.
fn tail<'a>(current: &[&'a str], overlap: usize, tokens: &dyn TokenCounter) -> Vec<&'a str> {
    let mut carried = Vec::new();
    let mut count = 0;
    for piece in current.iter().rev() {
        let n = tokens.count(piece);
        if count + n > overlap {
            break;
        }
        carried.push(*piece);
        count += n;
    }
    carried.reverse();
    carried
}

/// Sentences (or words, for sentences longer than a chunk), in order.
fn pieces<'a>(text: &'a str, size: usize, tokens: &dyn TokenCounter) -> Vec<&'a str> {
    let mut pieces = Vec::new();
    for paragraph in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        for sentence in sentences(paragraph) {
            if tokens.count(sentence) <= size {
                pieces.push(sentence);
            } else {
                pieces.extend(sentence.split_whitespace());
            }
        }
    }
    pieces
}

fn sentences(paragraph: &str) -> Vec<&str> {
    let mut sentences = Vec::new();
    let mut start = 0;
    let bytes = paragraph.as_bytes();
    for (i, byte) in bytes.iter().enumerate() {
        let ends = matches!(byte, b'.' | b'!' | b'?' | b'\n') && bytes.get(i + 1).is_none_or(u8::is_ascii_whitespace);
        if ends {
            let sentence = paragraph[start..=i].trim();
            if !sentence.is_empty() {
                sentences.push(sentence);
            }
            start = i + 1;
        }
    }
    let rest = paragraph[start..].trim();
    if !rest.is_empty() {
        sentences.push(rest);
    }
    sentences
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Words;
    impl TokenCounter for Words {
        fn count(&self, text: &str) -> usize {
            text.split_whitespace().count()
        }
    }

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(chunk("One. Two.", ChunkSize { size: 50, overlap: 5 }, &Words), ["One. Two."]);
    }

    #[test]
    fn chunks_respect_the_size_and_repeat_the_overlap() {
        let text = (0..40).map(|i| format!("Sentence number {i} is here.")).collect::<Vec<_>>().join(" ");
        let chunks = chunk(&text, ChunkSize { size: 20, overlap: 5 }, &Words);
        assert!(chunks.len() > 5, "{chunks:?}");
        for c in &chunks {
            assert!(Words.count(c) <= 20, "chunk too large: {c}");
        }
        for pair in chunks.windows(2) {
            let last_sentence = pair[0].rsplit(". ").next().unwrap();
            assert!(
                pair[1].starts_with(last_sentence.trim_end_matches('.')),
                "overlap carries the last sentence: {pair:?}"
            );
        }
        let joined = chunks.join(" ");
        for i in 0..40 {
            assert!(joined.contains(&format!("Sentence number {i} is here.")), "sentence {i} lost");
        }
    }

    #[test]
    fn a_sentence_longer_than_a_chunk_is_cut_at_words() {
        let long = "word ".repeat(100);
        let chunks = chunk(&long, ChunkSize { size: 30, overlap: 0 }, &Words);
        assert_eq!(chunks.len(), 4);
        assert!(chunks.iter().all(|c| Words.count(c) <= 30));
    }

    #[test]
    fn empty_text_has_no_chunks() {
        assert!(chunk("  \n\n  ", ChunkSize { size: 30, overlap: 5 }, &Words).is_empty());
    }
}
