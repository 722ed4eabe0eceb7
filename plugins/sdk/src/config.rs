//! Typed configuration: the `[config]` table of `plugin.toml` (with the operator's overrides), as
//! the host hands it over through `get-config`, deserialised into the plugin's own struct.

use std::fmt;

use serde::de::DeserializeOwned;

/// Why the configuration could not be read into the plugin's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// What was wrong, naming the key and expected type where serde can tell.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid [config] table in plugin.toml: {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Parses a configuration JSON text into `T`.
///
/// An empty text counts as `{}`, the host's answer for a manifest without `[config]`, so that a
/// struct whose fields all have defaults still loads. The error keeps serde's wording, which names
/// the offending key (`missing field `roots``, `unknown field `rots``, `invalid type: ...`).
pub fn parse<T: DeserializeOwned>(json: &str) -> Result<T, ConfigError> {
    let json = if json.trim().is_empty() { "{}" } else { json };
    serde_json::from_str(json).map_err(|e| ConfigError {
        message: e.to_string(),
    })
}

/// Reads the plugin's configuration from the host (capability `config`) into `T`.
pub fn load<T: DeserializeOwned>() -> Result<T, ConfigError> {
    parse(&crate::host::config_json())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Site {
        denied_models: Vec<String>,
        #[serde(default)]
        max_images: Option<u32>,
    }

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(default)]
    struct AllDefaults {
        root: String,
        commands: Vec<String>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    struct Empty {}

    #[test]
    fn a_table_fills_the_struct() {
        let site: Result<Site, _> = parse(r#"{"denied_models":["gpt-4o"],"max_images":2}"#);
        assert_eq!(
            site,
            Ok(Site {
                denied_models: vec!["gpt-4o".to_string()],
                max_images: Some(2),
            })
        );
    }

    #[test]
    fn a_missing_table_is_an_empty_object() {
        assert_eq!(parse::<AllDefaults>(""), Ok(AllDefaults::default()));
        assert_eq!(parse::<AllDefaults>("{}"), Ok(AllDefaults::default()));
        assert_eq!(parse::<Empty>("{}"), Ok(Empty {}));
    }

    #[test]
    fn a_missing_key_is_named() {
        let error = parse::<Site>("{}").err().map(|e| e.to_string());
        assert_eq!(
            error
                .as_deref()
                .map(|e| e.contains("missing field `denied_models`")),
            Some(true),
            "{error:?}"
        );
    }

    #[test]
    fn a_misspelt_key_is_named() {
        let error = parse::<Site>(r#"{"denied_models":[],"max_image":1}"#)
            .err()
            .map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| e.starts_with("invalid [config] table in plugin.toml: ")
                    && e.contains("unknown field `max_image`")),
            "{error:?}"
        );
    }

    #[test]
    fn a_wrong_type_is_refused() {
        let error = parse::<Site>(r#"{"denied_models":"gpt-4o"}"#).err();
        assert!(
            error
                .as_ref()
                .is_some_and(|e| e.message.contains("invalid type: string")),
            "{error:?}"
        );
    }

    #[test]
    fn text_that_is_not_json_is_refused() {
        assert!(parse::<AllDefaults>("root = 1").is_err());
    }
}
