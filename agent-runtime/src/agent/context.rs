//! Context assembly, pure: persona and task, the recipe's system text, the summary of folded
//! turns and recalled memories make one system message; then the kept history, then the new
//! messages, the newest user message replaced by the recipe's prompt when it renders one.

use crate::openai::{Message, Role};

/// Everything a turn sends to the model besides tools and parameters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Context<'a> {
    /// The persona's system prompt and the task's instructions, already joined.
    pub persona: &'a str,
    /// The recipe's rendered system template.
    pub recipe_system: Option<&'a str>,
    /// Summary of the session's turns folded out of the history.
    pub summary: Option<&'a str>,
    /// Long-term memories recalled for this turn.
    pub memories: &'a [String],
    /// The session's kept turns, oldest first.
    pub history: &'a [Message],
    /// The messages of this turn.
    pub new_messages: &'a [Message],
    /// Replaces the newest user message (a recipe's rendered prompt).
    pub prompt: Option<&'a str>,
}

/// The messages sent to the model.
pub fn assemble(context: &Context<'_>) -> Vec<Message> {
    let summary = context.summary.map(|s| format!("Summary of the earlier conversation: {s}"));
    let memories = (!context.memories.is_empty()).then(|| {
        let mut text = "Relevant memories:".to_owned();
        for memory in context.memories {
            text.push_str("\n- ");
            text.push_str(memory);
        }
        text
    });
    let system = join_sections([Some(context.persona), context.recipe_system, summary.as_deref(), memories.as_deref()]);
    let mut messages = Vec::with_capacity(1 + context.history.len() + context.new_messages.len());
    if !system.is_empty() {
        messages.push(Message::text(Role::System, system));
    }
    messages.extend_from_slice(context.history);
    messages.extend_from_slice(context.new_messages);
    if let Some(prompt) = context.prompt
        && let Some(last_user) = messages.iter_mut().rev().find(|m| m.role == Role::User)
    {
        last_user.content = Some(prompt.to_owned());
    }
    messages
}

/// Non-empty sections joined by a blank line: the one rule for every system text.
pub fn join_sections<'a>(sections: impl IntoIterator<Item = Option<&'a str>>) -> String {
    let kept: Vec<&str> = sections.into_iter().flatten().filter(|s| !s.is_empty()).collect();
    kept.join("\n\n")
}

/// The messages of a turn that the session does not hold yet: clients that resend the whole
/// conversation are not given it twice.
pub fn unseen_messages(stored: &[Message], sent: &[Message]) -> Vec<Message> {
    if !stored.is_empty() && sent.len() > stored.len() && sent[..stored.len()] == stored[..] {
        sent[stored.len()..].to_vec()
    } else {
        sent.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(text: &str) -> Message {
        Message::text(Role::User, text)
    }

    fn assistant(text: &str) -> Message {
        Message::text(Role::Assistant, text)
    }

    #[test]
    fn the_system_message_holds_persona_recipe_summary_and_memories_in_that_order() {
        let memories = vec!["Alice likes tea".to_owned(), "Bob is on call".to_owned()];
        let history = [user("hi"), assistant("hello")];
        let new = [user("what now?")];
        let messages = assemble(&Context {
            persona: "You are terse.",
            recipe_system: Some("Use the context."),
            summary: Some("They met."),
            memories: &memories,
            history: &history,
            new_messages: &new,
            prompt: None,
        });
        assert_eq!(messages.len(), 4);
        assert_eq!(
            messages[0].content_str(),
            "You are terse.\n\nUse the context.\n\nSummary of the earlier conversation: They met.\n\n\
             Relevant memories:\n- Alice likes tea\n- Bob is on call"
        );
        assert_eq!(&messages[1..], &[user("hi"), assistant("hello"), user("what now?")]);
    }

    #[test]
    fn without_any_system_text_no_system_message_is_sent() {
        let new = [user("hi")];
        let messages = assemble(&Context { new_messages: &new, ..Context::default() });
        assert_eq!(messages, vec![user("hi")]);
    }

    #[test]
    fn the_recipe_prompt_replaces_only_the_newest_user_message() {
        let history = [user("old question"), assistant("old answer")];
        let new = [user("new question")];
        let messages = assemble(&Context {
            history: &history,
            new_messages: &new,
            prompt: Some("rendered"),
            ..Context::default()
        });
        assert_eq!(messages[0].content_str(), "old question");
        assert_eq!(messages[2].content_str(), "rendered");
    }

    #[test]
    fn empty_sections_add_no_blank_lines() {
        assert_eq!(join_sections([Some(""), Some("a"), None, Some("b")]), "a\n\nb");
        assert_eq!(join_sections([None, Some("")]), "");
    }

    #[test]
    fn a_resent_conversation_is_cut_to_its_new_messages() {
        let stored = [user("q1"), assistant("a1")];
        assert_eq!(unseen_messages(&stored, &[user("q1"), assistant("a1"), user("q2")]), vec![user("q2")]);
        assert_eq!(unseen_messages(&stored, &[user("q2")]), vec![user("q2")]);
        assert_eq!(unseen_messages(&[], &[user("q1")]), vec![user("q1")]);
    }
}
