//! The seed's compatibility writes, `codex_start_chat` and `codex_send_message`, over the durable engine: the
//! real codex app-server and the fake model.

use std::time::Duration;

use serde_json::json;
use support::fake_model::Reply;

use crate::harness::{assert_invalid_argument, Harness};

#[test]
fn start_chat_then_send_message_answer_in_the_seed_shape_with_their_first_messages() {
    let mut h = Harness::start("compat-chats");
    h.model.push([Reply::text("Hello from the new chat.")]);
    let project = h.project.display().to_string();
    let started = h.call(
        "codex_start_chat",
        json!({"project_id": project, "message": "say hello", "title": "Greeting",
               "first_message_timeout_seconds": 30}),
    );
    assert_eq!(started["ok"], json!(true), "{started}");
    assert_eq!(started["accepted"], json!(true), "{started}");
    assert!(started["turnId"].is_string(), "{started}");
    assert_eq!(started["chatId"], started["threadId"]);
    assert_eq!(
        started["firstMessage"]["text"],
        json!("Hello from the new chat."),
        "{started}"
    );
    assert_eq!(started["effectiveSandbox"], json!("read-only"), "{started}");
    let chat = started["chatId"].as_str().expect("chatId").to_string();
    let first_op = started["operationId"]
        .as_str()
        .expect("operationId")
        .to_string();
    // The compatibility write is a durable operation like any other.
    let done = h.wait_terminal(&first_op);
    assert_eq!(done["operationType"], json!("start_chat"));
    assert_eq!(done["status"], json!("completed"), "{done}");

    h.model.push([Reply::text("And a second answer.")]);
    let sent = h.call(
        "codex_send_message",
        json!({"chat_id": chat, "message": "once more", "first_message_timeout_seconds": 30}),
    );
    assert_eq!(sent["ok"], json!(true), "{sent}");
    assert_eq!(sent["threadId"], json!(chat), "{sent}");
    assert_eq!(sent["mode"], json!("normal"));
    assert_eq!(
        sent["firstMessage"]["text"],
        json!("And a second answer."),
        "{sent}"
    );
    let second_op = sent["operationId"]
        .as_str()
        .expect("operationId")
        .to_string();
    assert_ne!(second_op, first_op);
    let done = h.wait_terminal(&second_op);
    assert_eq!(done["operationType"], json!("send_message"), "{done}");

    // Without a first-message wait the call answers once the turn started.
    h.model.push([Reply::after(
        Duration::from_secs(3),
        Reply::text("A slow answer."),
    )]);
    let quick = h.call(
        "codex_send_message",
        json!({"chat_id": chat, "message": "take your time"}),
    );
    assert!(quick["turnId"].is_string(), "{quick}");
    assert_eq!(quick["firstMessage"], json!(null), "{quick}");
    h.wait_terminal(quick["operationId"].as_str().expect("operationId"));

    for (tool, arguments, field) in [
        (
            "codex_send_message",
            json!({"message": "no chat"}),
            "chat_id",
        ),
        (
            "codex_start_chat",
            json!({"project_id": project}),
            "message",
        ),
        (
            "codex_start_chat",
            json!({"project_id": project, "message": "x", "first_message_timeout_seconds": 601}),
            "first_message_timeout_seconds",
        ),
    ] {
        let refused = h.call(tool, arguments);
        assert_invalid_argument(&refused, field);
    }
}
