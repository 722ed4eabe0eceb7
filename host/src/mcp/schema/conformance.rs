//! Our validator against the `jsonschema` crate, over generated arguments for every tool's input schema and a
//! few extra schemas exercising the keywords the tool specs do not use yet (`pattern`, ambiguous `oneOf`,
//! numeric `enum`/`const`, `anyOf`, `format`).
//!
//! Cases come from a deterministic PRNG (same cases on every run, so a failure reproduces): valid arguments
//! built from the schema (required properties, optional ones at random, enum members, values within bounds)
//! and mutations of them (wrong types, numbers and lengths just outside their bounds, pattern violations,
//! unknown properties, missing required ones, extra array items). The two validators must agree on accept
//! or reject for every case; ours has no documented strictness beyond the standard.

use std::time::Instant;

use super::*;
use crate::mcp::catalog::Catalog;
use serde_json::json;
use serde_json::{Map, Value};

/// Cases per schema: half built valid, half mutated.
const CASES: usize = 600;

/// SplitMix64: small, deterministic and good enough to spread cases over a schema.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// Schemas for keywords our tool specs do not use yet, so the comparison covers everything we claim to check.
fn extra_schemas() -> Vec<(&'static str, Value)> {
    vec![
        (
            "extra_pattern",
            json!({"type": "object", "required": ["id"], "additionalProperties": false, "properties": {
                "id": {"type": "string", "pattern": "^[a-z]{2}-\\d{3}$", "examples": ["ab-123", "zz-000"]},
                "tag": {"type": "string", "pattern": "\\w\\.", "examples": ["x.", "--a.b--"]},
                "line": {"type": ["string", "null"], "pattern": "^a.c$", "examples": ["abc", "a-c"]},
                "class": {"type": "string", "pattern": "^[+--]+$", "examples": [",+-", "-"]}
            }}),
        ),
        (
            "extra_one_of",
            json!({"type": "object", "additionalProperties": false, "properties": {
                "n": {"oneOf": [{"type": "integer", "maximum": 10}, {"type": "number", "minimum": 5}]},
                "shape": {"oneOf": [
                    {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}},
                    {"type": "object", "required": ["b"], "properties": {"b": {"type": "string"}}}
                ]},
                "either": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "integer", "minimum": 0}]}
            }}),
        ),
        (
            "extra_enum_const",
            json!({"type": "object", "additionalProperties": false, "properties": {
                "level": {"enum": [1, 2.5, "x", null, [1, 2], {"k": 3}]},
                "fixed": {"const": {"a": [1, {"b": 2.0}]}},
                "zero": {"const": 0},
                "when": {"type": "string", "format": "date-time", "minLength": 1}
            }}),
        ),
    ]
}

/// A value meant to satisfy `schema` (the mutations take care of the invalid side).
fn valid(schema: &Value, rng: &mut Rng, depth: usize) -> Value {
    let Some(map) = schema.as_object() else {
        return json!("anything");
    };
    for keyword in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = map.get(keyword) {
            if let Some(branch) = rng.pick(branches) {
                return valid(branch, rng, depth);
            }
        }
    }
    if let Some(constant) = map.get("const") {
        return constant.clone();
    }
    if let Some(Value::Array(options)) = map.get("enum") {
        if let Some(option) = rng.pick(options) {
            return option.clone();
        }
    }
    let types: Vec<&str> = match map.get("type") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => vec!["string", "integer", "boolean", "null"],
    };
    let ty = rng.pick(&types).copied().unwrap_or("null");
    let min = map.get("minimum").and_then(Value::as_f64);
    let max = map.get("maximum").and_then(Value::as_f64);
    match ty {
        "null" => Value::Null,
        "boolean" => Value::Bool(rng.chance(50)),
        "integer" | "number" => {
            let low = min.unwrap_or(-1000.0);
            let high = max.unwrap_or(low + 2000.0).max(low);
            let span = (high - low) as u64;
            let mut n = low + (rng.next() % (span + 1)) as f64;
            if rng.chance(20) {
                n = if rng.chance(50) { low } else { high };
            }
            if ty == "number" && n < high && rng.chance(50) {
                n += 0.5;
            }
            if ty == "integer" && rng.chance(80) {
                json!(n as i64)
            } else {
                json!(n)
            }
        }
        "string" => {
            if let Some(Value::Array(examples)) = map.get("examples") {
                if let Some(example) = rng.pick(examples) {
                    return example.clone();
                }
            }
            let min_len = map.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
            let max_len = map
                .get("maxLength")
                .and_then(Value::as_u64)
                .map_or(min_len + 12, |m| (m as usize).min(min_len + 12));
            let len = min_len + rng.below(max_len.saturating_sub(min_len) + 1);
            random_text(rng, len)
        }
        "array" => {
            let min_items = map.get("minItems").and_then(Value::as_u64).unwrap_or(0) as usize;
            let max_items = map
                .get("maxItems")
                .and_then(Value::as_u64)
                .map_or(min_items + 3, |m| (m as usize).min(min_items + 3));
            let len = if depth > 3 {
                min_items
            } else {
                min_items + rng.below(max_items.saturating_sub(min_items) + 1)
            };
            let item = map.get("items").cloned().unwrap_or(Value::Bool(true));
            Value::Array((0..len).map(|_| valid(&item, rng, depth + 1)).collect())
        }
        _ => {
            let mut object = Map::new();
            let required: Vec<&str> = match map.get("required") {
                Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if let Some(Value::Object(properties)) = map.get("properties") {
                for (name, property) in properties {
                    if depth < 4 && (required.contains(&name.as_str()) || rng.chance(40)) {
                        object.insert(name.clone(), valid(property, rng, depth + 1));
                    }
                }
            }
            Value::Object(object)
        }
    }
}

fn random_text(rng: &mut Rng, len: usize) -> Value {
    // Digits and word characters from outside ASCII, line terminators and class punctuation are where the
    // regex dialects differ, so they are over-represented.
    const ALPHABET: &[char] = &[
        'a', 'b', 'z', 'A', '0', '1', '9', '_', '-', '+', ',', '.', ' ', '\n', '\u{2028}', 'é',
        '٣', '😀',
    ];
    let text: String = (0..len)
        .map(|_| rng.pick(ALPHABET).copied().unwrap_or('a'))
        .collect();
    Value::String(text)
}

/// Values of every type, plus values that sit on or just past the edges of `schema`.
fn edge_values(schema: &Value, rng: &mut Rng) -> Vec<Value> {
    let mut out = vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(2.0),
        json!(u64::MAX),
        json!(1e300),
        json!(""),
        json!("x"),
        json!([]),
        json!([1]),
        json!({}),
        json!({"zz_unknown": 1}),
    ];
    out.extend(bounds(schema, rng));
    out
}

/// Values on or just past the bounds, lengths, pattern and members `schema` declares.
fn bounds(schema: &Value, rng: &mut Rng) -> Vec<Value> {
    let mut out = Vec::new();
    let Some(map) = schema.as_object() else {
        return out;
    };
    for (key, bound) in [("minimum", -1.0), ("maximum", 1.0)] {
        if let Some(edge) = map.get(key).and_then(Value::as_f64) {
            out.extend([json!(edge), json!(edge + bound), json!(edge + bound / 2.0)]);
            out.push(json!(edge as i64 + bound as i64));
        }
    }
    for key in ["minLength", "maxLength"] {
        if let Some(edge) = map.get(key).and_then(Value::as_u64) {
            let edge = edge as usize;
            out.extend([
                random_text(rng, edge),
                random_text(rng, edge + 1),
                random_text(rng, edge.saturating_sub(1)),
            ]);
        }
    }
    if map.contains_key("pattern") {
        out.extend((0..4).map(|_| {
            let len = rng.below(8);
            random_text(rng, len)
        }));
        // Examples with one character swapped sit right at the edge of the pattern.
        if let Some(Value::Array(examples)) = map.get("examples") {
            for example in examples.iter().filter_map(Value::as_str) {
                let mut chars: Vec<char> = example.chars().collect();
                if !chars.is_empty() {
                    let at = rng.below(chars.len());
                    // Half the time a non-ASCII digit, where `\d` differs between the dialects.
                    chars[at] = if rng.chance(50) {
                        '٣'
                    } else {
                        random_text(rng, 1)
                            .as_str()
                            .and_then(|one| one.chars().next())
                            .unwrap_or('a')
                    };
                }
                out.push(Value::String(chars.into_iter().collect()));
            }
        }
    }
    // Members with their integers written as floats (`1` as `1.0`) are equal to them, so still valid.
    if let Some(constant) = map.get("const") {
        out.push(floats_for_integers(constant));
    }
    if let Some(Value::Array(options)) = map.get("enum") {
        out.extend(options.iter().map(floats_for_integers));
        for option in options {
            out.push(match option {
                Value::String(text) => json!(format!("{text}_")),
                Value::Number(n) => json!(n.as_f64().unwrap_or(0.0) + 0.25),
                other => json!([other]),
            });
        }
    }
    for keyword in ["oneOf", "anyOf"] {
        if let Some(Value::Array(branches)) = map.get(keyword) {
            for branch in branches {
                out.extend(bounds(branch, rng));
                out.push(valid(branch, rng, 3));
            }
        }
    }
    out
}

fn floats_for_integers(value: &Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map_or_else(|| value.clone(), |f| json!(f)),
        Value::Array(items) => Value::Array(items.iter().map(floats_for_integers).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), floats_for_integers(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Applies one random mutation somewhere inside `value`, descending along `schema`.
fn mutate(schema: &Value, value: &mut Value, rng: &mut Rng) {
    // Descend with probability 60% when there is somewhere to go.
    let branch = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))
        .and_then(Value::as_array)
        .and_then(|branches| rng.pick(branches).cloned());
    let schema = branch.as_ref().unwrap_or(schema);
    match value {
        Value::Object(object) if !object.is_empty() && rng.chance(60) => {
            let keys: Vec<String> = object.keys().cloned().collect();
            let key = rng.pick(&keys).cloned().unwrap_or_default();
            let child_schema = schema
                .get("properties")
                .and_then(|p| p.get(&key))
                .or_else(|| schema.get("additionalProperties"))
                .cloned()
                .unwrap_or(Value::Bool(true));
            if let Some(child) = object.get_mut(&key) {
                mutate(&child_schema, child, rng);
            }
            return;
        }
        Value::Array(items) if !items.is_empty() && rng.chance(60) => {
            let idx = rng.below(items.len());
            let item_schema = schema.get("items").cloned().unwrap_or(Value::Bool(true));
            mutate(&item_schema, &mut items[idx], rng);
            return;
        }
        _ => {}
    }
    match value {
        Value::Object(object) if rng.chance(50) => {
            let required: Vec<String> = match schema.get("required") {
                Some(Value::Array(names)) => names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                _ => Vec::new(),
            };
            match rng.below(3) {
                0 if !required.is_empty() => {
                    object.remove(rng.pick(&required).map_or("", String::as_str));
                }
                1 => {
                    object.insert("zz_unknown".to_string(), json!(rng.below(5)));
                }
                _ => {
                    let properties: Vec<(String, Value)> = schema
                        .get("properties")
                        .and_then(Value::as_object)
                        .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default();
                    if let Some((name, property)) = rng.pick(&properties) {
                        let edges = edge_values(property, rng);
                        if let Some(edge) = rng.pick(&edges) {
                            object.insert(name.clone(), edge.clone());
                        }
                    }
                }
            }
        }
        Value::Array(items) if rng.chance(40) => {
            let extra = items.first().cloned().unwrap_or(json!("x"));
            // Enough copies to pass maxItems when there is one.
            let max = schema.get("maxItems").and_then(Value::as_u64).unwrap_or(1) as usize;
            let missing = (max + 1).saturating_sub(items.len()).clamp(1, 61);
            items.extend(std::iter::repeat_n(extra, missing));
        }
        _ => {
            let edges = edge_values(schema, rng);
            if let Some(edge) = rng.pick(&edges) {
                *value = edge.clone();
            }
        }
    }
}

fn schemas_under_test() -> Vec<(String, Value)> {
    let mut schemas: Vec<(String, Value)> = Catalog::get()
        .tools
        .iter()
        .map(|tool| {
            (
                tool.name.to_string(),
                Value::Object((*tool.input_schema).clone()),
            )
        })
        .collect();
    schemas.extend(
        extra_schemas()
            .into_iter()
            .map(|(name, schema)| (name.to_string(), schema)),
    );
    schemas
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(400) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[test]
fn our_verdicts_match_the_jsonschema_crate_on_generated_arguments() {
    let mut rng = Rng(0x5EED_C0DE);
    let mut disagreements = Vec::new();
    let (mut accepted, mut refused) = (0usize, 0usize);
    for (name, schema) in schemas_under_test() {
        let reference = match jsonschema::validator_for(&schema) {
            Ok(validator) => validator,
            Err(err) => panic!("{name}: jsonschema cannot compile the schema: {err}"),
        };
        for case in 0..CASES {
            let mut value = valid(&schema, &mut rng, 0);
            if case % 2 == 1 {
                for _ in 0..=rng.below(2) {
                    mutate(&schema, &mut value, &mut rng);
                }
            }
            let ours = validate(&schema, &value);
            let theirs = reference.is_valid(&value);
            if ours.is_ok() {
                accepted += 1;
            } else {
                refused += 1;
            }
            if ours.is_ok() != theirs {
                disagreements.push(format!(
                    "{name} case {case}: ours {ours:?}, jsonschema valid={theirs}: {}",
                    short(&value)
                ));
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements, first ones:\n{}",
        disagreements.len(),
        disagreements[..disagreements.len().min(10)].join("\n")
    );
    // Both sides must be exercised, or agreement proves little.
    let total = accepted + refused;
    assert!(
        accepted * 4 > total && refused * 4 > total,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn valid_cases_are_mostly_valid() {
    // A guard on the generator itself: built-valid cases that fail would only test error paths.
    let mut rng = Rng(7);
    for (name, schema) in schemas_under_test() {
        let passed = (0..100)
            .filter(|_| validate(&schema, &valid(&schema, &mut rng, 0)).is_ok())
            .count();
        assert!(
            passed >= 60,
            "{name}: only {passed}/100 generated cases valid"
        );
    }
}

/// Time per validation call, ours and the `jsonschema` crate's (run with `--nocapture` to see the numbers).
#[test]
fn validation_timing() {
    let Some(tool) = Catalog::get().find("codex_submit_task") else {
        panic!("codex_submit_task is in the catalog");
    };
    let schema = Value::Object((*tool.input_schema).clone());
    let args = json!({
        "operation_type": "start_chat", "message": "hello", "project_id": "p", "sandbox": "read-only",
        "approval_policy": "never", "resource_keys": ["a", "b"],
        "input_items": [{"type": "image", "url": "https://x/y.png"}, {"type": "localImage", "path": "/a.png"}]
    });
    assert_eq!(validate(&schema, &args), Ok(()));
    const N: u32 = 2000;
    let started = Instant::now();
    for _ in 0..N {
        assert!(validate(&schema, &args).is_ok());
    }
    let ours = started.elapsed() / N;
    let reference = match jsonschema::validator_for(&schema) {
        Ok(validator) => validator,
        Err(err) => panic!("{err}"),
    };
    let started = Instant::now();
    for _ in 0..N {
        assert!(reference.is_valid(&args));
    }
    let theirs = started.elapsed() / N;
    // Compiling per call is what a drop-in replacement of `validate(schema, value)` would cost.
    const N_COMPILE: u32 = 200;
    let started = Instant::now();
    for _ in 0..N_COMPILE {
        assert!(jsonschema::validator_for(&schema).is_ok_and(|v| v.is_valid(&args)));
    }
    let theirs_compiled_each_time = started.elapsed() / N_COMPILE;
    println!(
        "codex_submit_task validation per call: ours {ours:?}, jsonschema precompiled {theirs:?}, \
         jsonschema compile+validate {theirs_compiled_each_time:?}"
    );
}
