//! The `current_time` tool.

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{Tool, ToolError};
use crate::openai::FunctionSpec;

/// The current date and time in UTC.
pub struct CurrentTime;

impl Tool for CurrentTime {
    fn spec(&self) -> FunctionSpec {
        FunctionSpec {
            name: "current_time".into(),
            description: "The current date and time (UTC, RFC 3339) and the weekday.".into(),
            parameters: json!({"type": "object", "properties": {}}),
        }
    }

    fn call(&self, _arguments: Value) -> BoxFuture<'_, Result<String, ToolError>> {
        async {
            let now = jiff::Timestamp::now();
            let weekday = now.to_zoned(jiff::tz::TimeZone::UTC).weekday();
            Ok(format!("{now} ({weekday:?})"))
        }
        .boxed()
    }
}
