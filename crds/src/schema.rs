//! Schema helpers for fields the derive cannot describe structurally on its own.

use schemars::{Schema, SchemaGenerator, json_schema};

use crate::conditions::Status;

/// A list of conditions keyed by `type`, so server-side apply merges them per condition and
/// kstatus-aware tools (Argo CD, Flux) read them.
pub fn conditions(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "description": "A condition of the object, in the standard metav1.Condition shape.",
            "required": ["type", "status", "lastTransitionTime", "reason", "message"],
            "properties": {
                "type": { "type": "string", "maxLength": 316, "description": "Type of the condition, e.g. Ready." },
                "status": { "type": "string", "enum": [Status::True.as_str(), Status::False.as_str(), Status::Unknown.as_str()], "description": "Status of the condition." },
                "observedGeneration": { "type": "integer", "format": "int64", "minimum": 0, "description": "The metadata.generation the condition was computed from." },
                "lastTransitionTime": { "type": "string", "format": "date-time", "description": "When the status last changed." },
                "reason": { "type": "string", "maxLength": 1024, "description": "A CamelCase machine-readable reason." },
                "message": { "type": "string", "maxLength": 32768, "description": "A human-readable explanation." }
            }
        }
    })
}

/// Free-form JSON (recipe parameter values, opaque driver config), kept as written.
pub fn any_value(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// A map of free-form JSON values keyed by name.
pub fn any_value_map(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "maxProperties": 64,
        "additionalProperties": { "x-kubernetes-preserve-unknown-fields": true }
    })
}

/// A list of free-form JSON values (e.g. a parameter's allowed values).
pub fn any_value_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": 64,
        "items": { "x-kubernetes-preserve-unknown-fields": true }
    })
}

/// A Kubernetes quantity written as a string (`10Gi`), checked with the CEL quantity library so
/// transition rules can compare sizes.
pub fn quantity_string(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "maxLength": 64,
        "x-kubernetes-validations": [
            { "rule": "isQuantity(self)", "message": "must be a Kubernetes quantity such as 10Gi" }
        ]
    })
}

/// A list of CIDRs (`10.0.0.0/8`, `2001:db8::/32`), each checked with the CEL CIDR library.
pub fn cidr_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": 16,
        "items": {
            "type": "string",
            "maxLength": 64,
            "x-kubernetes-validations": [{ "rule": "isCIDR(self)", "message": "must be a CIDR such as 10.0.0.0/8" }]
        }
    })
}

/// A list of TCP port numbers (1 to 65535).
pub fn port_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": 16,
        "items": { "type": "integer", "format": "int32", "minimum": 1, "maximum": 65535 }
    })
}
