//! An async host (tokio) answering slot requests through the two-phase path, with the quota
//! kept in its own asynchronous store: no `block_on`, no `spawn_blocking`.
//!
//! ```sh
//! cargo run --example async_host
//! ```
//!
//! The "database" here is an in-process table behind an async mutex with simulated round
//! trips; a real host runs the same check-and-record in one SQL statement or transaction
//! (`UPDATE quota SET used = used + $2 WHERE jid = $1 AND used + $2 <= $3`, say).
#![allow(
    clippy::pedantic,
    unreachable_pub,
    missing_debug_implementations,
    reason = "a test, example or bench binary: pedantic lints and API reachability are for the library"
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use xmpp_upload::jid::BareJid;
use xmpp_upload::minidom::Element;
use xmpp_upload::service::{Begin, ChargeError, QuotaExceeded, QuotaLimits, QuotaScope};
use xmpp_upload::storage::signed::SignedUrlStore;
use xmpp_upload::time::OffsetDateTime;
use xmpp_upload::{ServiceConfig, SlotService};

/// The host's quota store: bytes per user in the current window (the window itself is the
/// database's business; a real one keeps `(jid, time, bytes)` rows and sums the last 24 h).
#[derive(Default)]
struct QuotaDb {
    used: tokio::sync::Mutex<HashMap<BareJid, u64>>,
}

impl QuotaDb {
    async fn charge(
        &self,
        user: &BareJid,
        bytes: u64,
        limits: &QuotaLimits,
    ) -> Result<(), ChargeError> {
        let mut used = self.used.lock().await;
        tokio::time::sleep(StdDuration::from_millis(2)).await; // a round trip
        let now_used = used.get(user).copied().unwrap_or(0);
        if limits.per_user.is_some_and(|l| now_used + bytes > l) {
            // A real store would compute when the oldest charge leaves the window.
            return Err(QuotaExceeded::new(QuotaScope::User, None).into());
        }
        used.insert(user.clone(), now_used + bytes);
        Ok(())
    }
}

/// Answers one stanza: the service checks and issues, the host charges, the service replies.
async fn answer(
    service: &SlotService<SignedUrlStore>,
    db: &QuotaDb,
    stanza: &Element,
) -> Option<Element> {
    let now = OffsetDateTime::now_utc();
    let answer = match service.begin(stanza, now) {
        Begin::Done(answer) => answer,
        Begin::Charge(pending) => {
            let c = pending.charge();
            let result = db.charge(&c.user, c.bytes, &c.limits).await;
            pending.complete(result)
        }
    };
    // One log line per stanza, without URLs or secrets.
    println!("{}", answer.outcome);
    answer.reply
}

fn request(id: usize, user: &str, size: u64) -> Element {
    format!(
        "<iq xmlns='jabber:component:accept' type='get' id='r{id}' from='{user}/phone' \
         to='upload.example.org'><request xmlns='urn:xmpp:http:upload:0' \
         filename='photo-{id}.jpg' size='{size}' content-type='image/jpeg'/></iq>"
    )
    .parse()
    .expect("a well-formed request")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // In a real deployment both keys come from the operator's secret store.
    let config = ServiceConfig::new(
        "upload.example.org".parse()?,
        *b"example service secret, 32 bytes",
    )
    .daily_quota(10 * 1024 * 1024);
    let store = SignedUrlStore::new(
        "https://files.example.org/".parse()?,
        *b"example storage key of 32 bytes.",
    );
    let service = Arc::new(SlotService::try_new(config, store)?);
    let db = Arc::new(QuotaDb::default());

    // Twelve requests of 1.5 MiB from two users at once, answered concurrently: six each,
    // 9 MiB of each user's 10 MiB.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (service, db) = (service.clone(), db.clone());
        let user = if i % 2 == 0 {
            "alice@example.org"
        } else {
            "bob@example.org"
        };
        tasks.push(tokio::spawn(async move {
            let reply = answer(&service, &db, &request(i, user, 1536 * 1024)).await;
            reply.and_then(|r| r.attr("type").map(str::to_owned))
        }));
    }
    let mut results = 0;
    let mut errors = 0;
    for t in tasks {
        match t.await?.as_deref() {
            Some("result") => results += 1,
            _ => errors += 1,
        }
    }
    println!("{results} slots issued, {errors} refused");
    assert_eq!(results, 12, "twelve 1.5 MiB slots fit under 2 x 10 MiB");
    // One more from alice goes over her 10 MiB.
    let reply = answer(
        &service,
        &db,
        &request(99, "alice@example.org", 2 * 1024 * 1024),
    )
    .await;
    let refused = reply.as_ref().and_then(|r| r.attr("type")) == Some("error");
    println!("alice's 13th upload refused: {refused}");
    assert!(refused);
    Ok(())
}
