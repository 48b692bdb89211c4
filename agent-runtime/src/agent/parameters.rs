//! A turn's generation parameters: the agent's configured ones, overridden by the client's,
//! except the fields the agent controls itself.

use agent_crds::agent::GenerationParameters;
use serde_json::{Map, Value, json};

/// Request fields the agent controls itself; a client's values are ignored.
const RESERVED: [&str; 8] = ["model", "messages", "stream", "stream_options", "tools", "tool_choice", "functions", "n"];

/// The configured parameters overridden by the client's.
pub fn merge(configured: &GenerationParameters, client: &Map<String, Value>) -> Map<String, Value> {
    let mut parameters = Map::new();
    if let Some(t) = configured.temperature {
        parameters.insert("temperature".into(), json!(t));
    }
    if let Some(p) = configured.top_p {
        parameters.insert("top_p".into(), json!(p));
    }
    if let Some(m) = configured.max_tokens {
        parameters.insert("max_tokens".into(), json!(m));
    }
    if !configured.stop.is_empty() {
        parameters.insert("stop".into(), json!(configured.stop));
    }
    if let Some(seed) = configured.seed {
        parameters.insert("seed".into(), json!(seed));
    }
    for (key, value) in client {
        if !RESERVED.contains(&key.as_str()) {
            parameters.insert(key.clone(), value.clone());
        }
    }
    parameters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_overrides_sampling_but_not_the_fields_the_agent_controls() {
        let configured = GenerationParameters { temperature: Some(0.2), max_tokens: Some(64), ..Default::default() };
        let client = Map::from_iter([
            ("temperature".to_owned(), json!(0.9)),
            ("tools".to_owned(), json!([])),
            ("model".to_owned(), json!("other")),
        ]);
        let merged = merge(&configured, &client);
        assert_eq!(merged.get("temperature"), Some(&json!(0.9)));
        assert_eq!(merged.get("max_tokens"), Some(&json!(64)));
        assert!(!merged.contains_key("tools") && !merged.contains_key("model"));
    }
}
