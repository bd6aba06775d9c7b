//! One requests row per trace row (the row type and its encoder are declared in
//! `schema::requests`).

use arrow_array::RecordBatch;

use crate::schema::Rows;
pub use crate::schema::{Record, RunLabels, Status, tpot};

impl Record {
    /// A row for a request that was never sent.
    pub fn not_sent(row: &crate::trace::TraceRow, scheduled_at_us: Option<i64>, why: &str) -> Record {
        Record {
            request_id: row.request_id,
            scheduled_at_us,
            sent_at_us: None,
            first_token_at_us: None,
            done_at_us: None,
            sched_lag_ms: None,
            ttft_ms: None,
            e2e_ms: None,
            tpot_ms: None,
            ttft_sched_ms: None,
            e2e_sched_ms: None,
            warmup: false,
            chunk_times_ms: Vec::new(),
            chunk_tokens: None,
            input_tokens: row.input_tokens,
            server_input_tokens: None,
            requested_output_tokens: row.output_tokens,
            output_tokens: 0,
            output_tokens_source: "chunks",
            status: Status::NotSent,
            http_status: None,
            error: Some(why.to_string()),
            finish_reason: None,
            category: row.category.clone(),
            session_id: row.session_id,
            turn: row.turn,
        }
    }
}

/// Build a requests-contract batch from records.
pub fn to_batch(labels: &RunLabels, recs: &[Record]) -> RecordBatch {
    Record::encode(recs, labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::REQUESTS;
    use crate::trace::TraceRow;

    #[test]
    fn batch_matches_contract() {
        let labels = RunLabels {
            label: "x".into(),
            run_id: "r".into(),
            api: "chat".into(),
            ..Default::default()
        };
        let mut a = Record::not_sent(&TraceRow::new(1, 0.0, 10, 20), Some(5), "stopped");
        a.chunk_times_ms = vec![1.0, 2.0];
        a.chunk_tokens = Some(vec![1, 1]);
        let b = Record::not_sent(&TraceRow::new(2, 0.0, 10, 20), None, "stopped");
        let batch = to_batch(&labels, &[a, b]);
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.num_columns(), REQUESTS.columns.len());
    }

    #[test]
    fn tpot_definition() {
        assert_eq!(tpot(50.0, 1320.0, 128), Some(10.0));
        assert_eq!(tpot(50.0, 50.0, 1), None);
    }
}
