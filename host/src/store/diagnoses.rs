//! Recorded diagnoses (`codex_diagnoses`): what `codex_analyze_issue` concluded when asked to record it, so a
//! repair can name the diagnosis it acts on. Written once, never updated.

use rusqlite::{params, OptionalExtension, Row};
use serde_json::Value;

use super::{new_id, Store, StoreError, Timestamp};

/// A diagnosis to record. Every text is already redacted by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDiagnosis {
    /// The ids the analysis was scoped to.
    pub scope: Value,
    /// The caller's description of the problem.
    pub problem_text: Option<String>,
    /// The top finding's category, when something was found.
    pub likely_root_cause: Option<String>,
    /// The top finding's confidence.
    pub confidence: Option<f64>,
    /// The merged findings.
    pub findings: Value,
    /// The whole answer.
    pub result: Value,
}

/// A recorded diagnosis.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    /// `diag_<32 hex>`.
    pub diagnosis_id: String,
    /// What was recorded.
    pub recorded: NewDiagnosis,
    /// When.
    pub created_at: Timestamp,
}

fn from_row(row: &Row<'_>) -> Result<Diagnosis, rusqlite::Error> {
    let json = |text: String| serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Diagnosis {
        diagnosis_id: row.get(0)?,
        recorded: NewDiagnosis {
            scope: json(row.get(1)?),
            problem_text: row.get(2)?,
            likely_root_cause: row.get(3)?,
            confidence: row.get(4)?,
            findings: json(row.get(5)?),
            result: json(row.get(6)?),
        },
        created_at: Timestamp(row.get(7)?),
    })
}

impl Store {
    /// Records a diagnosis and returns its id.
    pub async fn record_diagnosis(&self, new: NewDiagnosis) -> Result<String, StoreError> {
        let diagnosis_id = new_id("diag");
        let id = diagnosis_id.clone();
        let now = crate::time::now_ms();
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO codex_diagnoses (diagnosis_id, scope_json, problem_text, likely_root_cause, confidence,
                     findings_json, result_json, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                id,
                new.scope.to_string(),
                new.problem_text,
                new.likely_root_cause,
                new.confidence,
                new.findings.to_string(),
                new.result.to_string(),
                now
            ])?;
            Ok(())
        })
        .await?;
        Ok(diagnosis_id)
    }

    /// A recorded diagnosis by id.
    pub async fn get_diagnosis(&self, diagnosis_id: &str) -> Result<Option<Diagnosis>, StoreError> {
        let id = diagnosis_id.to_string();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT diagnosis_id, scope_json, problem_text, likely_root_cause, confidence, findings_json,
                         result_json, created_at
                     FROM codex_diagnoses WHERE diagnosis_id = ?1",
                )?
                .query_row([id], from_row)
                .optional()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn a_recorded_diagnosis_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("state.sqlite3")).expect("store");
        let new = NewDiagnosis {
            scope: json!({"operationId": "op_1"}),
            problem_text: Some("it hangs".into()),
            likely_root_cause: Some("stale_operation".into()),
            confidence: Some(0.85),
            findings: json!([{"category": "stale_operation"}]),
            result: json!({"likelyRootCause": {"category": "stale_operation"}}),
        };
        let id = store.record_diagnosis(new.clone()).await.expect("record");
        assert!(id.starts_with("diag_"));
        let found = store
            .get_diagnosis(&id)
            .await
            .expect("read")
            .expect("found");
        assert_eq!(found.recorded, new);
        assert!(store
            .get_diagnosis("diag_nope")
            .await
            .expect("read")
            .is_none());
    }
}
