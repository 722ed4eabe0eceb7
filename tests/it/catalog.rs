//! The seed's chat catalog over the turns the server ran: projects, a project's chats, active chats, chat
//! status and content, and full-text search of the mirrored history, against the real codex app-server and
//! the fake model.

use serde_json::{json, Value};
use support::fake_model::{Gate, Reply};

use crate::harness::{assert_invalid_argument, op_id, Harness};

/// Starts a chat (or continues `chat`) with `message`, the model answering `answer`, and waits for the end.
pub fn turn(
    h: &mut Harness,
    chat: Option<&str>,
    title: &str,
    message: &str,
    answer: &str,
) -> String {
    h.model.push([Reply::text(answer)]);
    let project = h.project.display().to_string();
    let reply = match chat {
        None => h.call(
            "codex_start_chat",
            json!({"project_id": project, "message": message, "title": title}),
        ),
        Some(chat) => h.call(
            "codex_send_message",
            json!({"chat_id": chat, "message": message}),
        ),
    };
    assert_eq!(reply["ok"], json!(true), "{reply}");
    let done = h.wait_terminal(&op_id(&reply));
    assert_eq!(done["status"], json!("completed"), "{done}");
    reply["chatId"].as_str().expect("chatId").to_string()
}

fn assert_code(refused: &Value, code: &str) {
    assert_eq!(refused["ok"], json!(false), "{refused}");
    assert_eq!(refused["error"]["code"], json!(code), "{refused}");
}

fn chat_ids(results: &Value) -> Vec<String> {
    results
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["chatId"].as_str().expect("chatId").to_string())
        .collect()
}

#[test]
fn catalog_reads_and_search_serve_the_chats_the_server_ran() {
    let mut h = Harness::start("catalog");
    let project = h.project.display().to_string();
    let otters = turn(
        &mut h,
        None,
        "Otters",
        "tell me about otters",
        "The otters build nothing; beavers build dams along the river.",
    );
    turn(
        &mut h,
        Some(&otters),
        "",
        "what about beavers?",
        "Beavers gnaw wood while otters swim.",
    );
    let rust = turn(
        &mut h,
        None,
        "Rust",
        "explain lifetimes, my key is sk-abcdefghijklmnopqrstuvwxyz0123",
        "Lifetimes describe how long references stay valid.",
    );

    // Projects: the harness project is found under the allowed root, with the activity of its chats.
    let projects = h.call("codex_list_projects", json!({"compact": false}));
    assert_eq!(projects["ok"], json!(true), "{projects}");
    let demo = projects["projects"]
        .as_array()
        .expect("projects")
        .iter()
        .find(|p| p["name"] == json!("demo"))
        .unwrap_or_else(|| panic!("no demo project in {projects}"))
        .clone();
    assert!(demo["lastActivityAt"].is_string(), "{demo}");
    assert_eq!(demo["chatCount"], json!(2), "{demo}");
    assert!(
        demo["rootPath"]
            .as_str()
            .is_some_and(|p| p.starts_with("[redacted-path:demo:")),
        "{demo}"
    );
    assert_eq!(projects["returnedCount"], projects["totalCount"]);

    // A project's chats, newest first, paginated.
    let first = h.call(
        "codex_list_project_chats",
        json!({"project_id": project, "limit": 1, "include_preview": true}),
    );
    assert_eq!(first["totalCount"], json!(2), "{first}");
    assert_eq!(chat_ids(&first["chats"]), [rust.as_str()]);
    assert_eq!(first["chats"][0]["title"], json!("Rust"));
    let preview = first["chats"][0]["preview"]["lastUser"]
        .as_str()
        .expect("preview");
    assert!(
        !preview.contains("sk-abc"),
        "previews are redacted: {preview}"
    );
    let cursor = first["next_cursor"].as_str().expect("next_cursor");
    let second = h.call(
        "codex_list_project_chats",
        json!({"project_id": project, "limit": 1, "cursor": cursor}),
    );
    assert_eq!(chat_ids(&second["chats"]), [otters.as_str()]);
    assert_eq!(second["chats"][0]["turnCount"], json!(2));
    assert_eq!(second["next_cursor"], json!(null));
    let replayed = h.call(
        "codex_list_project_chats",
        json!({"project_id": project, "cursor": "c1.1.000000000000"}),
    );
    assert_invalid_argument(&replayed, "cursor");
    assert_code(
        &h.call(
            "codex_list_project_chats",
            json!({"project_id": "no-such-project"}),
        ),
        "CODEX_PROJECT_NOT_FOUND",
    );

    // Status of one chat.
    let status = h.call("codex_get_chat_status", json!({"chat_id": otters}));
    assert_eq!(status["status"], json!("completed"), "{status}");
    assert_eq!(status["status_confidence"], json!("high"), "{status}");
    assert_eq!(status["last_user_preview"], json!("what about beavers?"));
    assert_eq!(
        status["last_assistant_preview"],
        json!("Beavers gnaw wood while otters swim.")
    );
    assert_eq!(status["titleSummary"], json!("Otters"));
    assert_code(
        &h.call(
            "codex_get_chat_status",
            json!({"chat_id": "no-such-thread"}),
        ),
        "CODEX_THREAD_NOT_FOUND",
    );

    // Content: the prompts and answers in order, in the three formats and with ranges.
    let chat = h.call("codex_get_chat", json!({"chat_id": otters}));
    assert_eq!(chat["ok"], json!(true), "{chat}");
    let texts: Vec<(&str, &str)> = chat["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["role"].as_str().expect("role"),
                m["text"].as_str().expect("text"),
            )
        })
        .collect();
    assert_eq!(
        texts,
        [
            ("user", "tell me about otters"),
            (
                "assistant",
                "The otters build nothing; beavers build dams along the river."
            ),
            ("user", "what about beavers?"),
            ("assistant", "Beavers gnaw wood while otters swim."),
        ]
    );
    assert_eq!(chat["source"], json!("mcp_history"));
    assert_eq!(chat["pagination"]["totalMessages"], json!(4));
    let last_turn = h.call(
        "codex_get_chat",
        json!({"chat_id": otters, "range": {"mode": "last_turns", "limit": 1}, "format": "compact"}),
    );
    assert_eq!(
        last_turn["compact"],
        json!("[3] user: what about beavers?\n[4] assistant: Beavers gnaw wood while otters swim."),
        "{last_turn}"
    );
    let markdown = h.call(
        "codex_get_chat",
        json!({"chat_id": otters, "range": {"mode": "line_range", "from": "1", "to": "2"},
               "format": "markdown", "include_metadata": false}),
    );
    let text = markdown["markdown"].as_str().expect("markdown");
    assert!(
        text.starts_with("### User (1)\n\ntell me about otters"),
        "{text}"
    );
    assert_eq!(markdown["pagination"]["hasMoreAfter"], json!(true));
    let redacted = h.call("codex_get_chat", json!({"chat_id": rust}));
    assert!(
        !redacted["messages"].to_string().contains("sk-abc"),
        "the history is stored redacted: {redacted}"
    );
    assert_invalid_argument(
        &h.call(
            "codex_get_chat",
            json!({"chat_id": otters, "range": {"mode": "line_range", "from": "first"}}),
        ),
        "range.from",
    );
    let refused = h.call(
        "codex_get_chat",
        json!({"chat_id": otters, "format": "html"}),
    );
    assert_invalid_argument(&refused, "format");

    // Search: ranking, snippets, match modes, cursors.
    let found = h.call("codex_search_chats", json!({"query": "otters"}));
    assert_eq!(found["ok"], json!(true), "{found}");
    assert_eq!(chat_ids(&found["results"]), [otters.as_str()], "{found}");
    let best = &found["results"][0];
    assert_eq!(best["matchCount"], json!(3), "{best}");
    assert_eq!(best["snippets"].as_array().expect("snippets").len(), 2);
    assert!(
        best["snippets"][0]["text"]
            .as_str()
            .is_some_and(|s| s.to_lowercase().contains("**otters**")),
        "{best}"
    );
    assert!(found["index_status"]["indexedEntries"].as_i64() >= Some(6));
    assert_eq!(found["timeBudgetExhausted"], json!(false));

    let lifetimes = h.call(
        "codex_search_chats",
        json!({"query": "LIFETIMES references"}),
    );
    assert_eq!(
        chat_ids(&lifetimes["results"]),
        [rust.as_str()],
        "{lifetimes}"
    );
    let phrase = h.call(
        "codex_search_chats",
        json!({"query": "otters swim", "match_mode": "phrase"}),
    );
    assert_eq!(chat_ids(&phrase["results"]), [otters.as_str()]);
    let reversed = h.call(
        "codex_search_chats",
        json!({"query": "swim otters", "match_mode": "phrase"}),
    );
    assert_eq!(reversed["total_results"], json!(0), "{reversed}");
    // No chat has both words: auto settles for any of them.
    let either = h.call(
        "codex_search_chats",
        json!({"query": "beavers lifetimes", "limit": 1, "include_snippets": false}),
    );
    assert_eq!(either["effectiveMatchMode"], json!("any_term"), "{either}");
    assert_eq!(either["total_results"], json!(2));
    assert_eq!(either["results"][0]["snippets"], json!([]));
    let next = h.call(
        "codex_search_chats",
        json!({"query": "beavers lifetimes", "limit": 1, "include_snippets": false,
               "cursor": either["next_cursor"]}),
    );
    let mut both = chat_ids(&either["results"]);
    both.extend(chat_ids(&next["results"]));
    both.sort();
    let mut expected = vec![otters.clone(), rust.clone()];
    expected.sort();
    assert_eq!(both, expected);
    let strict = h.call(
        "codex_search_chats",
        json!({"query": "beavers lifetimes", "match_mode": "all_terms"}),
    );
    assert_eq!(strict["total_results"], json!(0));
    assert_invalid_argument(
        &h.call("codex_search_chats", json!({"query": "?!"})),
        "query",
    );
    assert_invalid_argument(&h.call("codex_search_chats", json!({})), "query");
    assert_invalid_argument(
        &h.call("codex_search_chats", json!({"query": "x", "limit": 51})),
        "limit",
    );

    // Nothing runs now.
    let idle = h.call("codex_list_active_chats", json!({}));
    assert_eq!(idle["active_chats"], json!([]), "{idle}");
}

#[test]
fn a_running_chat_is_active_and_its_messages_are_searchable_once_it_ends() {
    let mut h = Harness::start("catalog-active");
    let gate = Gate::new();
    h.model.push([Reply::held(
        &gate,
        Reply::text("Quokkas are small marsupials."),
    )]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_chat",
        json!({"project_id": project, "message": "describe a quokka"}),
    );
    let chat = started["chatId"].as_str().expect("chatId").to_string();

    let active = h.call(
        "codex_list_active_chats",
        json!({"project_id": project, "include_evidence": true}),
    );
    assert_eq!(
        chat_ids(&active["active_chats"]),
        [chat.as_str()],
        "{active}"
    );
    let entry = &active["active_chats"][0];
    assert_eq!(entry["turnId"], started["turnId"], "{entry}");
    assert_eq!(
        entry["evidence"]["source"],
        json!("tracked_turn"),
        "{entry}"
    );
    let not_running = h.call("codex_list_active_chats", json!({"include_running": false}));
    assert_eq!(not_running["active_chats"], json!([]));
    // The prompt is searchable as soon as the turn exists; the answer is not there yet.
    let early = h.call("codex_search_chats", json!({"query": "marsupials"}));
    assert_eq!(early["total_results"], json!(0), "{early}");
    assert_code(
        &h.call(
            "codex_get_chat",
            json!({"chat_id": chat, "project_id": "elsewhere"}),
        ),
        "CODEX_PROJECT_NOT_FOUND",
    );

    gate.open();
    h.wait_terminal(&op_id(&started));
    let found = h.call(
        "codex_search_chats",
        json!({"query": "marsupials", "project_id": project}),
    );
    assert_eq!(chat_ids(&found["results"]), [chat.as_str()], "{found}");
    let quokka = h.call("codex_search_chats", json!({"query": "quokka"}));
    assert_eq!(quokka["results"][0]["matchCount"], json!(1), "{quokka}");
    let status = h.call(
        "codex_get_chat_status",
        json!({"chat_id": chat, "project_id": project}),
    );
    assert_eq!(status["status"], json!("completed"), "{status}");
    assert_eq!(status["titleSummary"], json!("describe a quokka"));
    let done = h.call("codex_list_active_chats", json!({}));
    assert_eq!(done["active_chats"], json!([]));
}
