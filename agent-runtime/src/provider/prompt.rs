//! Plain completion prompts for base (not instruction-tuned) models: a chat template makes them
//! answer junk, a `Question:`/`Answer:` transcript makes them answer sensibly.

use crate::openai::{Message, Role};

/// Stop sequences that end the model's answer before it invents the next question.
pub const STOP: [&str; 2] = ["\nQuestion:", "\n\n\n"];

/// Renders a conversation as a completion prompt ending in `Answer:`.
pub fn completion_prompt(messages: &[Message]) -> String {
    let mut prompt = String::new();
    for message in messages {
        let text = message.content_str().trim();
        if text.is_empty() {
            continue;
        }
        match message.role {
            Role::System | Role::Developer => {
                prompt.push_str(text);
                prompt.push_str("\n\n");
            }
            Role::User => {
                prompt.push_str("Question: ");
                prompt.push_str(text);
                prompt.push('\n');
            }
            Role::Assistant => {
                prompt.push_str("Answer: ");
                prompt.push_str(text);
                prompt.push_str("\n\n");
            }
            Role::Tool => {
                prompt.push_str("Context: ");
                prompt.push_str(text);
                prompt.push('\n');
            }
        }
    }
    prompt.push_str("Answer:");
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_becomes_a_question_answer_transcript() {
        let prompt = completion_prompt(&[
            Message::text(Role::System, "Be brief."),
            Message::text(Role::User, "Capital of France?"),
            Message::text(Role::Assistant, "Paris."),
            Message::text(Role::User, "And of Italy?"),
        ]);
        assert_eq!(
            prompt,
            "Be brief.\n\nQuestion: Capital of France?\nAnswer: Paris.\n\nQuestion: And of Italy?\nAnswer:"
        );
    }
}
