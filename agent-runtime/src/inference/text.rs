//! The text of a generation as tokens arrive: token bytes joined into UTF-8 (a character may
//! span tokens) and cut at the first stop sequence. Text that could still become a stop sequence
//! is held back until the next token says whether it does, so a stop sequence is never sent.

/// Joins token pieces into text and finds stop sequences. Pure.
#[derive(Debug)]
pub struct TextAssembler {
    stops: Vec<String>,
    /// Bytes of an unfinished UTF-8 character.
    partial: Vec<u8>,
    /// Decoded text not yet released (it may be the start of a stop sequence).
    held: String,
}

/// What one piece of a token added.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Piece {
    /// Text safe to send now.
    pub text: String,
    /// A stop sequence was reached: the generation ends, `text` is what came before it.
    pub stopped: bool,
}

impl TextAssembler {
    /// An assembler cutting at `stops` (empty ones are ignored).
    pub fn new(stops: impl IntoIterator<Item = String>) -> Self {
        let stops = stops.into_iter().filter(|s| !s.is_empty()).collect();
        Self { stops, partial: Vec::new(), held: String::new() }
    }

    /// Adds the bytes of one token.
    pub fn push(&mut self, bytes: &[u8]) -> Piece {
        self.partial.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.partial) {
            Ok(text) => text.len(),
            // Keep an incomplete trailing character for the next token; replace invalid bytes.
            Err(error) if error.error_len().is_none() => error.valid_up_to(),
            Err(_) => {
                let text = String::from_utf8_lossy(&self.partial).into_owned();
                self.partial.clear();
                self.held.push_str(&text);
                return self.release();
            }
        };
        let rest = self.partial.split_off(valid);
        let text = String::from_utf8(std::mem::replace(&mut self.partial, rest)).unwrap_or_default();
        self.held.push_str(&text);
        self.release()
    }

    /// Everything still held, at the end of a generation that did not stop on a sequence.
    pub fn finish(&mut self) -> String {
        let mut text = std::mem::take(&mut self.held);
        text.push_str(&String::from_utf8_lossy(&std::mem::take(&mut self.partial)));
        text
    }

    fn release(&mut self) -> Piece {
        if let Some(at) = self.stops.iter().filter_map(|stop| self.held.find(stop.as_str())).min() {
            let text = self.held[..at].to_owned();
            self.held.clear();
            return Piece { text, stopped: true };
        }
        let keep = self.longest_stop_prefix_at_end();
        let cut = self.held.len() - keep;
        let rest = self.held.split_off(cut);
        Piece { text: std::mem::replace(&mut self.held, rest), stopped: false }
    }

    /// Length of the longest end of the held text that begins some stop sequence.
    fn longest_stop_prefix_at_end(&self) -> usize {
        self.stops
            .iter()
            .flat_map(|stop| {
                stop.char_indices().skip(1).map(|(i, _)| &stop[..i]).filter(|prefix| self.held.ends_with(prefix))
            })
            .map(str::len)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&[u8]]) -> (String, bool) {
        let mut assembler = TextAssembler::new(stops.iter().map(|s| (*s).to_owned()));
        let mut out = String::new();
        for piece in pieces {
            let Piece { text, stopped } = assembler.push(piece);
            out.push_str(&text);
            if stopped {
                return (out, true);
            }
        }
        out.push_str(&assembler.finish());
        (out, false)
    }

    #[test]
    fn a_character_split_across_tokens_is_sent_whole() {
        let euro = "€".as_bytes();
        let mut assembler = TextAssembler::new([]);
        assert_eq!(assembler.push(&euro[..1]).text, "");
        assert_eq!(assembler.push(&euro[1..]).text, "€");
    }

    #[test]
    fn text_stops_before_a_stop_sequence_spread_over_tokens() {
        assert_eq!(run(&["\nQuestion:"], &[b"Paris.", b"\nQue", b"stion:", b" more"]), ("Paris.".to_owned(), true));
    }

    #[test]
    fn text_that_only_looked_like_a_stop_sequence_is_released() {
        let mut assembler = TextAssembler::new(["END".to_owned()]);
        assert_eq!(assembler.push(b"the E").text, "the ");
        assert_eq!(assembler.push(b"ND").text, "");
        let mut assembler = TextAssembler::new(["END".to_owned()]);
        assert_eq!(assembler.push(b"the E").text, "the ");
        assert_eq!(assembler.push(b"nd").text, "End");
    }

    #[test]
    fn without_a_stop_everything_comes_out_at_the_end() {
        assert_eq!(run(&["STOP"], &[b"a S", b"TO"]), ("a STO".to_owned(), false));
    }

    #[test]
    fn the_earliest_stop_sequence_wins() {
        assert_eq!(run(&["b", "a"], &[b"xxab"]), ("xx".to_owned(), true));
    }
}
