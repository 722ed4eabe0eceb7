//! The tool catalog: every tool's name, description, input and output schema, and contract metadata.
//!
//! **API Boundary:** the specs under `tools/specs/` are the published contract. Names, parameters, defaults and
//! bounds of the input schemas are the seed's, verbatim, so a client switches by changing one line of its MCP
//! config; output schemas are ours and describe the real fields. The catalog is parsed once, on first use; what
//! `tools/list` publishes of it is written at build time (`published.rs`).

use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Version of the agent guide the `codexMcp` metadata refers to (the seed's).
pub const GUIDE_VERSION: &str = "codex-mcp-agent-guide/v1";
/// Version of the tool contract (the seed's).
pub const CONTRACT_VERSION: &str = "1";
/// The tool to call first on start-up.
pub const RECOMMENDED_STARTUP_TOOL: &str = "codex_health_summary";
/// The durable write tool.
pub const RECOMMENDED_PRIMARY_WRITE_TOOL: &str = "codex_submit_task";

/// Which stability promise a tool carries (the seed's `openclawContractGroup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractGroup {
    /// Kept stable across versions.
    Stable,
    /// Kept for compatibility with older clients.
    Compatibility,
}

impl ContractGroup {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ContractGroup::Stable => "stable",
            ContractGroup::Compatibility => "compatibility",
        }
    }
}

/// One tool as published in `tools/list`.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    /// The tool name (`codex_*`).
    pub name: &'static str,
    /// What the tool does and when to use it.
    pub description: String,
    /// JSON Schema of the arguments; enforced on every call.
    pub input_schema: Arc<Map<String, Value>>,
    /// JSON Schema of `structuredContent`, as its text in the spec: two thirds of the catalog, and only ever
    /// published (`tools/list`), so a process holds it neither parsed (about 1.2 MB) nor copied.
    pub output_schema: OutputSchema,
    /// Stability group.
    pub group: ContractGroup,
    /// The seed's `codexMcp` guidance block (role, nextTools, idempotency, passiveRead, mayStartTurn...).
    pub codex_mcp: Value,
}

/// A tool's output schema: its text in the spec compiled into the binary (see [`ToolSpec::output_schema`]).
#[derive(Debug, Clone, Copy)]
pub struct OutputSchema(&'static RawValue);

impl OutputSchema {
    /// The schema as a JSON object, parsed from its text.
    pub fn parse(&self) -> Result<Map<String, Value>, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

/// The fields of one spec file. The output schema is only checked and kept as the span of text it is: building
/// it as a [`Value`] and writing it back out was most of a cold start's catalog work.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpecFields {
    description: String,
    contract_group: String,
    input_schema: Map<String, Value>,
    #[serde(borrow)]
    output_schema: &'static RawValue,
    codex_mcp: Value,
}

impl ToolSpec {
    /// True when the tool only reads state.
    pub fn is_passive_read(&self) -> bool {
        super::published::is_passive_read(&self.codex_mcp)
    }

    /// True when the tool writes (refused by the recursion guard).
    pub fn is_write(&self) -> bool {
        !self.is_passive_read()
    }
}

// `SPECS`: every tool's spec text, in `tools/list` order (`published::TOOL_NAMES`).
include!(concat!(env!("OUT_DIR"), "/tool_specs.rs"));

/// The parsed catalog plus derived values computed once.
#[derive(Debug)]
pub struct Catalog {
    /// Tools in `tools/list` order.
    pub tools: Vec<ToolSpec>,
}

impl Catalog {
    /// The process-wide catalog.
    pub fn get() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| match Catalog::parse(SPECS) {
            Ok(catalog) => catalog,
            // The specs are compiled into the binary and checked by the catalog tests, so a failure here is a
            // build defect, not a runtime condition.
            Err(message) => panic!("built-in tool catalog is invalid: {message}"),
        })
    }

    /// `toolSurfaceHash`: sha256 of `[{name, description, inputSchema, outputSchema, contractGroup, codexMcp}]`
    /// sorted by name, as canonical JSON (sorted keys, no spaces), so any change to the published surface
    /// changes it (the seed's formula). It depends on the specs alone, so `build.rs` computes it.
    pub fn tool_surface_hash(&self) -> &'static str {
        TOOL_SURFACE_HASH
    }

    /// Looks a tool up by name.
    pub fn find(&self, name: &str) -> Option<&ToolSpec> {
        self.tools.iter().find(|tool| tool.name == name)
    }

    /// Sorted names of the tools in one group.
    pub fn names_in(&self, group: ContractGroup) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self
            .tools
            .iter()
            .filter(|t| t.group == group)
            .map(|t| t.name)
            .collect();
        names.sort_unstable();
        names
    }

    fn parse(specs: &[(&'static str, &'static str)]) -> Result<Catalog, String> {
        let mut tools = Vec::with_capacity(specs.len());
        for (name, text) in specs {
            let spec: SpecFields =
                serde_json::from_str(text).map_err(|err| format!("{name}: {err}"))?;
            let group = match spec.contract_group.as_str() {
                "stable" => ContractGroup::Stable,
                "compatibility" => ContractGroup::Compatibility,
                other => return Err(format!("{name}: bad contractGroup {other:?}")),
            };
            if !spec.output_schema.get().starts_with('{') {
                return Err(format!("{name}: outputSchema is not an object"));
            }
            tools.push(ToolSpec {
                name,
                description: spec.description,
                input_schema: Arc::new(spec.input_schema),
                output_schema: OutputSchema(spec.output_schema),
                group,
                codex_mcp: spec.codex_mcp,
            });
        }
        Ok(Catalog { tools })
    }
}

/// The surface hash `build.rs` computed from the specs.
const TOOL_SURFACE_HASH: &str = include_str!(concat!(env!("OUT_DIR"), "/tool_surface_hash.txt"));

pub use crate::domain::rules::canonical::{canonical_json, sha256_hex};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::schema::unsupported_keywords;

    #[test]
    fn the_surface_hash_is_the_canonical_json_of_the_sorted_surface() {
        // The formula as the seed states it, built the slow way: a copy of the surface, then canonical JSON.
        let catalog = Catalog::get();
        let mut sorted: Vec<&ToolSpec> = catalog.tools.iter().collect();
        sorted.sort_by_key(|t| t.name);
        let surface: Vec<Value> = sorted
            .into_iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name,
                    "description": t.description,
                    "inputSchema": Value::Object((*t.input_schema).clone()),
                    "outputSchema": Value::Object(t.output_schema.parse().unwrap()),
                    "contractGroup": t.group.as_str(),
                    "codexMcp": t.codex_mcp,
                })
            })
            .collect();
        let reference = sha256_hex(canonical_json(&Value::Array(surface)).as_bytes());
        assert_eq!(catalog.tool_surface_hash(), reference);
    }

    #[test]
    fn every_spec_parses_and_uses_only_enforced_keywords() {
        let catalog = Catalog::get();
        assert_eq!(catalog.tools.len(), SPECS.len());
        let mut unsupported = Vec::new();
        for tool in &catalog.tools {
            assert_eq!(tool.input_schema.get("type"), Some(&Value::from("object")));
            let output_schema = tool.output_schema.parse().unwrap();
            assert_eq!(output_schema.get("type"), Some(&Value::from("object")));
            assert_eq!(
                tool.input_schema.get("additionalProperties"),
                Some(&Value::Bool(false)),
                "{} must refuse unknown arguments",
                tool.name
            );
            unsupported.extend(
                unsupported_keywords(&Value::Object((*tool.input_schema).clone()))
                    .into_iter()
                    .map(|keyword| format!("{}: {keyword}", tool.name)),
            );
        }
        assert!(
            unsupported.is_empty(),
            "unsupported keywords: {unsupported:?}"
        );
    }

    /// Every value of `keyword` anywhere in `schema` and its subschemas.
    fn find_keyword<'a>(schema: &'a Value, keyword: &str, out: &mut Vec<&'a Value>) {
        match schema {
            Value::Object(map) => {
                for (key, value) in map {
                    if key == keyword {
                        out.push(value);
                    }
                    // `properties` maps names to schemas, `enum`/`const`/`default` hold data, not schemas.
                    match key.as_str() {
                        "enum" | "const" | "default" | "examples" => {}
                        "properties" => {
                            if let Value::Object(props) = value {
                                for prop in props.values() {
                                    find_keyword(prop, keyword, out);
                                }
                            }
                        }
                        _ => find_keyword(value, keyword, out),
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    find_keyword(item, keyword, out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_pattern_of_every_spec_compiles() {
        for tool in &Catalog::get().tools {
            let output_schema = tool.output_schema.parse().unwrap();
            for schema in [(*tool.input_schema).clone(), output_schema] {
                let schema = Value::Object(schema);
                let mut patterns = Vec::new();
                find_keyword(&schema, "pattern", &mut patterns);
                for pattern in patterns {
                    let Some(pattern) = pattern.as_str() else {
                        panic!("{}: pattern {pattern} is not a string", tool.name);
                    };
                    if let Err(err) = crate::mcp::schema::pattern::compiled(pattern) {
                        panic!("{}: {err}", tool.name);
                    }
                }
            }
        }
    }

    #[test]
    fn no_input_schema_relies_on_an_unchecked_format() {
        // `format` is an annotation only (schema.rs checks none), so a client must not be led to think it is
        // enforced: adding one to an input schema means adding its check to schema.rs first.
        for tool in &Catalog::get().tools {
            let schema = Value::Object((*tool.input_schema).clone());
            let mut formats = Vec::new();
            find_keyword(&schema, "format", &mut formats);
            assert!(
                formats.is_empty(),
                "{}: format {formats:?} is not checked",
                tool.name
            );
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value = serde_json::json!({"b": 1, "a": {"d": [1, {"z": 0, "y": "é"}], "c": null}});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"c":null,"d":[1,{"y":"é","z":0}]},"b":1}"#
        );
    }
}
