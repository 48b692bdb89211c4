//! The context budget: how many tokens of history go to the model. Older turns beyond it are
//! folded into a summary written by the model, never silently cut.

use crate::openai::{Message, Role};

/// Rough token count of messages (4 characters a token, plus per-message overhead); good enough
/// to decide when to summarise, without a tokenizer for every model.
pub fn estimate_tokens(messages: &[Message]) -> usize {
    messages.iter().map(|m| m.content_str().len().div_ceil(4) + 4).sum()
}

/// How many of the oldest `history` messages to fold into the summary so the rest fits in
/// `budget` tokens; `0` when everything fits. Always keeps the latest exchange and folds whole
/// user/assistant pairs so no answer loses its question.
pub fn messages_to_fold(history: &[Message], budget: usize) -> usize {
    if estimate_tokens(history) <= budget {
        return 0;
    }
    let mut fold = 0;
    while fold + 2 < history.len() && estimate_tokens(&history[fold..]) > budget / 2 {
        fold += 1;
        while fold < history.len() && history[fold].role != Role::User {
            fold += 1;
        }
    }
    fold.min(history.len().saturating_sub(2))
}

/// The request that asks the model for a summary of `previous` plus `folded` turns.
pub fn summary_request(previous: Option<&str>, folded: &[Message]) -> Vec<Message> {
    let mut transcript = String::new();
    if let Some(previous) = previous {
        transcript.push_str("Earlier summary: ");
        transcript.push_str(previous);
        transcript.push('\n');
    }
    for message in folded {
        let who = match message.role {
            Role::User => "User",
            Role::Assistant => "Assistant",
            _ => continue,
        };
        transcript.push_str(who);
        transcript.push_str(": ");
        transcript.push_str(message.content_str());
        transcript.push('\n');
    }
    vec![
        Message::text(
            Role::System,
            "Summarise the conversation below in a few sentences. Keep names, facts, numbers and decisions; drop pleasantries.",
        ),
        Message::text(Role::User, transcript),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns(n: usize, size: usize) -> Vec<Message> {
        (0..n)
            .flat_map(|i| {
                [
                    Message::text(Role::User, format!("q{i} {}", "x".repeat(size))),
                    Message::text(Role::Assistant, format!("a{i} {}", "y".repeat(size))),
                ]
            })
            .collect()
    }

    #[test]
    fn history_within_budget_is_kept_whole() {
        assert_eq!(messages_to_fold(&turns(3, 40), 1000), 0);
    }

    #[test]
    fn history_over_budget_folds_whole_old_exchanges_and_keeps_the_latest() {
        let history = turns(10, 400);
        let fold = messages_to_fold(&history, 1000);
        assert!(fold > 0 && fold.is_multiple_of(2), "folds whole exchanges: {fold}");
        assert!(fold <= history.len() - 2, "keeps the latest exchange");
        assert!(estimate_tokens(&history[fold..]) <= 1000);
        assert_eq!(history[fold].role, Role::User);
    }

    #[test]
    fn the_summary_request_carries_the_previous_summary_and_the_folded_turns() {
        let request = summary_request(Some("Alice likes tea."), &turns(1, 1));
        assert!(request[1].content_str().starts_with("Earlier summary: Alice likes tea.\nUser: q0"));
    }
}
