//! The component's counters, exposed in the Prometheus text format (version 0.0.4).
//!
//! Hand-written: a dozen counters with one label (`reason`) fit in fifty lines, and a metrics
//! crate would bring a registry, a global recorder and their dependencies for nothing more.
//! Every counter only goes up (restarts reset them, which Prometheus' `rate()` handles).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use xmpp_upload::service::{Outcome, QuotaScope};
use xmpp_upload::SlotError;

/// Refusal reasons: a fixed set, so the label's cardinality stays bounded.
const REASONS: &[&str] = &[
    "malformed",
    "forbidden",
    "bad_file_name",
    "too_large",
    "bad_content_type",
    "content_type_not_allowed",
    "quota_user",
    "quota_global",
    "quota_stored",
    "quota_unavailable",
    "payload_too_complex",
    "unknown_file_id",
    "expired_file_id",
    "disabled",
    "storage",
    "other",
];

#[derive(Debug, Default)]
pub struct Metrics {
    pub slots_issued: AtomicU64,
    pub downloads_resolved: AtomicU64,
    refused: [AtomicU64; REASONS.len()],
    pub bytes_uploaded: AtomicU64,
    pub files_stored: AtomicU64,
    pub files_deleted: AtomicU64,
    pub bytes_deleted: AtomicU64,
    pub http_requests: AtomicU64,
    pub stanzas_dropped: AtomicU64,
    pub xmpp_connects: AtomicU64,
    /// Per-status HTTP counters (a handful of codes): status → count.
    http_status: Mutex<Vec<(u16, u64)>>,
    /// Stanzas well-formed but invalid (dropped, or an IQ request answered bad-request).
    pub stanzas_invalid: AtomicU64,
    /// Requests over their user's in-flight cap (answered wait/resource-constraint).
    pub requests_throttled: AtomicU64,
    /// Requests whose answer took longer than database.statement_timeout_ms.
    pub requests_timed_out: AtomicU64,
    /// XMPP requests being answered now (a gauge).
    pub requests_in_flight: AtomicU64,
}

/// The metrics label of a refusal.
pub fn reason(e: &SlotError) -> &'static str {
    match e {
        SlotError::Malformed(_) | SlotError::WrongIqType { .. } | SlotError::UnknownRequester => {
            "malformed"
        }
        SlotError::Forbidden => "forbidden",
        SlotError::BadFileName(_) => "bad_file_name",
        SlotError::TooLarge { .. } => "too_large",
        SlotError::BadContentType(_) => "bad_content_type",
        SlotError::ContentTypeNotAllowed => "content_type_not_allowed",
        SlotError::QuotaExceeded(q) => match q.scope {
            QuotaScope::User => "quota_user",
            QuotaScope::Global => "quota_global",
            QuotaScope::Stored => "quota_stored",
            _ => "other",
        },
        SlotError::QuotaUnavailable(_) => "quota_unavailable",
        SlotError::PayloadTooComplex => "payload_too_complex",
        SlotError::UnknownFileId => "unknown_file_id",
        SlotError::ExpiredFileId => "expired_file_id",
        SlotError::Disabled => "disabled",
        SlotError::Storage(_) => "storage",
        _ => "other",
    }
}

impl Metrics {
    /// Counts what answering a stanza did.
    pub fn outcome(&self, o: &Outcome) {
        match o {
            Outcome::Issued(_) => {
                self.slots_issued.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Resolved { .. } => {
                self.downloads_resolved.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Refused { error, .. } => self.refused_with(reason(error)),
            _ => {}
        }
    }

    pub fn refused_with(&self, reason: &str) {
        let i = REASONS
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(REASONS.len() - 1);
        if let Some(c) = self.refused.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn http(&self, status: u16) {
        self.http_requests.fetch_add(1, Ordering::Relaxed);
        let mut s = self
            .http_status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, n)) = s.iter_mut().find(|(code, _)| *code == status) {
            *n += 1;
        } else if s.len() < 64 {
            s.push((status, 1));
        }
    }

    pub fn stored(&self, bytes: u64) {
        self.files_stored.fetch_add(1, Ordering::Relaxed);
        self.bytes_uploaded.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn deleted(&self, bytes: u64) {
        self.files_deleted.fetch_add(1, Ordering::Relaxed);
        self.bytes_deleted.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The text exposition. `gauges`: extra `(name, help, value)` gauges (inventory sizes).
    pub fn render(&self, gauges: &[(&str, &str, u64)]) -> String {
        let mut out = String::with_capacity(2048);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            );
        };
        counter(
            "xmpp_upload_slots_issued_total",
            "Upload slots issued.",
            get(&self.slots_issued),
        );
        counter(
            "xmpp_upload_downloads_resolved_total",
            "File IDs resolved to download URLs.",
            get(&self.downloads_resolved),
        );
        counter(
            "xmpp_upload_bytes_uploaded_total",
            "Bytes stored by completed uploads.",
            get(&self.bytes_uploaded),
        );
        counter(
            "xmpp_upload_files_stored_total",
            "Uploads completed and stored.",
            get(&self.files_stored),
        );
        counter(
            "xmpp_upload_files_deleted_total",
            "Files deleted by retention or on request.",
            get(&self.files_deleted),
        );
        counter(
            "xmpp_upload_bytes_deleted_total",
            "Bytes of the files deleted.",
            get(&self.bytes_deleted),
        );
        counter(
            "xmpp_upload_stanzas_dropped_total",
            "Stanzas dropped unread (too large or too deep).",
            get(&self.stanzas_dropped),
        );
        counter(
            "xmpp_upload_xmpp_connects_total",
            "Connections made to the XMPP server.",
            get(&self.xmpp_connects),
        );
        out.push_str(
            "# HELP xmpp_upload_slots_refused_total Requests refused, by reason.\n\
             # TYPE xmpp_upload_slots_refused_total counter\n",
        );
        for (r, c) in REASONS.iter().zip(&self.refused) {
            let _ = writeln!(
                out,
                "xmpp_upload_slots_refused_total{{reason=\"{r}\"}} {}",
                get(c)
            );
        }
        out.push_str(
            "# HELP xmpp_upload_http_requests_total HTTP requests answered, by status.\n\
             # TYPE xmpp_upload_http_requests_total counter\n",
        );
        let mut statuses = self
            .http_status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        statuses.sort_unstable();
        for (code, n) in statuses {
            let _ = writeln!(
                out,
                "xmpp_upload_http_requests_total{{status=\"{code}\"}} {n}"
            );
        }
        for (name, help, v) in [
            (
                "xmpp_upload_stanzas_invalid_total",
                "Stanzas well-formed but invalid (dropped, or answered bad-request).",
                get(&self.stanzas_invalid),
            ),
            (
                "xmpp_upload_requests_throttled_total",
                "Requests over their user's in-flight cap (answered resource-constraint).",
                get(&self.requests_throttled),
            ),
            (
                "xmpp_upload_requests_timed_out_total",
                "Requests not answered within database.statement_timeout_ms.",
                get(&self.requests_timed_out),
            ),
        ] {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            );
        }
        let _ = write!(
            out,
            "# HELP xmpp_upload_requests_in_flight XMPP requests being answered.\n# TYPE xmpp_upload_requests_in_flight gauge\nxmpp_upload_requests_in_flight {}\n",
            get(&self.requests_in_flight)
        );
        for (name, help, v) in gauges {
            let _ = write!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
            );
        }
        out
    }
}
