//! Sampling parameters of one generation, read from an OpenAI request's fields (`temperature`,
//! `top_p`, `top_k`, `min_p`, `seed`, penalties, `max_tokens`, `stop`) with llama-server's
//! defaults, and checked: a value out of range or a feature this engine does not have is an
//! error naming the field, never silently ignored.

use serde_json::{Map, Value};

/// At most this many stop sequences (OpenAI's limit).
pub const MAX_STOPS: usize = 4;

/// How tokens are chosen and when a generation ends.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampling {
    /// 0 picks the most likely token every time (greedy).
    pub temperature: f32,
    /// Nucleus sampling mass.
    pub top_p: f32,
    /// Candidates kept by likelihood rank; 0 keeps all.
    pub top_k: i32,
    /// Minimum probability relative to the most likely token.
    pub min_p: f32,
    /// Penalty on tokens already present.
    pub presence_penalty: f32,
    /// Penalty growing with how often a token appeared.
    pub frequency_penalty: f32,
    /// Multiplicative repetition penalty (1 is none).
    pub repeat_penalty: f32,
    /// Random seed; `None` draws one.
    pub seed: Option<u32>,
    /// Most tokens generated; `None` is the rest of the context.
    pub max_tokens: Option<u32>,
    /// Text that ends the generation (not included in the answer).
    pub stop: Vec<String>,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_p: 0.95,
            top_k: 40,
            min_p: 0.05,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            repeat_penalty: 1.0,
            seed: None,
            max_tokens: None,
            stop: Vec::new(),
        }
    }
}

/// A request field this engine cannot honour.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidParameter {
    /// The request field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl Sampling {
    /// Reads the sampling fields of an OpenAI chat or completion request.
    pub fn from_request(fields: &Map<String, Value>) -> Result<Self, InvalidParameter> {
        let defaults = Self::default();
        let max_tokens = match (fields.get("max_completion_tokens"), fields.get("max_tokens")) {
            (Some(value), _) | (None, Some(value)) if !value.is_null() => {
                Some(integer(value, "max_tokens", 1, u32::MAX.into())?)
            }
            _ => None,
        };
        refuse_unsupported(fields)?;
        Ok(Self {
            temperature: number(fields, "temperature", 0.0, 2.0)?.unwrap_or(defaults.temperature),
            top_p: number(fields, "top_p", 0.0, 1.0)?.unwrap_or(defaults.top_p),
            top_k: match fields.get("top_k").filter(|v| !v.is_null()) {
                Some(value) => integer(value, "top_k", 0, i32::MAX.into())?,
                None => defaults.top_k,
            },
            min_p: number(fields, "min_p", 0.0, 1.0)?.unwrap_or(defaults.min_p),
            presence_penalty: number(fields, "presence_penalty", -2.0, 2.0)?.unwrap_or(0.0),
            frequency_penalty: number(fields, "frequency_penalty", -2.0, 2.0)?.unwrap_or(0.0),
            repeat_penalty: number(fields, "repeat_penalty", 0.0, 10.0)?.unwrap_or(1.0),
            seed: match fields.get("seed").filter(|v| !v.is_null()) {
                // OpenAI seeds are 64-bit; llama.cpp's are 32: the low bits are used.
                Some(value) => {
                    let seed = value.as_i64().ok_or_else(|| invalid("seed", "must be an integer"))?;
                    u32::try_from(seed & 0xFFFF_FFFF).ok()
                }
                None => None,
            },
            max_tokens,
            stop: stops(fields.get("stop"))?,
        })
    }

    /// Whether any repetition penalty applies.
    pub fn has_penalties(&self) -> bool {
        self.presence_penalty.abs() > f32::EPSILON
            || self.frequency_penalty.abs() > f32::EPSILON
            || (self.repeat_penalty - 1.0).abs() > f32::EPSILON
    }

    /// Whether the most likely token is always taken.
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> InvalidParameter {
    InvalidParameter { field, reason: reason.into() }
}

fn number(
    fields: &Map<String, Value>,
    field: &'static str,
    min: f64,
    max: f64,
) -> Result<Option<f32>, InvalidParameter> {
    match fields.get(field).filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(value) => match value.as_f64() {
            #[allow(clippy::cast_possible_truncation)]
            Some(n) if (min..=max).contains(&n) => Ok(Some(n as f32)),
            Some(n) => Err(invalid(field, format!("{n} is outside {min} to {max}"))),
            None => Err(invalid(field, "must be a number")),
        },
    }
}

fn integer<T: TryFrom<i64>>(value: &Value, field: &'static str, min: i64, max: i64) -> Result<T, InvalidParameter> {
    let n = value.as_i64().ok_or_else(|| invalid(field, "must be an integer"))?;
    if !(min..=max).contains(&n) {
        return Err(invalid(field, format!("{n} is outside {min} to {max}")));
    }
    T::try_from(n).map_err(|_| invalid(field, "is out of range"))
}

fn stops(value: Option<&Value>) -> Result<Vec<String>, InvalidParameter> {
    let stops: Vec<String> = match value {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(stop)) => vec![stop.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(|| invalid("stop", "must be strings")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid("stop", "must be a string or an array of strings")),
    };
    if stops.len() > MAX_STOPS {
        return Err(invalid("stop", format!("at most {MAX_STOPS} sequences, got {}", stops.len())));
    }
    Ok(stops)
}

/// Fields asking for what this engine does not do: refused, not ignored.
fn refuse_unsupported(fields: &Map<String, Value>) -> Result<(), InvalidParameter> {
    if fields.get("n").and_then(Value::as_i64).is_some_and(|n| n != 1) {
        return Err(invalid("n", "only one choice per request is generated"));
    }
    if fields.get("logprobs").is_some_and(|v| v.as_bool() == Some(true) || v.is_number()) {
        return Err(invalid("logprobs", "log probabilities are not returned by the in-process model"));
    }
    if let Some(format) = fields.get("response_format").and_then(|f| f.get("type")).and_then(Value::as_str)
        && format != "text"
    {
        return Err(invalid("response_format", format!("{format} is not supported (only text)")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(value: &Value) -> Result<Sampling, InvalidParameter> {
        Sampling::from_request(value.as_object().expect("object"))
    }

    #[test]
    fn openai_fields_become_sampling_parameters() {
        let sampling =
            read(&json!({"temperature": 0, "top_p": 0.5, "max_tokens": 12, "stop": "\n", "seed": 7})).expect("valid");
        assert!(sampling.is_greedy());
        assert_eq!((sampling.top_p, sampling.max_tokens, sampling.seed), (0.5, Some(12), Some(7)));
        assert_eq!(sampling.stop, vec!["\n".to_owned()]);
        assert_eq!(read(&json!({"max_completion_tokens": 3})).expect("valid").max_tokens, Some(3));
    }

    #[test]
    fn defaults_are_llama_servers() {
        assert_eq!(read(&json!({})).expect("valid"), Sampling::default());
    }

    #[test]
    fn out_of_range_and_unsupported_fields_are_named() {
        assert_eq!(read(&json!({"temperature": 3})).unwrap_err().field, "temperature");
        assert_eq!(read(&json!({"max_tokens": 0})).unwrap_err().field, "max_tokens");
        assert_eq!(read(&json!({"stop": ["a", "b", "c", "d", "e"]})).unwrap_err().field, "stop");
        assert_eq!(read(&json!({"n": 2})).unwrap_err().field, "n");
        assert_eq!(read(&json!({"logprobs": true})).unwrap_err().field, "logprobs");
        assert_eq!(read(&json!({"response_format": {"type": "json_object"}})).unwrap_err().field, "response_format");
    }
}
