//! What a generation starts from: text as it is (a completion), or a conversation rendered with
//! the chat template in the model's GGUF metadata.

use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};

use super::InferenceError;

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatTurn {
    /// `system`, `user`, `assistant` (the template's roles).
    pub role: String,
    /// Its text.
    pub content: String,
}

/// The start of a generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prompt {
    /// Plain text, continued as it is (base models; `/v1/completions`).
    Text(String),
    /// A conversation, rendered with the model's chat template, ending where the assistant answers.
    Chat(Vec<ChatTurn>),
}

/// Renders `prompt` to the text the model reads, and whether special tokens in it are parsed
/// (a template writes them; user text must not smuggle them in plain completions).
pub(super) fn render(
    model: &LlamaModel,
    template: Option<&LlamaChatTemplate>,
    prompt: &Prompt,
) -> Result<(String, bool), InferenceError> {
    match prompt {
        Prompt::Text(text) => Ok((text.clone(), false)),
        Prompt::Chat(turns) => {
            let template = template.ok_or(InferenceError::NoChatTemplate)?;
            let messages = turns
                .iter()
                .map(|turn| LlamaChatMessage::new(turn.role.clone(), turn.content.clone()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| InferenceError::Template(e.to_string()))?;
            let text = model
                .apply_chat_template(template, &messages, true)
                .map_err(|e| InferenceError::Template(e.to_string()))?;
            Ok((text, true))
        }
    }
}
