//! The operator's side of the worker: `worker status`, `worker stop` and `worker --observe`. None of them
//! dispatches or starts app-server; they read the worker lock and the database, and `stop` queues a
//! `stop_worker` command (drain, then exit) that the next client's worker start replaces with the new binary.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::config::Config;
use crate::engine::doorbell;
use crate::engine::worker_link::presence;
use crate::store::Store;

/// How long `worker stop` waits for the worker beyond its grace period.
const STOP_SLACK: Duration = Duration::from_secs(10);

/// The worker of `config`'s database: lock holder, registered workers, whether work is pending, recent
/// commands.
pub async fn status_report(config: &Config) -> anyhow::Result<Value> {
    let store = Store::open(&config.state_db_path)?;
    let workers = store.list_workers(10).await?;
    let commands = store.recent_worker_commands(5).await?;
    Ok(json!({
        "database": config.state_db_path,
        "worker": presence(&config.state_db_path),
        "unfinishedWork": store.has_unfinished_work().await?,
        "workers": workers.iter().map(|w| json!({
            "ownerId": w.owner_id, "pid": w.pid, "role": w.role, "status": w.status,
            "version": w.version, "configFingerprint": w.config_fingerprint,
            "lastHeartbeatAt": w.last_heartbeat_at.iso(), "alive": !w.dead,
        })).collect::<Vec<_>>(),
        "recentCommands": commands.iter().map(|c| json!({
            "commandId": c.command_id, "commandType": c.command_type, "status": c.status,
            "createdAt": c.created_at.iso(),
        })).collect::<Vec<_>>(),
    }))
}

/// Asks the running worker to drain and exit, and waits until it released the worker lock.
pub async fn stop(config: &Config) -> anyhow::Result<Value> {
    let db = &config.state_db_path;
    let before = presence(db);
    if before.state == "absent" {
        return Ok(json!({"stopped": false, "reason": "no worker is running", "worker": before}));
    }
    let store = Store::open(db)?;
    let requester = crate::store::leases::new_owner_id();
    let command = store
        .insert_worker_command(
            "stop_worker",
            json!({}),
            &requester,
            Duration::from_secs(60),
        )
        .await?;
    doorbell::ring(db);
    let deadline = Instant::now() + config.worker.shutdown_grace + STOP_SLACK;
    while Instant::now() < deadline {
        if presence(db).state == "absent" {
            return Ok(json!({"stopped": true, "commandId": command.command_id, "worker": before}));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!(
        "the worker (pid {}) did not exit within {}s; command {} is recorded",
        before
            .pid
            .map(|p| p.to_string())
            .unwrap_or_else(|| "?".into()),
        (config.worker.shutdown_grace + STOP_SLACK).as_secs(),
        command.command_id
    )
}

/// Prints a status line (JSON) every `interval` until `signal`: reports, never dispatches.
pub async fn observe(
    config: &Config,
    interval: Duration,
    signal: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(signal);
    loop {
        let mut report = status_report(config).await?;
        report["at"] = json!(crate::time::iso8601_now());
        println!("{report}");
        tokio::select! {
            _ = &mut signal => return Ok(()),
            _ = tokio::time::sleep(interval) => {}
        }
    }
}
