//! `examples/policy-plugin`, the third-party site policy written on the guest SDK, built on its own
//! by its documented cargo command and loaded from its own `plugin.toml` (typed `[config]`), then
//! asked rule by rule through the real host: the policy chain (`check_action`) and the interaction
//! chain (`on_interaction`), behind the default policy.

use serde_json::{json, Map, Value};

use super::{config, info, request, root_of};
use codex_control_plane::plugins::types::{
    ActionRequest, Answer, ApprovalPolicy, Decision, Denial, Interaction, Narrowing, SandboxMode,
};
use codex_control_plane::plugins::{PluginHost, PluginStatus};
use support::mcp_client::TempDir;
use support::wasm_plugins::{example_policy_plugin, plugin_folder, workspace_root};

/// A host with the default plugins and the example, its `[config]` keys overridden by `example`.
/// The default policy is told to allow `danger-full-access`, so that the example's own rule about
/// it is what decides.
fn example_host(temp: &TempDir, example: Value) -> PluginHost {
    let wasm = example_policy_plugin().expect("example builds");
    let manifest =
        std::fs::read_to_string(workspace_root().join("examples/policy-plugin/plugin.toml"))
            .expect("manifest");
    let dir = temp.path().join("plugins");
    plugin_folder(&dir, "site-policy", &manifest, &wasm).expect("plugin folder");
    let mut defaults = Map::new();
    defaults.insert("allow_danger_full_access".to_string(), Value::Bool(true));
    let host = PluginHost::builder(&config(temp.path(), vec![dir]))
        .plugin_config("default-policy", defaults)
        .plugin_config(
            "site-policy",
            example.as_object().cloned().unwrap_or_default(),
        )
        .load()
        .expect("host loads");
    assert_eq!(
        info(&host, "site-policy").status,
        PluginStatus::Loaded,
        "{:?}",
        host.infos()
    );
    host
}

/// The chain's denial by the example's `rule`: the rule as `site-policy/<rule>`, the reason naming both.
fn chain_denial(rule: &str, reason: &str) -> Decision {
    Decision::Deny(Denial {
        rule: format!("site-policy/{rule}"),
        reason: format!("{reason} (policy site-policy, rule {rule})"),
    })
}

/// A read-only turn in `cwd` with `model`.
fn turn(host: &PluginHost, cwd: &str, model: &str) -> ActionRequest {
    request(host, cwd, SandboxMode::ReadOnly, model)
}

/// A command approval for `command`, run in `cwd`.
fn approval(host: &PluginHost, cwd: &str, command: &str) -> Interaction {
    Interaction {
        interaction_id: "i-1".to_string(),
        kind: "command_approval".to_string(),
        thread_id: "t-1".to_string(),
        cwd: Some(cwd.to_string()),
        command: Some(command.to_string()),
        payload: json!({"command": command, "cwd": cwd}).to_string(),
        context: host.policy_context(),
    }
}

#[test]
fn example_third_party_policy_builds_and_runs() {
    // The manifest's own [config] as shipped: gpt-4o and o1-mini are denied, others allowed.
    let temp = TempDir::new("plugins-example");
    let host = example_host(&temp, json!({}));
    let inside = format!("{}/repo", root_of(&host));
    assert_eq!(
        host.check_action(&turn(&host, &inside, "gpt-5-codex"))
            .expect("call"),
        Decision::Allow
    );
    assert_eq!(
        host.check_action(&turn(&host, &inside, "gpt-4o"))
            .expect("call"),
        chain_denial("denied_models", "model gpt-4o is denied on this site")
    );
    assert_eq!(
        host.check_action(&turn(&host, &inside, "o1-mini"))
            .expect("call"),
        chain_denial("denied_models", "model o1-mini is denied on this site")
    );
}

#[test]
fn example_allows_full_access_only_inside_its_root() {
    let temp = TempDir::new("plugins-example-full");
    let probe = config(temp.path(), Vec::new());
    let root = probe.projects_root.display().to_string();
    let sandbox_root = format!("{root}/sandbox");
    let host = example_host(&temp, json!({"full_access_root": sandbox_root}));
    let full = |cwd: &str| request(&host, cwd, SandboxMode::DangerFullAccess, "gpt-5-codex");

    let inside = format!("{sandbox_root}/job");
    assert_eq!(
        host.check_action(&full(&inside)).expect("call"),
        Decision::Allow
    );
    assert_eq!(
        host.check_action(&full(&sandbox_root)).expect("call"),
        Decision::Allow
    );
    let denied = chain_denial(
        "full_access_root",
        &format!("danger-full-access is allowed only inside {sandbox_root}"),
    );
    for outside in [format!("{root}/repo"), format!("{root}/sandboxed")] {
        assert_eq!(
            host.check_action(&full(&outside)).expect("call"),
            denied.clone(),
            "{outside}"
        );
    }
    // `..` is refused rather than resolved (the default policy refuses it first in the chain).
    let escape = full(&format!("{sandbox_root}/../repo"));
    assert_eq!(
        host.check_action_with("site-policy", &escape)
            .expect("call"),
        Decision::Deny(Denial {
            rule: "full_access_root".to_string(),
            reason: format!("danger-full-access is allowed only inside {sandbox_root}")
        })
    );
    // The same cwd outside the root is fine without full access.
    let repo = format!("{root}/repo");
    assert_eq!(
        host.check_action(&turn(&host, &repo, "gpt-5-codex"))
            .expect("call"),
        Decision::Allow
    );
}

#[test]
fn example_narrows_never_to_on_request() {
    let temp = TempDir::new("plugins-example-never");
    let host = example_host(&temp, json!({}));
    let inside = format!("{}/repo", root_of(&host));
    let mut never = turn(&host, &inside, "gpt-5-codex");
    never.settings.approval_policy = Some(ApprovalPolicy::Never);
    let mut expected = never.settings.clone();
    expected.approval_policy = Some(ApprovalPolicy::OnRequest);
    assert_eq!(
        host.check_action(&never).expect("call"),
        Decision::Narrow(Narrowing {
            rule: "site-policy/narrow_never".to_string(),
            settings: expected
        })
    );
    // Other approval policies pass unchanged.
    let mut untrusted = never.clone();
    untrusted.settings.approval_policy = Some(ApprovalPolicy::Untrusted);
    assert_eq!(
        host.check_action(&untrusted).expect("call"),
        Decision::Allow
    );
}

#[test]
fn example_approves_read_only_commands_and_declines_rm_rf() {
    let temp = TempDir::new("plugins-example-commands");
    let host = example_host(&temp, json!({"read_only_commands": ["git status", "ls"]}));
    let inside = format!("{}/repo", root_of(&host));
    let answer = |command: &str| {
        host.on_interaction(&approval(&host, &inside, command))
            .map(|auto| (auto.plugin, auto.answer, auto.rule))
    };
    let by_example =
        |answer: Answer, rule: &str| Some(("site-policy".to_string(), answer, rule.to_string()));

    assert_eq!(
        answer("git status"),
        by_example(Answer::Accept, "read_only_commands")
    );
    assert_eq!(
        answer("  ls "),
        by_example(Answer::Accept, "read_only_commands")
    );
    // Not on the allowlist (exact match only): left to a person.
    assert_eq!(answer("git push"), None);
    assert_eq!(answer("ls -la"), None);
    for rm_rf in ["rm -rf build", "rm -r -f /", "bash -lc 'cd x && rm -fr .'"] {
        assert_eq!(
            answer(rm_rf),
            by_example(Answer::Decline, "rm_rf"),
            "{rm_rf}"
        );
    }
    assert_eq!(answer("rm notes.txt"), None);
    // Other kinds of interaction are not the example's business.
    let mut question = approval(&host, &inside, "git status");
    question.kind = "user_input".to_string();
    assert!(host.on_interaction(&question).is_none());
}

#[test]
fn example_with_a_broken_config_fails_closed_and_says_why() {
    // A mistyped key reaches the SDK's typed config: every action is denied with serde's reason,
    // and approvals are left to a person.
    let temp = TempDir::new("plugins-example-broken");
    let host = example_host(&temp, json!({"denied_models": "gpt-4o"}));
    let inside = format!("{}/repo", root_of(&host));
    match host
        .check_action(&turn(&host, &inside, "gpt-5-codex"))
        .expect("call")
    {
        Decision::Deny(Denial { rule, reason }) => assert!(
            rule == "site-policy/invalid_config"
                && reason
                    .starts_with("invalid [config] table in plugin.toml: invalid type: string")
                && reason.ends_with("(policy site-policy, rule invalid_config)"),
            "{rule}: {reason}"
        ),
        other => panic!("expected a denial, got {other:?}"),
    }
    assert!(host
        .on_interaction(&approval(&host, &inside, "git status"))
        .is_none());
}
