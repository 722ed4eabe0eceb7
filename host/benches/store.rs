//! Store benchmark: `insert_operation` and `get_operation` latency through the async API (writer thread, reader
//! pool) with 1k and 100k operations already in the database, plus the duplicate-guard worst case.
//!
//! Run on demand: `cargo bench -p codex-control-plane-mcp --bench store`.

use std::time::{Duration, Instant};

use codex_control_plane::store::{operations, NewOperation, Store};
use serde_json::json;

const SAMPLES: usize = 2_000;
const SCOPES: usize = 1_000;

fn request(idx: usize, scope: usize, policy: &str) -> NewOperation {
    // Varied prompts: a few words drawn from the index so no two are near-duplicates.
    let words = [
        "storage", "parser", "network", "cache", "render", "queue", "schema", "auth", "logging",
        "index",
    ];
    // A digest keeps prompts that share the template below the 0.90 similarity threshold.
    let digest = codex_control_plane::domain::rules::prompt::sha256_hex(idx.to_string());
    let message = format!(
        "Task {idx} ({}): improve the {} module, then the {} layer, and document the {} changes carefully",
        &digest[..32],
        words[idx % 10],
        words[(idx / 10) % 10],
        words[(idx / 100) % 10]
    );
    let mut new = NewOperation::new(
        "start_chat",
        json!({"operationType": "start_chat", "message": message, "cwd": format!("/bench/{scope}")}),
    );
    new.client_request_id = Some(format!("bench-{idx}"));
    new.project_path_key = format!("/bench/{scope}");
    new.message = Some(message);
    new.dedup_policy = policy.to_string();
    new
}

fn percentile(samples: &mut [Duration], pct: f64) -> Duration {
    samples.sort();
    let rank = ((pct / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.saturating_sub(1).min(samples.len() - 1)]
}

fn report(label: &str, samples: &mut [Duration]) {
    let p50 = percentile(samples, 50.0);
    let p99 = percentile(samples, 99.0);
    println!(
        "{label:<58} p50 {:>7.1} µs   p99 {:>7.1} µs   (n={})",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        samples.len()
    );
}

/// Fills the database with `n` operations across [`SCOPES`] scopes, all completed.
fn prefill(store: &Store, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
        let chunk = chunk.to_vec();
        let batch = store
            .write_blocking(move |tx| {
                let now = codex_control_plane::time::now_ms();
                let mut out = Vec::with_capacity(chunk.len());
                for idx in chunk {
                    let outcome = operations::insert(tx, &request(idx, idx % SCOPES, "idempotency_only"), now)?;
                    out.push(outcome.operation().operation_id.clone());
                }
                tx.execute("UPDATE codex_operations SET status = 'completed', queue_status = 'completed' WHERE status = 'queued'", [])?;
                Ok(out)
            })
            .expect("prefill");
        ids.extend(batch);
    }
    ids
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for n in [1_000usize, 100_000] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("bench.sqlite3")).expect("open");
        let started = Instant::now();
        let ids = prefill(&store, n);
        println!(
            "\n{n} operations prefilled in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        runtime.block_on(async {
            // Warm the statement caches and the reader pool.
            for idx in 0..50 {
                let _ = store.get_operation(&ids[idx % ids.len()]).await;
            }
            // The floor of any write: channel hop to the writer thread, BEGIN IMMEDIATE, COMMIT, oneshot back.
            let mut empty = Vec::with_capacity(SAMPLES);
            for _ in 0..SAMPLES {
                let begin = Instant::now();
                store.write(|_| Ok(())).await.expect("empty write");
                empty.push(begin.elapsed());
            }
            report(
                &format!("empty write transaction, {n} ops in db"),
                &mut empty,
            );

            let mut inserts = Vec::with_capacity(SAMPLES);
            for sample in 0..SAMPLES {
                let idx = n + sample;
                let begin = Instant::now();
                store
                    .insert_operation(request(idx, idx % SCOPES, "active_prompt_guard"))
                    .await
                    .expect("insert");
                inserts.push(begin.elapsed());
            }
            report(
                &format!("insert_operation (dedup guard on), {n} ops in db"),
                &mut inserts,
            );

            let mut replays = Vec::with_capacity(SAMPLES);
            for sample in 0..SAMPLES {
                let idx = n + sample;
                let begin = Instant::now();
                store
                    .insert_operation(request(idx, idx % SCOPES, "active_prompt_guard"))
                    .await
                    .expect("replay");
                replays.push(begin.elapsed());
            }
            report(
                &format!("insert_operation idempotent replay, {n} ops in db"),
                &mut replays,
            );

            let mut gets = Vec::with_capacity(SAMPLES);
            for sample in 0..SAMPLES {
                let id = &ids[(sample * 7_919) % ids.len()];
                let begin = Instant::now();
                let op = store.get_operation(id).await.expect("get");
                gets.push(begin.elapsed());
                assert!(op.is_some());
            }
            report(&format!("get_operation, {n} ops in db"), &mut gets);
            let mut snapshots = Vec::with_capacity(SAMPLES);
            for sample in 0..SAMPLES {
                let id = &ids[(sample * 7_919) % ids.len()];
                let begin = Instant::now();
                let snap = store
                    .operation_snapshot(id, 10, 10)
                    .await
                    .expect("snapshot");
                snapshots.push(begin.elapsed());
                assert!(snap.is_some());
            }
            report(
                &format!("operation_snapshot (op+turn+msgs+interactions), {n} ops"),
                &mut snapshots,
            );
        });
    }

    // Worst case for the guard: 200 active (queued) prompts in one scope, each new prompt compared to all.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("burst.sqlite3")).expect("open");
    runtime.block_on(async {
        for idx in 0..200 {
            store
                .insert_operation(request(idx, 0, "active_prompt_guard"))
                .await
                .expect("burst");
        }
        let mut inserts = Vec::with_capacity(500);
        for idx in 200..700 {
            let begin = Instant::now();
            let outcome = store
                .insert_operation(request(idx, 0, "active_prompt_guard"))
                .await;
            inserts.push(begin.elapsed());
            // Some prompts may legitimately be refused as near-duplicates; latency is what is measured.
            drop(outcome);
        }
        report(
            "insert_operation, 200+ active prompts in the same scope",
            &mut inserts,
        );
    });
}
