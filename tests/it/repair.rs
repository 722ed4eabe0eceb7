//! `codex_repair_issue` over MCP: a dry run changes no state, the real run changes exactly what the dry run
//! listed, the loop guard blocks the third real run, forceful repairs need `force`, unknown actions are
//! refused by name, and a third-party repair plugin proposing a step outside the allowlist is refused with
//! nothing performed. `procedures` covers the actions performed as host procedures.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::diagnostics::{fake_app_server, start_with};
use crate::harness::{assert_invalid_argument, op_id, Harness};

mod procedures;

/// Every row of every table as text, by table; the repair audit trail left out unless `with_audit`.
/// Tables a timer writes (see [`dump`]).
const HOUSEKEEPING: [&str; 2] = ["codex_workers", "app_server_events"];
/// Tables derived from others by triggers (see [`dump`]).
const DERIVED: [&str; 1] = ["codex_dedup_scopes"];

fn dump(h: &Harness, with_audit: bool) -> BTreeMap<String, BTreeSet<String>> {
    let store = codex_control_plane::store::Store::open(&h.db()).expect("store");
    store
        .read_blocking(move |conn| {
            let mut tables: Vec<String> = Vec::new();
            let mut stmt = conn.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )?;
            for name in stmt.query_map([], |row| row.get::<_, String>(0))? {
                tables.push(name?);
            }
            let mut out = BTreeMap::new();
            for table in tables {
                if table == "codex_repair_runs" && !with_audit {
                    continue;
                }
                // Written on timers by the server's own housekeeping whatever a call does: the process
                // heartbeat, and the app-server frame journal flushed in batches.
                if HOUSEKEEPING.contains(&table.as_str()) {
                    continue;
                }
                // A counter per project that triggers bump with every write to its operations, submissions
                // and turns (the duplicate guard's change marker): it moves with the rows compared here, and
                // names a project, not the operation a repair is about.
                if DERIVED.contains(&table.as_str()) {
                    continue;
                }
                let mut rows = BTreeSet::new();
                let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\""))?;
                let columns = stmt.column_count();
                let mut query = stmt.query([])?;
                while let Some(row) = query.next()? {
                    let cells: Vec<String> = (0..columns)
                        .map(|i| {
                            let cell = row.get_ref(i).expect("cell");
                            // Text as text, so a row can be searched for an id; anything else as debugged.
                            cell.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|_| format!("{cell:?}"))
                        })
                        .collect();
                    rows.insert(cells.join("|"));
                }
                out.insert(table, rows);
            }
            Ok(out)
        })
        .expect("dump")
}

/// The rows that differ between two dumps (either side), by table.
fn changed_rows(
    before: &BTreeMap<String, BTreeSet<String>>,
    after: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (table, rows) in after {
        let old = before.get(table).cloned().unwrap_or_default();
        for row in rows.symmetric_difference(&old) {
            out.push((table.clone(), row.clone()));
        }
    }
    out
}

/// The number of audited runs with `status`.
fn audited(h: &Harness, status: &str) -> usize {
    let store = codex_control_plane::store::Store::open(&h.db()).expect("store");
    let status = status.to_string();
    store
        .read_blocking(move |conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM codex_repair_runs WHERE status = ?1",
                [status],
                |row| row.get::<_, i64>(0),
            )?)
        })
        .expect("count") as usize
}

#[test]
fn a_dry_run_changes_nothing_and_the_real_run_changes_exactly_what_it_listed() {
    let (mut h, id, _) = crate::diagnostics::operation_lost_to_an_exit("repair-orphan");
    let analysis = h.call(
        "codex_analyze_issue",
        json!({"operation_id": id, "record": true}),
    );
    let diagnosis = analysis["diagnosisId"]
        .as_str()
        .expect("diagnosis")
        .to_string();

    let before = dump(&h, false);
    let dry = h.call(
        "codex_repair_issue",
        json!({"action": "mark_stale_turns_orphaned", "diagnosis_id": diagnosis}),
    );
    assert_eq!(dry["ok"], json!(true), "{dry}");
    assert_eq!(dry["dryRun"], json!(true));
    assert_eq!(dry["action"], json!("mark_orphaned_after_exit"));
    assert_eq!(
        dry["scope"]["operationId"],
        json!(id),
        "the diagnosis scopes it"
    );
    assert_eq!(dry["result"], json!("planned"));
    assert_eq!(dry["changed"], json!(false));
    assert_eq!(dry["plugin"]["id"], json!("default-repairs"));
    assert_eq!(dry["steps"][0]["kind"], json!("fail-operation"));
    assert_eq!(dry["steps"][0]["target"], json!(id));
    assert_eq!(
        dry["before"],
        json!([{"kind": "operation", "id": id, "status": "unknown_after_app_server_exit"}])
    );
    assert_eq!(
        dry["after"],
        json!([{"kind": "operation", "id": id, "status": "orphaned"}])
    );
    assert!(dry["repairRunId"]
        .as_str()
        .is_some_and(|r| r.starts_with("repair_")));
    assert_eq!(
        before,
        dump(&h, false),
        "a dry run changes no table but the audit trail"
    );
    assert_eq!(audited(&h, "planned"), 1);

    let real = h.call(
        "codex_repair_issue",
        json!({"action": "mark_orphaned_after_exit", "diagnosis_id": diagnosis, "dry_run": false}),
    );
    assert_eq!(real["ok"], json!(true), "{real}");
    assert_eq!(real["result"], json!("completed"));
    assert_eq!(real["changed"], json!(true));
    assert_eq!(real["before"], dry["before"]);
    assert_eq!(
        real["after"], dry["after"],
        "the real run did what the dry run said"
    );
    assert_eq!(real["steps"], dry["steps"]);
    assert_eq!(real["loopGuard"]["counted"], json!(true));
    // Every row that changed belongs to the operation the plan named.
    let changed = changed_rows(&before, &dump(&h, false));
    assert!(!changed.is_empty());
    for (table, row) in &changed {
        assert!(row.contains(&id), "{table}: {row} is not about {id}");
    }
    assert_eq!(h.status(&id)["status"], json!("orphaned"));
    assert_eq!(audited(&h, "completed"), 1);

    // Nothing is left to repair.
    let again = h.call(
        "codex_repair_issue",
        json!({"action": "mark_orphaned_after_exit", "operation_id": id}),
    );
    assert_eq!(again["result"], json!("nothing_to_do"), "{again}");
    assert_eq!(again["steps"], json!([]));
}

#[test]
fn the_loop_guard_blocks_the_third_real_run_and_dry_runs_are_not_counted() {
    let mut h = Harness::start("repair-guard");
    let args = json!({"action": "expire_stale_pending_interactions", "dry_run": false});
    for _ in 0..3 {
        let dry = h.call(
            "codex_repair_issue",
            json!({"action": "expire_stale_pending_interactions"}),
        );
        assert_eq!(dry["loopGuard"]["counted"], json!(false), "{dry}");
    }
    for attempt in 0..2 {
        let run = h.call("codex_repair_issue", args.clone());
        assert_eq!(run["ok"], json!(true), "{run}");
        assert_eq!(run["loopGuard"]["allowed"], json!(true), "{run}");
        assert_eq!(run["loopGuard"]["attempts"], json!(attempt));
    }
    let third = h.call("codex_repair_issue", args.clone());
    assert_eq!(third["ok"], json!(true), "{third}");
    assert_eq!(third["result"], json!("blocked_by_loop_guard"));
    assert_eq!(third["loopGuard"]["allowed"], json!(false));
    assert_eq!(third["loopGuard"]["blockedReason"], json!("limit_reached"));
    assert!(third["loopGuard"]["retryAfter"].is_string());
    assert_eq!(third["agentGuidance"]["problemState"], json!("blocked"));
    assert_eq!(third["agentGuidance"]["loopGuard"]["allowed"], json!(false));
    assert_eq!(third["changed"], json!(false));
    assert_eq!(audited(&h, "blocked"), 1);
    assert_eq!(audited(&h, "planned"), 3);
}

#[test]
fn forceful_and_unknown_repairs_are_refused() {
    let mut h = Harness::start("repair-force");
    let refused = h.call(
        "codex_repair_issue",
        json!({"action": "force_restart_app_server", "dry_run": false}),
    );
    assert_invalid_argument(&refused, "force");
    let dry = h.call(
        "codex_repair_issue",
        json!({"action": "force_restart_app_server"}),
    );
    assert_eq!(dry["ok"], json!(true), "{dry}");
    assert_eq!(dry["forceRequired"], json!(true));
    assert_eq!(dry["steps"][0]["kind"], json!("restart-app-server"));
    assert_eq!(dry["after"][0]["running"], json!(false));
    // With force it runs (app-server was never started: nothing changes); a forced restart is allowed once per
    // 30 minutes.
    let forced = json!({"action": "force_restart_app_server", "dry_run": false, "force": true});
    let done = h.call("codex_repair_issue", forced.clone());
    assert_eq!(done["result"], json!("completed"), "{done}");
    assert_eq!(done["after"], dry["after"]);
    let again = h.call("codex_repair_issue", forced);
    assert_eq!(again["result"], json!("blocked_by_loop_guard"), "{again}");
    assert_eq!(again["loopGuard"]["limit"], json!(1));

    let unknown = h.call(
        "codex_repair_issue",
        json!({"action": "defragment_everything"}),
    );
    assert_invalid_argument(&unknown, "action");
    assert_invalid_argument(
        &h.call(
            "codex_repair_issue",
            json!({"action": "recover_stale_operations", "operation_id": "op_nope"}),
        ),
        "operation_id",
    );
    assert_invalid_argument(
        &h.call(
            "codex_repair_issue",
            json!({"action": "recover_stale_operations", "diagnosis_id": "diag_nope"}),
        ),
        "diagnosis_id",
    );
}

#[test]
fn a_third_party_plan_outside_the_allowlist_is_refused_and_nothing_is_done() {
    let (_plugins, mut h) = Harness::start_with_hostile_plugin(
        "repair-third-party",
        "site-repairs",
        "id = \"site-repairs\"\nversion = \"0.1.0\"\nwit = \"0.1.0\"\nworlds = [\"repair\"]\n",
    );
    let id = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "hello"})));
    h.wait_terminal(&id);
    let before = dump(&h, false);
    // The default plugin has nothing to recover here, so the third-party one plans: it cancels the operation.
    for dry_run in [true, false] {
        let refused = h.call(
            "codex_repair_issue",
            json!({"action": "recover_stale_operations", "operation_id": id, "dry_run": dry_run}),
        );
        assert_eq!(refused["ok"], json!(false), "{refused}");
        assert_eq!(refused["error"]["code"], json!("CODEX_PLUGIN_FAILED"));
        let details = &refused["error"]["details"];
        assert_eq!(details["plugin"], json!("site-repairs"));
        assert_eq!(
            details["refusedSteps"][0]["kind"],
            json!("cancel-operation")
        );
        assert_eq!(details["refusedSteps"][0]["target"], json!(id));
        assert_eq!(details["allowedStepKinds"], json!(["fail-operation"]));
        assert!(details["repairRunId"].is_string());
    }
    assert_eq!(before, dump(&h, false), "nothing was performed");
    assert_eq!(audited(&h, "refused"), 2);
}

#[test]
fn a_stale_approval_is_expired_by_the_real_run_only_and_its_request_declined() {
    let mut h = Harness::start("repair-approval");
    h.model.push([
        support::fake_model::Reply::exec("ls", "call_1"),
        support::fake_model::Reply::text("Done."),
    ]);
    let id = op_id(&h.submit(json!({
        "operation_type": "start_chat",
        "message": "list the files",
        "approval_policy": "untrusted",
        "sandbox": "workspace-write",
    })));
    h.wait_for(&id, std::time::Duration::from_secs(20), |s| {
        s["status"] == json!("waiting_for_approval")
    });
    let args = json!({"action": "expire_stale_pending_interactions", "operation_id": id});
    // Fresh: not stale yet, nothing to do.
    let fresh = h.call("codex_repair_issue", args.clone());
    assert_eq!(fresh["result"], json!("nothing_to_do"), "{fresh}");

    let store = codex_control_plane::store::Store::open(&h.db()).expect("store");
    let past = codex_control_plane::time::now_ms() - 2 * 3_600_000;
    store
        .write_blocking(move |tx| {
            tx.execute("UPDATE pending_interactions SET created_at = ?1", [past])?;
            Ok(())
        })
        .expect("backdate");
    let dry = h.call("codex_repair_issue", args.clone());
    assert_eq!(dry["result"], json!("planned"), "{dry}");
    assert_eq!(dry["steps"][0]["kind"], json!("expire-interaction"));
    let interaction = dry["steps"][0]["target"]
        .as_str()
        .expect("target")
        .to_string();
    assert_eq!(dry["before"][0]["status"], json!("pending"));
    assert_eq!(dry["after"][0]["status"], json!("expired"));
    let pending = h.call("codex_list_pending_interactions", json!({}));
    assert!(pending.to_string().contains(&interaction), "{pending}");

    let mut real_args = args.clone();
    real_args["dry_run"] = json!(false);
    let real = h.call("codex_repair_issue", real_args);
    assert_eq!(real["result"], json!("completed"), "{real}");
    assert_eq!(real["after"], dry["after"]);
    let pending = h.call("codex_list_pending_interactions", json!({}));
    assert!(!pending.to_string().contains(&interaction), "{pending}");
    // The expiry answered app-server's open request with a decline, so the turn goes on to its end instead of
    // waiting for an answer nobody will give; the interaction stays expired.
    let done = h.wait_terminal(&id);
    assert!(
        done["progressEvents"]
            .to_string()
            .contains("command declined"),
        "app-server got the decline: {done}"
    );
    let expired = h.call(
        "codex_list_pending_interactions",
        json!({"status": "expired"}),
    );
    assert!(expired.to_string().contains(&interaction), "{expired}");
}

#[test]
fn a_stale_operation_is_recovered_and_stays_failed() {
    let mut h = start_with("repair-stale", &fake_app_server("hold_turn"));
    let id = op_id(&h.submit(json!({"operation_type": "start_chat", "message": "hold on"})));
    h.wait_for(&id, std::time::Duration::from_secs(30), |s| {
        s["turnId"].is_string() && s["status"] != json!("queued")
    });
    let store = codex_control_plane::store::Store::open(&h.db()).expect("store");
    let past = codex_control_plane::time::now_ms() - 2 * 3_600_000;
    store
        .write_blocking(move |tx| {
            tx.execute("UPDATE codex_operations SET updated_at = ?1", [past])?;
            Ok(())
        })
        .expect("backdate");
    let args = json!({"action": "recover_stale_operations", "operation_id": id});
    let dry = h.call("codex_repair_issue", args.clone());
    assert_eq!(dry["after"][0]["status"], json!("failed"), "{dry}");
    let mut real_args = args;
    real_args["dry_run"] = json!(false);
    let real = h.call("codex_repair_issue", real_args);
    assert_eq!(real["result"], json!("completed"), "{real}");
    assert_eq!(real["after"], dry["after"]);
    let status = h.status(&id);
    assert_eq!(status["status"], json!("failed"), "{status}");
}
