//! The human-readable output of `plugins list` and `plugins check`.

use std::fmt::Write as _;

use crate::plugins::{Capability, PluginInfo, PluginStatus};

/// Column headers of the `list` table.
const HEADERS: [&str; 10] = [
    "ID", "VERSION", "KIND", "WORLDS", "WIT", "STATUS", "DECLARED", "GRANTED", "LIMITS", "SOURCE",
];

/// The `list` table, then the reason of every plugin not loaded.
pub(super) fn list(infos: &[PluginInfo]) -> String {
    let rows: Vec<[String; 10]> = infos
        .iter()
        .map(|info| {
            [
                info.id.clone(),
                info.version.clone(),
                info.kind.to_string(),
                worlds(info),
                info.wit_version.clone(),
                status(info.status).to_string(),
                names(&info.capabilities),
                names(&info.granted),
                limits(info),
                info.source.clone(),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let mut line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(padded.join("  ").trim_end());
        text.push('\n');
    };
    line(&HEADERS.map(str::to_string));
    for row in &rows {
        line(row);
    }
    for info in infos.iter().filter(|info| info.error.is_some()) {
        let _ = writeln!(
            text,
            "\n{} {}: {}",
            info.id,
            status(info.status),
            info.error.as_deref().unwrap_or_default()
        );
    }
    text
}

/// The `check` report: verdict, what was loaded, and what to change when it does not load.
pub(super) fn check(info: &PluginInfo, ok: bool, grant_hint: Option<&str>) -> String {
    let mut text = String::new();
    let verdict = if ok { "ok" } else { "error" };
    let _ = writeln!(
        text,
        "{verdict}: plugin {}@{} ({}) {}",
        info.id,
        info.version,
        info.source,
        if ok {
            "would load".to_string()
        } else {
            format!("would not load ({})", status(info.status))
        }
    );
    if let Some(error) = &info.error {
        let _ = writeln!(text, "  reason:       {error}");
    }
    let _ = writeln!(text, "  kind:         {}", info.kind);
    let _ = writeln!(text, "  worlds:       {}", worlds(info));
    let _ = writeln!(text, "  wit:          {}", info.wit_version);
    let _ = writeln!(text, "  declared:     {}", names(&info.capabilities));
    let _ = writeln!(text, "  granted:      {}", names(&info.granted));
    let _ = writeln!(text, "  limits:       {}", limits(info));
    if let Some(hint) = grant_hint {
        let _ = writeln!(text, "  grant it in the server configuration with:");
        for line in hint.lines() {
            let _ = writeln!(text, "    {line}");
        }
    }
    text
}

/// `loaded`, `failed` or `disabled`.
fn status(status: PluginStatus) -> &'static str {
    match status {
        PluginStatus::Loaded => "loaded",
        PluginStatus::Failed => "failed",
        PluginStatus::Disabled => "disabled",
    }
}

/// The declared worlds, comma-separated.
fn worlds(info: &PluginInfo) -> String {
    let names: Vec<&str> = info.worlds.iter().map(|world| world.as_str()).collect();
    dash_if_empty(names.join(","))
}

/// Capability names, comma-separated.
fn names(capabilities: &[Capability]) -> String {
    let names: Vec<&str> = capabilities.iter().map(|c| c.as_str()).collect();
    dash_if_empty(names.join(","))
}

/// Fuel, deadline and memory cap, when the plugin has them.
fn limits(info: &PluginInfo) -> String {
    match info.limits {
        Some(limits) => format!(
            "fuel={} timeout={}ms memory={}MiB",
            limits.fuel,
            limits.timeout_ms,
            limits.memory_bytes / (1024 * 1024)
        ),
        None => "-".to_string(),
    }
}

/// `-` for an empty cell, so columns stay readable.
fn dash_if_empty(text: String) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text
    }
}
